"""OnlineEndpoint: a managed-online-endpoint-style endpoint with several deployments, as the
`insights endpoint` commands drive it. Re-exported by `collector.client`.

    endpoint = OnlineEndpoint.create(ws, "my-endpoint")
    endpoint.create_deployment("blue", "score.py", model_dir="model", instance_count=1)
    endpoint.create_deployment("green", "score_v2.py")
    endpoint.update(traffic="blue=90,green=10", mirror={"green": 0})
    endpoint.invoke({"data": [[1, 2]]})                    # split by weight
    endpoint.invoke({"data": [[1, 2]]}, deployment="green")  # that deployment only
    endpoint.get_logs("green"); endpoint.get_credentials(); endpoint.regenerate_keys("secondary")
    endpoint.rollout(timespan="PT1H")["verdict"]

The endpoint runs in a host process the collector starts (router and deployments, on this
machine); `create_deployment` waits until the deployment succeeded, or raises DeploymentFailed with
its error code (ERR_1300, ERR_2100, ERR_2200) and the last lines of its logs.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx

from collector.client.errors import DeploymentFailed, ScoringError
from collector.client.workspace import Workspace

DEPLOYMENT_HEADER = "azureml-model-deployment"


class OnlineEndpoint:
    def __init__(self, workspace: Workspace, name: str, _data: dict | None = None):
        self.workspace = workspace
        self.name = name
        self._data = _data if _data is not None else self._fetch()
        self._http = httpx.Client(timeout=None, trust_env=False)
        self.created: dict = {}
        """The answer to `create` (scoring keys, the service's API key): set on what `create` returns."""

    @classmethod
    def create(cls, workspace: Workspace, name: str, enable_app_insights: bool = True, rate_limit: int = 100,
               request_timeout_ms: int = 5000, port: int | None = None) -> OnlineEndpoint:
        """Create the endpoint (and its service); `created` keeps the answer, keys included."""
        body = {"name": name, "enable_app_insights": enable_app_insights, "rate_limit": rate_limit,
                "request_timeout_ms": request_timeout_ms, **({"port": port} if port else {})}
        data = workspace.request("POST", "/api/endpoints", json=body).json()
        endpoint = cls(workspace, name, _data=data)
        endpoint.created = data
        return endpoint

    @staticmethod
    def list(workspace: Workspace) -> list[dict]:
        return workspace.request("GET", "/api/endpoints").json()

    def __repr__(self) -> str:
        return f"OnlineEndpoint(name={self.name!r}, scoring_uri={self.scoring_uri!r}, traffic={self.traffic!r})"

    def _fetch(self) -> dict:
        return self.workspace.request("GET", f"/api/endpoints/{self.name}").json()

    def show(self) -> dict:
        """The endpoint now: traffic, mirror, limits and each deployment's state."""
        self._data = self._fetch()
        return self._data

    @property
    def scoring_uri(self) -> str:
        return self._data["scoring_uri"]

    @property
    def traffic(self) -> dict[str, int]:
        return self._data["traffic"]

    @property
    def deployments(self) -> dict[str, dict]:
        return {d["name"]: d for d in self.show()["deployments"]}

    def create_deployment(self, name: str, entry_script: str | os.PathLike, model_dir: str | os.PathLike | None = None,
                          instance_count: int = 1, max_concurrent_requests_per_instance: int = 1, wait: bool = True,
                          timeout: float = 120.0) -> dict:
        """Create (or re-create) a deployment; with `wait`, return once it succeeded."""
        body = {"entry_script": os.path.abspath(entry_script), "instance_count": instance_count,
                "max_concurrent_requests_per_instance": max_concurrent_requests_per_instance,
                "model_dir": os.path.abspath(model_dir) if model_dir is not None else None}
        created = self.workspace.request("PUT", f"/api/endpoints/{self.name}/deployments/{name}", json=body).json()
        return self.wait_for_deployment(name, timeout, created["generation"]) if wait else created

    def wait_for_deployment(self, name: str, timeout: float = 120.0, generation: int | None = None) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            found = self.deployments.get(name)
            current = found is not None and (generation is None or found["generation"] == generation)
            if current and found["state"] == "Succeeded":
                return found
            if current and found["state"] == "Failed":
                raise DeploymentFailed(f"deployment {name} failed: {found['error_code']}: {found['message']}",
                                       found.get("logs") or "")
            if time.monotonic() > deadline:
                raise DeploymentFailed(f"deployment {name} did not succeed within {timeout:.0f} s",
                                       (found or {}).get("logs") or "")
            time.sleep(0.2)

    def delete_deployment(self, name: str) -> None:
        self.workspace.request("DELETE", f"/api/endpoints/{self.name}/deployments/{name}")

    def update(self, traffic: str | dict | None = None, mirror: str | dict | None = None, rate_limit: int | None = None,
               request_timeout_ms: int | None = None) -> dict:
        """Traffic as 'blue=90,green=10', 'blue=90 green=10' or {'blue': 90, 'green': 10}; the change
        is in force when this returns (or, if the endpoint's host is away, when it is back)."""
        body = {"traffic": traffic, "mirror": mirror, "rate_limit": rate_limit, "request_timeout_ms": request_timeout_ms}
        self._data = self.workspace.request("PATCH", f"/api/endpoints/{self.name}",
                                            json={k: v for k, v in body.items() if v is not None}).json()
        return self._data

    def get_credentials(self) -> dict:
        """{'primaryKey', 'secondaryKey'}: either one scores (Authorization: Bearer <key>)."""
        return self.workspace.request("POST", f"/api/endpoints/{self.name}/credentials").json()

    def regenerate_keys(self, key_type: str = "primary") -> dict:
        return self.workspace.request("POST", f"/api/endpoints/{self.name}/regenerate-keys",
                                      json={"key_type": key_type}).json()

    def get_logs(self, deployment: str, lines: int = 100) -> str:
        return self.workspace.request("GET", f"/api/endpoints/{self.name}/deployments/{deployment}/logs",
                                      params={"lines": lines}).text

    def rollout(self, timespan: str = "PT1H", baseline: str | None = None) -> dict:
        """Each deployment side by side, and the verdict on each against `baseline` (default: the
        one with the largest share); see endpoints/rollout.py."""
        params = {"timespan": timespan, **({"baseline": baseline} if baseline else {})}
        return self.workspace.request("GET", f"/api/endpoints/{self.name}/rollout", params=params).json()

    def invoke(self, data=None, request_file: str | os.PathLike | None = None, deployment: str | None = None,
               key: str | None = None, timeout: float = 60.0):
        """Score through the endpoint (the split decides, or `deployment` names one); the answer,
        parsed when JSON; ScoringError with the endpoint's status otherwise."""
        body = Path(request_file).read_bytes() if request_file is not None else _encoded(data)
        headers = {"content-type": "application/json",
                   "authorization": f"Bearer {key or self.get_credentials()['primaryKey']}"}
        if deployment:
            headers[DEPLOYMENT_HEADER] = deployment
        response = self._http.post(self.scoring_uri, content=body, headers=headers, timeout=timeout)
        if response.status_code != 200:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise ScoringError(response.status_code, message, self.scoring_uri)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def delete(self) -> None:
        """Stop its deployments and router and delete it (its service too; its telemetry stays
        until retention removes it)."""
        self.workspace.request("DELETE", f"/api/endpoints/{self.name}")


def _encoded(data) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    return json.dumps(data).encode()

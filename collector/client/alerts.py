"""Alerts in the SDK: a service's alert rules, action groups, availability tests, fired alerts and
the delivery log, over the collector's /api routes.

    from collector.client import Alerts, Workspace
    alerts = Alerts(Workspace(), "my-service")
    alerts.create_action_group("oncall", webhooks=[{"url": "https://hooks.example.com/x"}])
    alerts.create_rule("failures", "requests | where success == false", threshold=5,
                       frequency="PT5M", action_groups=["oncall"])
    alerts.test_rule("failures")          # what it would fire now, per series
    alerts.alerts(state="Fired")
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlparse, urlunparse

import httpx

from collector.client.errors import ScoringError
from collector.client.workspace import Workspace


class Alerts:
    def __init__(self, workspace: Workspace, service: str):
        self.workspace = workspace
        self.service = service
        self._base = f"/api/services/{quote(service, safe='')}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.workspace.request(method, self._base + path, **kwargs)
        return response.json() if response.content else None

    # rules --------------------------------------------------------------------------------------

    def rules(self) -> list[dict]:
        return self._call("GET", "/alert-rules")

    def rule(self, name: str) -> dict:
        return self._call("GET", f"/alert-rules/{quote(name, safe='')}")

    def create_rule(self, name: str, query: str, **fields: Any) -> dict:
        """A log alert rule; `fields` as the API takes them (frequency, window, measure, split_by,
        operator, threshold or dynamic, failing_periods, evaluation_periods, severity, enabled,
        resolve_after, mute_actions_for, action_groups, description)."""
        return self._call("POST", "/alert-rules", json={"name": name, "query": query, **fields})

    def update_rule(self, name: str, **changes: Any) -> dict:
        return self._call("PATCH", f"/alert-rules/{quote(name, safe='')}", json=changes)

    def delete_rule(self, name: str) -> None:
        self._call("DELETE", f"/alert-rules/{quote(name, safe='')}")

    def test_rule(self, name: str) -> dict:
        """The dry run: each series' value now, the threshold, and which would fire."""
        return self._call("POST", f"/alert-rules/{quote(name, safe='')}/test")

    def mute_rule(self, name: str, duration: str | int | None) -> dict:
        """Hold the rule's notifications for `duration` (PT1H, 3600, 1h); None unmutes."""
        return self._call("POST", f"/alert-rules/{quote(name, safe='')}/mute", json={"for": duration})

    def add_recommended(self, action_groups: list[str] | None = None) -> list[str]:
        """Add the built-in rules for model endpoints the service lacks; their names."""
        return self._call("POST", "/alert-rules/recommended", json={"action_groups": action_groups or []})["added"]

    def values(self, rule: str, hours: float = 24) -> list[dict]:
        """The rule's measured value per window (and the learned band of a dynamic rule)."""
        return self._call("GET", f"/alert-rules/{quote(rule, safe='')}/values", params={"hours": hours})

    def alerts(self, state: str | None = None) -> list[dict]:
        """Alert instances ('Fired' or 'Resolved'), newest first."""
        return self._call("GET", "/alerts", params={"state": state} if state else None)

    def deliveries(self, rule: str | None = None) -> list[dict]:
        return self._call("GET", "/alert-deliveries", params={"rule": rule} if rule else None)

    # action groups ------------------------------------------------------------------------------

    def action_groups(self) -> list[dict]:
        return self._call("GET", "/action-groups")

    def create_action_group(self, name: str, webhooks: list[dict] | None = None, emails: list[str] | None = None) -> dict:
        """Webhooks as {"url", "headers", "secret", "format": "azure"|"slack"|"teams"}."""
        return self._call("POST", "/action-groups", json={"name": name, "webhooks": webhooks or [], "emails": emails or []})

    def update_action_group(self, name: str, webhooks: list[dict] | None = None, emails: list[str] | None = None) -> dict:
        return self._call("PUT", f"/action-groups/{quote(name, safe='')}",
                          json={"webhooks": webhooks or [], "emails": emails or []})

    def delete_action_group(self, name: str) -> None:
        self._call("DELETE", f"/action-groups/{quote(name, safe='')}")

    # availability tests -------------------------------------------------------------------------

    def availability_tests(self) -> list[dict]:
        return self._call("GET", "/availability-tests")

    def create_availability_test(self, name: str, url: str, **fields: Any) -> dict:
        """fields: method, body, headers, expected_status, content_match, timeout, frequency, location."""
        return self._call("POST", "/availability-tests", json={"name": name, "url": url, **fields})

    def create_availability_from_score(self, name: str, scoring_uri: str, sample: Any = None, **fields: Any) -> dict:
        """A test that POSTs `sample` (default: the example in the wrapper's /swagger.json) to a
        running wrapper's scoring URI and expects a 200."""
        if sample is None:
            sample = swagger_example(scoring_uri)
        return self.create_availability_test(name, scoring_uri, method="POST", body=sample, **fields)

    def delete_availability_test(self, name: str) -> None:
        self._call("DELETE", f"/availability-tests/{quote(name, safe='')}")

    def run_availability_test(self, name: str) -> dict:
        """Run it once now (recorded in availabilityResults like a scheduled run)."""
        return self._call("POST", f"/availability-tests/{quote(name, safe='')}/run")


def swagger_example(scoring_uri: str) -> Any:
    """The example input the wrapper's /swagger.json gives for its scoring route."""
    parsed = urlparse(scoring_uri)
    swagger_url = urlunparse(parsed._replace(path=parsed.path.rsplit("/", 1)[0] + "/swagger.json", query=""))
    try:
        document = httpx.get(swagger_url, timeout=10).json()
    except (httpx.HTTPError, ValueError) as error:
        raise ScoringError(0, f"cannot read {swagger_url} ({error}): give a sample input instead", swagger_url) from None
    post = next((item.get("post", {}) for path, item in document.get("paths", {}).items() if path.endswith("/score")), {})
    schemas = [p.get("schema", {}) for p in post.get("parameters", [])]
    schemas += [c.get("schema", {}) for c in post.get("requestBody", {}).get("content", {}).values()]
    for schema in schemas:
        example = _example(document, schema)
        if example is not None:
            return example
    raise ScoringError(0, f"{swagger_url} gives no example input: give a sample input instead", swagger_url)


def _example(document: dict, schema: dict) -> Any:
    ref = schema.get("$ref", "")
    if ref.startswith("#/"):
        target: Any = document
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        schema = target
    if "example" in schema:
        return schema["example"]
    properties = schema.get("properties", {})
    examples = {name: _example(document, sub) for name, sub in properties.items()}
    return examples if properties and all(v is not None for v in examples.values()) else None

"""Model: the collector's model registry in azureml-core's shape (re-exported by `collector.client`).

    model = Model.register(workspace=ws, model_path="my_model.pkl", model_name="my_best_model",
                           tags={"area": "diabetes"}, description="Ridge regression")
    Model(ws, "my_best_model")              # the latest version; Model(ws, "my_best_model", version=1)
    Model.list(ws, name="my_best_model")    # every version, newest first
    model.download("here")                  # -> "here/my_model.pkl"
    service = Model.deploy(ws, "mymodel", [model], inference_config, deployment_config)

A model is one file or one folder, versioned by name (`id` is "name:version") with the SHA-256 of its
content (`sha256`). Registering needs the admin key; reading, any key the collector knows.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import orjson

from collector.client.errors import ApiError, ConfigError, InsightsError
from collector.client.layout import InferenceConfig, lay_out
from collector.client.local import LocalWebservice
from collector.client.workspace import DeploymentConfiguration, Workspace


class Model:
    """One registered model version."""

    def __init__(self, workspace: Workspace, name: str | None = None, id: str | None = None,
                 version: int | None = None, _data: dict | None = None):
        if _data is None:
            if id is not None:
                name, _, number = id.partition(":")
                version = int(number) if number else version
            if not name:
                raise InsightsError("Model: give a name (or an id 'name:version')")
            params = {"version": version} if version is not None else {}
            _data = workspace.request("GET", f"/api/models/{name}", params=params).json()
        self.workspace = workspace
        self._data = _data
        self.name: str = _data["name"]
        self.version: int = int(_data["version"])
        self.id: str = _data["id"]
        self.description: str | None = _data.get("description")
        self.tags: dict = _data.get("tags") or {}
        self.root: str = _data["root"]
        """The registered file's or folder's own name."""
        self.is_folder: bool = bool(_data.get("is_folder"))
        self.files: int = int(_data.get("files") or 0)
        self.size_bytes: int = int(_data.get("size_bytes") or 0)
        self.sha256: str = _data.get("sha256", "")
        self.created_time: str | None = _data.get("created_time")
        self.properties: dict = {"sha256": self.sha256}

    def __repr__(self) -> str:
        return f"Model(workspace={self.workspace.url!r}, name={self.name!r}, id={self.id!r}, version={self.version})"

    @staticmethod
    def register(workspace: Workspace, model_path: str | os.PathLike, model_name: str, tags: dict | None = None,
                 properties: dict | None = None, description: str | None = None, **_azure_only) -> Model:
        """Upload the file or folder at `model_path` as the next version of `model_name`. Azure's
        other arguments (model_framework, datasets, ...) are accepted and not kept; `properties`
        are merged into the tags, since both are string maps here."""
        path = Path(model_path)
        if not path.exists():
            raise InsightsError(f'Error, provided model path "{model_path}" cannot be found')
        labels = {**(properties or {}), **(tags or {})}
        params = {"tags": orjson.dumps(labels).decode()}
        if description is not None:
            params["description"] = description
        with tempfile.TemporaryFile() as archive:
            with tarfile.open(fileobj=archive, mode="w") as tar:
                tar.add(path.resolve(), arcname=path.resolve().name, filter=_no_links)
            archive.seek(0)
            data = workspace.request("POST", f"/api/models/{model_name}", params=params, content=archive,
                                     headers={"content-type": "application/x-tar"}).json()
        return Model(workspace, _data=data)

    @staticmethod
    def list(workspace: Workspace, name: str | None = None, tags: Iterable | None = None, latest: bool = False,
             **_azure_only) -> list[Model]:
        """Every registered version (of `name`), newest first within a name; `tags` filters as
        Azure's does: each entry a key that must be present, or a [key, value] pair that must match."""
        params: dict = {"latest": latest}
        if name is not None:
            params["name"] = name
        models = [Model(workspace, _data=data) for data in workspace.request("GET", "/api/models", params=params).json()]
        return [m for m in models if _has_tags(m.tags, tags or [])]

    def download(self, target_dir: str | os.PathLike = ".", exist_ok: bool = False, exists_ok: bool | None = None) -> str:
        """Write the model's file or folder into `target_dir`; the path of that file or folder."""
        exist_ok = exist_ok if exists_ok is None else exists_ok
        target = Path(target_dir)
        destination = target / self.root
        if destination.exists() and not exist_ok:
            raise InsightsError(f"File already exists. To overwrite, set exist_ok to True. {destination}")
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as archive:
            with self.workspace._http.stream("GET", f"/api/models/{self.name}/versions/{self.version}/content") as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError(response.status_code, response.text[:500])
                for chunk in response.iter_bytes():
                    archive.write(chunk)
            archive.seek(0)
            with tarfile.open(fileobj=archive, mode="r:") as tar:
                tar.extractall(target, filter="data")
        return str(destination)

    def delete(self) -> None:
        """Delete this version from the registry (admin key)."""
        self.workspace.request("DELETE", f"/api/models/{self.name}", params={"version": self.version})

    def serialize(self) -> dict:
        return dict(self._data)

    @staticmethod
    def deploy(workspace: Workspace, name: str, models: Sequence[Model], inference_config: InferenceConfig | None = None,
               deployment_config: DeploymentConfiguration | None = None, deployment_target=None,
               overwrite: bool = False, show_output: bool = False, timeout: float = 120.0) -> LocalWebservice:
        """Deploy `models` with `inference_config`'s entry script as service `name`, on this
        machine (a LocalWebservice, whatever `deployment_target`: there is no cloud here). The
        models are downloaded into a deployment folder in Azure's layout (collector/client/layout.py);
        the service is created in the collector when it does not exist. A deployment of the same
        name made by this program is replaced when `overwrite` is true."""
        if inference_config is None:
            raise ConfigError("Model.deploy: an InferenceConfig (entry_script=...) is needed: no-code deployment "
                              "is not supported here")
        previous = _DEPLOYED.get((workspace.url, name))
        if previous is not None and previous.process is not None and previous.process.poll() is None:
            if not overwrite:
                raise ConfigError(f"Model.deploy: {name} is already deployed by this program; "
                                  "pass overwrite=True, or use service.update(...)")
            previous.delete()
        layout = lay_out(name, list(models), inference_config)
        try:
            service = LocalWebservice.deploy(workspace, name, layout.entry_script, layout.model_dir,
                                             deployment_config, timeout=timeout, layout=layout)
        except BaseException:
            layout.remove()
            raise
        _DEPLOYED[(workspace.url, name)] = service
        if show_output:
            print(f"Local webservice is running at {service.scoring_uri}")
        return service


_DEPLOYED: dict[tuple[str, str], LocalWebservice] = {}
"""The deployments this program made, so that deploying the same name again is caught."""


def _no_links(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Links are not models: the collector refuses them, so they are left out here."""
    return info if info.isfile() or info.isdir() else None


def _has_tags(tags: dict, wanted: Iterable) -> bool:
    for entry in wanted:
        if isinstance(entry, (list, tuple)):
            key, value = entry
            if tags.get(key) != value:
                return False
        elif entry not in tags:
            return False
    return True

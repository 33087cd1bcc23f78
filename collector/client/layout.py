"""InferenceConfig, and where a deployment's models and entry script are put on this machine.

Models are laid out as an Azure ML scoring container has them: under an app root (AML_APP_ROOT),
`azureml-models/<name>/<version>/<the registered file or folder>`. AZUREML_MODEL_DIR points at
`azureml-models/<name>/<version>` when one model is deployed (so `os.path.join(AZUREML_MODEL_DIR,
"model.pkl")` works) and at `azureml-models` when several are (`<name>/<version>/...` below it),
as Azure's documentation of AZUREML_MODEL_DIR describes; `Model.get_model_path` in score.py looks in
`$AML_APP_ROOT/azureml-models`, as azureml-core does. The entry script runs where it is, so an edited
score.py is what `reload()` picks up.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from collector.client.errors import ConfigError

MODELS_FOLDER = "azureml-models"


class DeployableModel(Protocol):
    name: str
    version: int

    def download(self, target_dir: str | os.PathLike = ".", exist_ok: bool = False) -> str: ...


@dataclass
class InferenceConfig:
    """How a deployment scores (azureml-core's names): `entry_script` (relative to
    `source_directory` when that is given), and the environment it expects (`runtime`,
    `conda_file`, `environment`), recorded with the deployment and not installed: the wrapper runs
    in the Python that deploys it."""

    entry_script: str | os.PathLike
    source_directory: str | os.PathLike | None = None
    runtime: str | None = None
    conda_file: str | os.PathLike | None = None
    environment: Any = None
    extra_docker_file_steps: str | None = None
    enable_gpu: bool | None = None
    description: str | None = None

    def script_path(self) -> Path:
        base = Path(self.source_directory) if self.source_directory is not None else Path()
        path = (base / self.entry_script).resolve()
        if not path.is_file():
            raise ConfigError(f"InferenceConfig: entry_script {str(self.entry_script)!r} not found at {path}")
        return path

    def recorded(self) -> dict:
        """What the deployment keeps of the environment it was asked for (nothing of it is installed)."""
        environment = self.environment
        name = getattr(environment, "name", environment)
        return {"runtime": self.runtime, "conda_file": str(self.conda_file) if self.conda_file else None,
                "environment": str(name) if name is not None else None}


@dataclass
class Layout:
    """One deployment's folder (the app root) with its models, and the entry script it runs."""

    app_root: Path
    entry_script: Path
    model_dir: Path | None
    models: list = field(default_factory=list)
    inference_config: InferenceConfig | None = None

    def environment(self) -> dict[str, str]:
        """What the wrapper's environment gets: the app root, and the source directory on PYTHONPATH."""
        env = {"AML_APP_ROOT": str(self.app_root)}
        source = self.inference_config.source_directory if self.inference_config else None
        if source is not None:
            paths = [str(Path(source).resolve()), os.environ.get("PYTHONPATH", "")]
            env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        return env

    def remove(self) -> None:
        shutil.rmtree(self.app_root, ignore_errors=True)


def lay_out(name: str, models: list, inference_config: InferenceConfig) -> Layout:
    """Download `models` into a new app root for deployment `name`, in Azure's layout."""
    if not isinstance(inference_config, InferenceConfig):
        raise ConfigError("Model.deploy: inference_config must be an InferenceConfig")
    script = inference_config.script_path()
    app_root = Path(tempfile.mkdtemp(prefix=f"insights-deployment-{name}-"))
    try:
        for model in models:
            model.download(app_root / MODELS_FOLDER / model.name / str(model.version), exist_ok=True)
    except BaseException:
        shutil.rmtree(app_root, ignore_errors=True)
        raise
    if len(models) == 1:
        model_dir: Path | None = app_root / MODELS_FOLDER / models[0].name / str(models[0].version)
    else:
        model_dir = app_root / MODELS_FOLDER if models else None
    return Layout(app_root, script, model_dir, list(models), inference_config)

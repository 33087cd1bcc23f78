"""`azureml.core.model.Model.get_model_path` for a score.py, without azureml-core installed.

`install` (called by aml.install_aliases before score.py is imported) makes `azureml.core`,
`azureml.core.model` and `azureml.exceptions` resolve here when azureml-core is not installed; when
it is, nothing is touched and the real one answers. Inside a scoring container get_model_path looks
only at the local model cache, and so does this, the same way and with the same errors (from
azureml-core's `Model.get_model_path`, `_get_model_path_local` and `_get_model_path_local_from_root`):

1. `$AML_APP_ROOT/azureml-models/<name>/<version>/` (the latest version when none is given), whose
   one entry (the registered file or folder) is the answer; a version folder holding anything other
   than one entry is a WebserviceException ("Dir ... can contain only 1 file or folder. Found [...]");
2. otherwise `./<name>` when it exists;
3. otherwise ModelNotFoundException("Model <name> not found in cache at <models dir> or in current
   working directory <cwd>. For more info, set logging level to DEBUG."), raised as it is when no
   version was given and as a WebserviceException with the same message when one was.
A version that is not an int is a WebserviceException("version should be an int").

The one liberty: with AML_APP_ROOT unset (a wrapper started by hand, not by Model.deploy), the cache
is the `azureml-models` folder that AZUREML_MODEL_DIR lies in, when it lies in one, so that
`insights score --model_dir <app root>/azureml-models/<name>/<version>` finds its model too.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import types

MODELS_FOLDER = "azureml-models"
module_logger = logging.getLogger("azureml.core.model")


class AzureMLException(Exception):
    """azureml-core's base error: `message` is what was said."""

    def __init__(self, exception_message: str, **_kwargs):
        super().__init__(exception_message)
        self.message = exception_message


class WebserviceException(AzureMLException):
    def __init__(self, exception_message: str, status_code: int | None = None, logger=None, **kwargs):
        super().__init__(exception_message, **kwargs)
        self.status_code = status_code


class ModelNotFoundException(AzureMLException):
    def __init__(self, exception_message: str, logger=None, **kwargs):
        super().__init__(exception_message, **kwargs)


def models_dir(environ=os.environ) -> str:
    """azureml-core's MODELS_DIR: `$AML_APP_ROOT/azureml-models` (see the module docstring for AML_APP_ROOT unset)."""
    if "AML_APP_ROOT" in environ:
        return os.path.join(environ["AML_APP_ROOT"], MODELS_FOLDER)
    model_dir = environ.get("AZUREML_MODEL_DIR")
    if model_dir:
        path = os.path.normpath(model_dir)
        for candidate in (path, os.path.dirname(os.path.dirname(path))):
            if os.path.basename(candidate) == MODELS_FOLDER:
                return candidate
    return MODELS_FOLDER


class Model:
    """The part of azureml-core's Model a scoring script uses."""

    @staticmethod
    def get_model_path(model_name: str, version: int | None = None, _workspace=None) -> str:
        """The path of the deployed model's file or folder (see the module docstring)."""
        if version is not None and not isinstance(version, int):
            raise WebserviceException("version should be an int", logger=module_logger)
        if version is None:
            return Model._get_model_path_local(model_name, version)
        try:
            return Model._get_model_path_local(model_name, version)
        except ModelNotFoundException as error:
            raise WebserviceException(error.message, logger=module_logger) from None

    @staticmethod
    def _get_model_path_local(model_name: str, version: int | None = None) -> str:
        if model_name is None:
            raise WebserviceException("model_name is None", logger=module_logger)
        cache = models_dir()
        candidate = os.path.join(cache, model_name)
        if not os.path.exists(candidate):
            return Model._get_model_path_local_from_root(model_name, cache)
        chosen = version if version is not None else max(int(entry) for entry in os.listdir(candidate))
        candidate = os.path.join(candidate, str(chosen))
        if not os.path.exists(candidate):
            return Model._get_model_path_local_from_root(model_name, cache)
        entries = os.listdir(candidate)
        if len(entries) != 1:
            raise WebserviceException(f"Dir {candidate} can contain only 1 file or folder. Found {entries}",
                                      logger=module_logger)
        found = os.path.join(candidate, entries[0])
        module_logger.debug("Found model path at %s", found)
        return found

    @staticmethod
    def _get_model_path_local_from_root(model_name: str, cache: str) -> str:
        if os.path.exists(model_name):
            return model_name
        raise ModelNotFoundException(f"Model {model_name} not found in cache at {cache} or in current working "
                                     f"directory {os.getcwd()}. For more info, set logging level to DEBUG.")


def install() -> None:
    """Alias azureml.core(.model) and azureml.exceptions to this module, unless azureml-core is installed."""
    try:
        importlib.import_module("azureml.core.model")
        return
    except ImportError:
        pass
    this = sys.modules[__name__]
    parent = _package("azureml")
    core = _package("azureml.core")
    core.Model = Model  # type: ignore[attr-defined]
    sys.modules["azureml.core.model"] = this
    sys.modules["azureml.exceptions"] = this
    core.model = this  # type: ignore[attr-defined]
    parent.core = core  # type: ignore[attr-defined]
    parent.exceptions = this  # type: ignore[attr-defined]


def _package(name: str) -> types.ModuleType:
    """The real package when one is installed (azureml-ai-monitoring brings `azureml`), else an empty one."""
    try:
        return importlib.import_module(name)
    except ImportError:
        module = types.ModuleType(name)
        module.__path__ = []
        sys.modules[name] = module
        return module

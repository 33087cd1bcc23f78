"""`@rawhttp`, `AMLRequest` and `AMLResponse`: the raw-HTTP API of azmlinfsrv, without Flask.

A score.py written for azmlinfsrv imports these from `azureml.contrib.services.aml_request` /
`aml_response` or `azureml_inference_server_http.api.aml_request` / `aml_response`; `install_aliases`
makes those names resolve here (unless the real packages are installed), so the script runs unchanged.
`AMLRequest` offers the part of `flask.Request` that scoring scripts use.
"""

from __future__ import annotations

import json
import sys
import types
from urllib.parse import parse_qsl

from scoring import azureml_model

_raw_http_requested = False


def rawhttp(func):
    """Marks run() as wanting the request object itself (a global switch, as in azmlinfsrv)."""
    global _raw_http_requested
    _raw_http_requested = True
    func.__insights_rawhttp__ = True
    return func


def raw_http_requested(func) -> bool:
    return _raw_http_requested or getattr(func, "__insights_rawhttp__", False)


class Headers(dict):
    """Header names compared case-insensitively and spelled as WSGI/flask spell them
    ('User-Agent'), so `dict(request.headers)` code written for azmlinfsrv finds its keys."""

    def __init__(self, pairs: list[tuple[str, str]]):
        super().__init__()
        self._lower = {}
        for name, value in pairs:
            self[_title(name)] = value
            self._lower[name.lower()] = value

    def get(self, name, default=None):
        return self._lower.get(str(name).lower(), default)

    def __getitem__(self, name):
        return self._lower[str(name).lower()]

    def __contains__(self, name):
        return str(name).lower() in self._lower


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


class Args(dict):
    """Query parameters: `get` gives the first value, `getlist` all of them (flask's MultiDict)."""

    def __init__(self, query: str):
        super().__init__()
        self._lists: dict[str, list[str]] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            self._lists.setdefault(key, []).append(value)
            self.setdefault(key, value)

    def getlist(self, key: str) -> list[str]:
        return list(self._lists.get(key, []))


class AMLRequest:
    """What a @rawhttp run() receives."""

    def __init__(self, method: str, path: str, query_string: bytes, headers: list[tuple[str, str]], body: bytes, host: str):
        self.method = method
        self.path = path
        self.query_string = query_string
        self.headers = Headers(headers)
        self.args = Args(query_string.decode("latin-1"))
        self.data = body
        self.host = host
        query = query_string.decode("latin-1")
        self.full_path = f"{path}?{query}"
        self.url = f"http://{host}{path}" + (f"?{query}" if query else "")

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @property
    def mimetype(self) -> str:
        return (self.content_type or "").split(";")[0].strip().lower()

    @property
    def is_json(self) -> bool:
        mimetype = self.mimetype
        return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))

    def get_data(self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False):
        return self.data.decode("utf-8", "replace") if as_text else self.data

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True):
        if not (force or self.is_json):
            if silent:
                return None
            raise ValueError("the request's Content-Type is not application/json")
        try:
            return json.loads(self.data)
        except ValueError:
            if silent:
                return None
            raise

    @property
    def json(self):
        return self.get_json()

    @property
    def form(self) -> Args:
        if self.mimetype == "application/x-www-form-urlencoded":
            return Args(self.data.decode("utf-8", "replace"))
        return Args("")


class AMLResponse:
    """What a run() returns to control the HTTP response; azmlinfsrv's constructor signature."""

    def __init__(self, message, status_code, response_headers=None, json_str=False, run_function_failed=False):
        headers: list[tuple[str, str]] = []
        if message is None:
            body, content_type = b"{}", "application/json"
        elif json_str:
            body, content_type = json.dumps(message).encode(), "application/json"
        else:
            body = message if isinstance(message, (bytes, bytearray)) else str(message).encode()
            content_type = "text/html; charset=utf-8"
        for name, value in (response_headers or {}).items():
            if name.lower() == "content-type":
                content_type = value
                continue
            for part in str(value).split(","):
                headers.append((name, part.strip()))
        self.body = bytes(body)
        self.status_code = int(status_code)
        self.content_type = content_type
        self.headers = headers
        self.run_function_failed = bool(run_function_failed) or self.status_code >= 500

    def get_data(self) -> bytes:
        return self.body


def install_aliases() -> None:
    """Make azmlinfsrv's and the legacy azureml-contrib import paths resolve to this module."""
    azureml_model.install()  # azureml.core.model.Model.get_model_path; first, so a real `azureml` package is kept
    this = sys.modules[__name__]
    for package, request_name, response_name in (
        ("azureml.contrib.services", "aml_request", "aml_response"),
        ("azureml_inference_server_http.api", "aml_request", "aml_response"),
    ):
        try:
            __import__(f"{package}.{request_name}")
            continue  # the real package is installed; leave it alone
        except ImportError:
            pass
        parts = package.split(".")
        for depth in range(1, len(parts) + 1):
            name = ".".join(parts[:depth])
            if name not in sys.modules:
                module = types.ModuleType(name)
                module.__path__ = []
                sys.modules[name] = module
        sys.modules[f"{package}.{request_name}"] = this
        sys.modules[f"{package}.{response_name}"] = this
        setattr(sys.modules[package], request_name, this)
        setattr(sys.modules[package], response_name, this)

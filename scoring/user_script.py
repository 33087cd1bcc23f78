"""The user's score.py: loading it, and calling init() and run() the way azmlinfsrv does.

run() gets, depending on how it is declared: the body as a UTF-8 string (undecorated), the named
fields of a JSON object (`@input_schema` from inference-schema), or the request itself (`@rawhttp`);
plus `request_headers` when it has a parameter of that name. Input that cannot be turned into those
arguments is the client's fault and becomes an InputError with azmlinfsrv's status and message.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scoring import aml, legacy_mdc, modeldata


class ScriptError(RuntimeError):
    """score.py is not usable (missing init/run, bad signature)."""


class InputError(ValueError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Call:
    """One request as run() needs it."""

    method: str
    path: str
    query_string: bytes
    headers: list[tuple[str, str]]
    body: bytes
    host: str


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _query_object(query_string: bytes) -> dict:
    """GET /score?a=1&b=[1,2]&c=x&c=y -> {"a": 1, "b": [1, 2], "c": ["x", "y"]}, as azmlinfsrv does."""
    args = aml.Args(query_string.decode("latin-1"))
    values = {key: [_parse_value(value) for value in args.getlist(key)] for key in args}
    return {key: parsed[0] if len(parsed) == 1 else parsed for key, parsed in values.items()}


class UserScript:
    def __init__(self, path: str):
        self.path = os.path.realpath(path)
        if not os.path.isfile(self.path):
            raise ScriptError(f"entry script {path!r} does not exist")
        self.module = None
        self.run: Callable | None = None
        self.init: Callable | None = None

    def load(self) -> None:
        """Import score.py as azmlinfsrv does (its directory on sys.path, module name entry_module)."""
        aml.install_aliases()
        legacy_mdc.install_aliases()
        directory = os.path.dirname(self.path)
        if directory not in sys.path:
            sys.path.insert(0, directory)
        spec = importlib.util.spec_from_file_location("entry_module", self.path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["entry_module"] = module
        spec.loader.exec_module(module)
        modeldata.after_load()
        for name in ("init", "run"):
            if not callable(getattr(module, name, None)):
                raise ScriptError(f"{self.path} does not define the {name}() function it needs")
        self.module = module
        driver = getattr(module, "driver_module", None)
        self.run = driver.run if driver is not None and callable(getattr(driver, "run", None)) else module.run
        self.init = module.init
        self._analyze()

    def _analyze(self) -> None:
        params = list(inspect.signature(self.run).parameters.values())
        if any(p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params):
            raise ScriptError("run() cannot accept positional-only arguments, *args, or **kwargs.")
        self.wants_headers = any(p.name == "request_headers" for p in params)
        self.params = [p for p in params if p.name != "request_headers"]
        if not self.params:
            raise ScriptError("run() needs to accept an argument for input data.")
        self.raw = aml.raw_http_requested(self.run)
        self.schema = _schema_decorated(self.run)
        if self.raw and self.schema:
            raise ScriptError("run() cannot be decorated with both @rawhttp and @input_schema")
        self.mode = "rawhttp" if self.raw else "schema" if self.schema else "string"

    def arguments(self, call: Call) -> dict:
        """run()'s keyword arguments for this request; InputError for bad input."""
        if self.raw:
            request = aml.AMLRequest(call.method, call.path, call.query_string, call.headers, call.body, call.host)
            kwargs = {self.params[0].name: request}
        elif self.schema:
            kwargs = self._schema_arguments(call)
        else:
            kwargs = {self.params[0].name: self._string_argument(call)}
        if self.wants_headers:
            kwargs["request_headers"] = aml.Headers(call.headers)
        return kwargs

    def _string_argument(self, call: Call) -> str:
        if call.method == "GET":
            return json.dumps(_query_object(call.query_string))
        try:
            return call.body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InputError(400, f"Input cannot be decoded as UTF-8: {error}") from None

    def _schema_arguments(self, call: Call) -> dict:
        if call.method == "GET":
            body = _query_object(call.query_string)
        else:
            body = self._json_object(call)
        kwargs = {}
        for param in self.params:
            value = body.get(param.name, param.default)
            if value is inspect.Parameter.empty:
                raise InputError(400, f"A value is not provided for the {param.name!r} parameter.")
            kwargs[param.name] = value
        return kwargs

    @staticmethod
    def _json_object(call: Call) -> dict:
        content_type = next((v for k, v in call.headers if k.lower() == "content-type"), "")
        mimetype = content_type.split(";")[0].strip().lower()
        if mimetype != "application/json" and not (mimetype.startswith("application/") and mimetype.endswith("+json")):
            raise InputError(415, "Expects Content-Type to be application/json")
        if not call.body:
            raise InputError(400, "POST body is empty. Expecting a JSON dictionary.")
        try:
            body = json.loads(call.body)
        except ValueError as error:
            raise InputError(400, f"POST body could not be decoded as JSON: {error}") from None
        if not isinstance(body, dict):
            raise InputError(400, "POST body should be a JSON dictionary.")
        return body


def _schema_decorated(func: Callable) -> bool:
    try:
        from inference_schema.schema_util import is_schema_decorated
    except ImportError:
        return False
    return is_schema_decorated(func)

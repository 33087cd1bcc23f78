"""A service's export settings: where to (folder, SAS URL or connection string), which record types,
how often, and how long rows are kept.

Settings are checked here, before anything is stored, so a mistake is a 400 naming the field at
`PUT` time rather than an export that fails every minute. Whether the destination actually answers
is not checked here: that is a runtime condition, reported in the export status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from collector.store.schema import TABLES, Table

RECORD_TYPES: dict[str, Table] = {
    "Requests": TABLES["requests"],
    "Messages": TABLES["traces"],
    "Exceptions": TABLES["exceptions"],
    "Rdd": TABLES["dependencies"],
    "Event": TABLES["customEvents"],
    "Metrics": TABLES["customMetrics"],
}
"""The App Insights continuous-export record-type folders, and the table each one exports."""

DEFAULT_INTERVAL_SECONDS = 60
DEFAULT_ITEMS_PER_BLOB = 50_000
_CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
_CONNECTION_KEYS = ("accountname", "blobendpoint", "usedevelopmentstorage", "defaultendpointsprotocol")


class SettingsError(ValueError):
    """An invalid setting; `field` names it, so the API can answer 400 saying which."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Destination:
    """Where blobs go: kind is 'folder' (path), 'sas' (container URL) or 'connection' (string + container)."""

    kind: str
    path: Path | None = None
    url: str | None = None
    connection_string: str | None = None
    container: str | None = None

    def describe(self) -> str:
        """A display form without secrets (SAS signature, account key)."""
        if self.kind == "folder":
            return str(self.path)
        if self.kind == "sas":
            assert self.url is not None  # parse_destination gives a 'sas' destination its URL
            return self.url.split("?", 1)[0] + "?<sas>"
        assert self.connection_string is not None  # and a 'connection' one its string
        endpoint = _connection_parts(self.connection_string)
        account = endpoint.get("blobendpoint") or endpoint.get("accountname") or "development storage"
        return f"{account} container {self.container}"


class ExportSettings(BaseModel):
    """The JSON of `PUT /api/services/{name}/export`; omitted fields take their defaults."""

    model_config = ConfigDict(extra="forbid")

    destination: str | None = Field(
        None, description="Folder path or file:// URL, Azure container SAS URL, or Azure Storage connection string. "
        "Default: the collector's <data-dir>/blob/ folder.")
    container: str | None = Field(None, description="Blob container; only (and required) with a connection string.")
    types: list[str] = Field(default_factory=lambda: list(RECORD_TYPES), description="Record types to export.")
    interval_seconds: int = Field(DEFAULT_INTERVAL_SECONDS, ge=1, description="Whole seconds between scheduled exports.")
    enabled: StrictBool = True
    retention_days: int | None = Field(None, ge=1, description="Delete rows older than this (only exported rows when export is enabled).")
    max_items_per_blob: int = Field(DEFAULT_ITEMS_PER_BLOB, ge=1, le=1_000_000, description="Items per blob at most.")

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"name at least one of {', '.join(RECORD_TYPES)}")
        by_lower = {name.lower(): name for name in RECORD_TYPES}
        unknown = [t for t in value if t.lower() not in by_lower]
        if unknown:
            raise ValueError(f"unknown type {unknown[0]!r}; expected some of {', '.join(RECORD_TYPES)}")
        return list(dict.fromkeys(by_lower[t.lower()] for t in value))

    @field_validator("destination")
    @classmethod
    def _parsable_destination(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            parse_destination(value.strip(), None, check_container=False)
            return value.strip()
        return None

    @model_validator(mode="after")
    def _container_matches_destination(self) -> ExportSettings:
        kind = parse_destination(self.destination, None, check_container=False).kind if self.destination else "folder"
        if kind == "connection":
            if not self.container:
                raise SettingsError("container", "required with a connection string")
            if not _CONTAINER_NAME.match(self.container):
                raise SettingsError("container", "3 to 63 lowercase letters, digits or single '-' between them")
        elif self.container:
            raise SettingsError("container", "only with a connection string (a SAS URL names its container)")
        return self

    def destination_for(self, data_dir: Path) -> Destination:
        if not self.destination:
            return Destination("folder", path=Path(data_dir) / "blob")
        return parse_destination(self.destination, self.container)


def validate(body: object) -> ExportSettings:
    """Settings from a request body; SettingsError names the first bad field."""
    if not isinstance(body, dict):
        raise SettingsError("body", "expected a JSON object of export settings")
    try:
        return ExportSettings.model_validate(body)
    except SettingsError:
        raise
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, SettingsError):
            raise SettingsError(cause.field, str(cause).split(": ", 1)[1]) from None
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(field, message) from None


def parse_destination(value: str, container: str | None, check_container: bool = True) -> Destination:
    """Classify a destination string; SettingsError('destination', ...) when it is none of the three."""
    lowered = value.lower()
    if lowered.startswith("file://"):
        return _folder(unquote(urlparse(value).path))
    if lowered.startswith(("http://", "https://")):
        return _sas_url(value)
    if "=" in value and any(key in lowered for key in _CONNECTION_KEYS):
        _check_connection_string(value)
        return Destination("connection", connection_string=value, container=container)
    if "://" in value:
        raise SettingsError("destination", f"unsupported URL scheme in {value.split('://')[0]!r}: use file://, https:// (SAS) or a path")
    return _folder(value)


def _folder(path: str) -> Destination:
    if not path or not Path(path).is_absolute():
        raise SettingsError("destination", f"a folder must be an absolute path or file:// URL, got {path!r}")
    return Destination("folder", path=Path(path))


def _sas_url(url: str) -> Destination:
    parsed = urlparse(url)
    if not parsed.hostname:
        raise SettingsError("destination", "a SAS URL needs a host: https://<account>.blob.core.windows.net/<container>?<sas>")
    if not parsed.path.strip("/"):
        raise SettingsError("destination", "a SAS URL must name a container: https://<account>.blob.core.windows.net/<container>?<sas>")
    if "sig" not in parse_qs(parsed.query):
        raise SettingsError("destination", "the URL has no SAS token (no 'sig' parameter): generate a container SAS with write permission")
    return Destination("sas", url=url)


def _connection_parts(value: str) -> dict[str, str]:
    parts = {}
    for segment in value.split(";"):
        key, sep, item = segment.partition("=")
        if sep:
            parts[key.strip().lower()] = item.strip()
    return parts


def _check_connection_string(value: str) -> None:
    parts = _connection_parts(value)
    if parts.get("usedevelopmentstorage", "").lower() == "true":
        return
    if "accountname" in parts and "accountkey" not in parts and "sharedaccesssignature" not in parts:
        raise SettingsError("destination", "the connection string has AccountName but no AccountKey or SharedAccessSignature")
    if "accountname" not in parts and "blobendpoint" not in parts:
        raise SettingsError("destination", "the connection string needs AccountName (or BlobEndpoint)")
    from azure.storage.blob import BlobServiceClient

    try:
        BlobServiceClient.from_connection_string(value)
    except ValueError as error:
        raise SettingsError("destination", f"not a usable Azure Storage connection string: {error}") from None

"""A service's export settings: where to (folder, SAS URL or connection string), which record types,
how often, and how long rows are kept.

Settings are checked here, before anything is stored, so a mistake is a 400 naming the field at
`PUT` time rather than an export that fails every minute. Whether the destination actually answers
is not checked here: that is a runtime condition, reported in the export status.

Where exports may go is a policy (DestinationPolicy), since whoever configures a destination makes
the collector write files or send requests there:
- a folder must lie under an allowed root: the data dir, and the folders INSIGHTS_EXPORT_ROOTS adds
  (checked on the resolved path, so neither `..` nor a symlink leads out);
- a URL (a SAS URL, a connection string's BlobEndpoint or protocol) must be https, unless
  INSIGHTS_EXPORT_ALLOW_HTTP is set for a local emulator such as Azurite;
- never a link-local, unspecified or multicast address (169.254.169.254 is a cloud's metadata
  service), also not once a name is resolved, at export time (sinks.py).
Secrets in a destination (AccountKey, SharedAccessSignature, a SAS URL's sig) are shown as
SECRET_MASK; a PUT that sends the masked form back unchanged keeps the stored secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from collector.destinations import forbidden_address
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
DEFAULT_TYPES = tuple(RECORD_TYPES)
RECORD_TYPES["ModelData"] = TABLES["modelData"]
"""Collected model data, exported in Azure ML's layout (modeldata_format.py) when asked for."""

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
    types: list[str] = Field(default_factory=lambda: list(DEFAULT_TYPES), description="Record types to export.")
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


SECRET_MASK = "****"
_SAS_SIG = re.compile(r"(?i)([?&]sig=)[^&]*")
_CONNECTION_SECRET = re.compile(r"(?i)((?:^|;)\s*(?:AccountKey|SharedAccessSignature)\s*=)([^;]*)")


def masked(destination: str | None) -> str | None:
    """The destination as shown: its secrets replaced by SECRET_MASK."""
    if not destination:
        return destination
    if destination.lower().startswith(("http://", "https://")):
        return _SAS_SIG.sub(lambda m: m.group(1) + SECRET_MASK, destination)
    return _CONNECTION_SECRET.sub(lambda m: m.group(1) + SECRET_MASK, destination)


def unmasked(destination: object, stored: str | None) -> object:
    """The destination a PUT means: the stored one when it sends back exactly its masked form
    (the secret unchanged); SettingsError when it carries a mask that stands for nothing stored."""
    if not isinstance(destination, str) or SECRET_MASK not in destination:
        return destination
    if stored and masked(stored) == destination.strip():
        return stored
    raise SettingsError("destination", f"it carries a masked secret ({SECRET_MASK}): send the secret itself, "
                        "or the destination exactly as GET shows it to keep the stored one")


@dataclass(frozen=True)
class DestinationPolicy:
    """Where exports may go (see the module's docstring)."""

    roots: tuple[Path, ...]
    allow_http: bool = False

    def check(self, destination: Destination) -> None:
        """SettingsError('destination', ...) when the policy refuses `destination`."""
        if destination.kind == "folder":
            assert destination.path is not None
            self._check_folder(destination.path)
        elif destination.kind == "sas":
            assert destination.url is not None
            self._check_url(destination.url)
        else:
            assert destination.connection_string is not None
            for url in connection_urls(destination.connection_string):
                self._check_url(url)

    def _check_folder(self, path: Path) -> None:
        resolved = path.resolve()
        roots = [root.resolve() for root in self.roots]
        if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
            raise SettingsError("destination", f"folder {path} is outside the folders exports may write to "
                                f"({', '.join(map(str, roots))}): choose one under them, or add its parent to "
                                "INSIGHTS_EXPORT_ROOTS")

    def _check_url(self, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme.lower() != "https" and not self.allow_http:
            raise SettingsError("destination", f"{parsed.scheme}://{parsed.hostname} is not https: keys and data "
                                "would cross the network in clear (set INSIGHTS_EXPORT_ALLOW_HTTP=true for a local "
                                "emulator such as Azurite)")
        reason = forbidden_address(parsed.hostname or "")
        if reason:
            raise SettingsError("destination", reason)


def connection_urls(connection_string: str) -> list[str]:
    """The endpoints an Azure Storage connection string sends to, as far as it says."""
    parts = _connection_parts(connection_string)
    if parts.get("usedevelopmentstorage", "").lower() == "true":
        return [parts.get("developmentstorageproxyuri") or "http://127.0.0.1:10000"]
    if parts.get("blobendpoint"):
        return [parts["blobendpoint"]]
    protocol = parts.get("defaultendpointsprotocol", "https")
    suffix = parts.get("endpointsuffix", "core.windows.net")
    return [f"{protocol}://{parts.get('accountname', '')}.blob.{suffix}"]

"""Where blobs go, behind one interface: a local folder, Azure Blob Storage, or memory (tests).

A blob is first written to a staging file by DuckDB, then `publish`ed under its name. Publishing is
atomic and idempotent in every sink: a reader never sees half a blob, and publishing the same name
twice (a re-export after a crash) leaves one blob.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from collector.destinations import forbidden_resolved
from exporters.settings import Destination, DestinationPolicy, SettingsError

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

STAGING_FOLDER = ".export-staging"
AZURE_TIMEOUTS = {"connection_timeout": 10, "read_timeout": 120}


def _azure_options() -> dict:
    """Fail fast on a dead endpoint (the SDK's default first backoff is 15 s): the scheduler
    retries with its own backoff, and status shows why."""
    from azure.storage.blob import ExponentialRetry

    # The SDK declares int for both backoffs, but computes with floats (random.uniform).
    retry = ExponentialRetry(initial_backoff=0.5, increment_base=2, retry_total=1, random_jitter_range=0.5)  # type: ignore[arg-type]
    return {**AZURE_TIMEOUTS, "retry_policy": retry}


class SinkError(RuntimeError):
    """The destination refused or could not be reached; the message says which and what to check."""


class Sink(Protocol):
    def staging_file(self) -> Path:
        """A fresh local path to write the blob to before publishing it."""

    def publish(self, staged: Path, name: str) -> None:
        """Make `staged` visible as blob `name` (replacing any blob of that name); consumes `staged`."""

    def describe(self) -> str:
        """Where this sink writes, without secrets."""


class FolderSink:
    """Blobs as files under a root folder. Staging lives inside the root, so publishing is a rename
    on one filesystem; the file and its folder are fsynced first, so a checkpoint never outlives
    the blob it records after a power cut."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._staging = self.root / STAGING_FOLDER

    def describe(self) -> str:
        return str(self.root)

    def staging_file(self) -> Path:
        try:
            self._staging.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SinkError(f"cannot create folder {self._staging}: {error.strerror}") from None
        return self._staging / f"{uuid.uuid4().hex}.tmp"

    def publish(self, staged: Path, name: str) -> None:
        target = self.root / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _fsync_file(staged)
            os.replace(staged, target)
            _fsync_dir(target.parent)
        except OSError as error:
            staged.unlink(missing_ok=True)
            raise SinkError(f"cannot write {target}: {error.strerror}") from None

    def clear_staging(self) -> None:
        """Remove staging files a crash left behind (their blobs are re-exported)."""
        if self._staging.is_dir():
            for leftover in self._staging.glob("*.tmp"):
                leftover.unlink(missing_ok=True)


class AzureBlobSink:
    """Block blobs in one container, by SAS URL or connection string. `upload_blob` commits the
    block list at the end, so a blob appears whole or not at all; overwrite=True makes a re-export
    replace rather than fail."""

    def __init__(self, destination: Destination, staging_dir: Path):
        self.destination = destination
        self._staging = Path(staging_dir)
        self._container: ContainerClient | None = None

    def describe(self) -> str:
        return self.destination.describe()

    def staging_file(self) -> Path:
        self._staging.mkdir(parents=True, exist_ok=True)
        return self._staging / f"{uuid.uuid4().hex}.tmp"

    def publish(self, staged: Path, name: str) -> None:
        from azure.core.exceptions import AzureError

        try:
            container = self._container_client()
            with open(staged, "rb") as data:
                container.upload_blob(name, data, overwrite=True, max_concurrency=2)
        except AzureError as error:
            raise SinkError(f"{self.describe()}: {_azure_message(error)}") from None
        finally:
            staged.unlink(missing_ok=True)

    def _container_client(self) -> ContainerClient:
        from azure.core.exceptions import HttpResponseError, ResourceExistsError
        from azure.storage.blob import BlobServiceClient, ContainerClient

        if self._container is not None:
            return self._container
        if self.destination.kind == "sas":
            assert self.destination.url is not None  # parse_destination gives a 'sas' destination its URL
            self._container = _reachable(ContainerClient.from_container_url(self.destination.url, **_azure_options()))
            return self._container
        # A 'connection' destination has its string, and valid settings require its container.
        assert self.destination.connection_string is not None and self.destination.container is not None
        service = BlobServiceClient.from_connection_string(self.destination.connection_string, **_azure_options())
        container = _reachable(service.get_container_client(self.destination.container))
        try:
            container.create_container()
        except ResourceExistsError:
            pass
        except HttpResponseError as error:
            if error.status_code != 403:  # a SAS connection string may not create containers: upload will tell
                raise
        self._container = container
        return container


class MemorySink:
    """Blobs in a dict, for tests of the export logic without a filesystem or emulator."""

    def __init__(self):
        self.blobs: dict[str, bytes] = {}
        self.publishes = 0
        self._staging = Path(tempfile.mkdtemp(prefix="memory-sink-"))

    def describe(self) -> str:
        return "memory"

    def staging_file(self) -> Path:
        return self._staging / f"{uuid.uuid4().hex}.tmp"

    def publish(self, staged: Path, name: str) -> None:
        self.blobs[name] = staged.read_bytes()
        self.publishes += 1
        staged.unlink()


def sink_for(destination: Destination, data_dir: Path) -> Sink:
    if destination.kind == "folder":
        assert destination.path is not None  # a 'folder' destination always has its path
        return FolderSink(destination.path)
    return AzureBlobSink(destination, Path(data_dir) / STAGING_FOLDER)


def policed_sinks(policy: DestinationPolicy):
    """A sink factory that applies `policy` on every pass: settings stored before the policy (or
    under wider roots) fail with the reason in the export status instead of being written to."""

    def factory(destination: Destination, data_dir: Path) -> Sink:
        try:
            policy.check(destination)
        except SettingsError as error:
            raise SinkError(f"refused by the export policy: {error}") from None
        return sink_for(destination, data_dir)

    return factory


def _reachable(client: ContainerClient) -> ContainerClient:
    """`client`, unless its host resolves to an address exports never go to (checked as the pass
    starts: a name that looked harmless at configure time may not be)."""
    from urllib.parse import urlparse

    url = urlparse(client.url)
    reason = forbidden_resolved(url.hostname or "", url.port)
    if reason:
        raise SinkError(f"refused by the export policy: {reason}")
    return client


def _fsync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _azure_message(error: Exception) -> str:
    """The first line of an Azure SDK error (they carry whole response dumps)."""
    reason = getattr(error, "reason", None) or getattr(error, "error_code", None)
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"{reason}: {text}" if reason and str(reason) not in text else text

"""The model registry in ClickHouse: store/models.py's ModelRegistry (same methods, same answers),
with the metadata *and the files* in ClickHouse, so that a model registered through one collector
downloads through any other (collectors keep nothing another needs; a data dir is per collector).

- Files: an upload is checked and unpacked in the collector's data dir exactly as on DuckDB
  (model_files.py: safe names, size bound, content hash), packed again into the tar a download
  serves, and that tar is stored as `model_chunks` rows of at most CHUNK_BYTES each (a String
  column holds bytes; ZSTD). A download streams the rows back part by part, never the whole model
  in memory; a missing part is an error, not a short file. The chunks are written before the
  metadata row that points at them (by a random `blob` id), so a listed model always has its bytes.
  Why ClickHouse and not a blob store: it is the one store every collector already reaches;
  models are written once and read at deployment, which ClickHouse's sequential reads serve well.
- Versions: ClickHouse has no transaction to take "highest + 1" in, so a version is claimed in
  `model_version_claims` (append-only, stamped by the server): a collector claims the next number,
  waits for every earlier claim to be visible (leases.py's `settle`, INSIGHTS_LEASE_SETTLE_S), and
  keeps the number only if its claim is the earliest; else it claims the next. Two registrations
  at once on two collectors thus get two versions. Numbers are never reused (on DuckDB a deleted
  latest version's number comes round again; here the next one is taken).
- Metadata: a ReplacingMergeTree keyed by (name, version), read with FINAL; a delete is a row with
  `is_deleted`, then its chunks are deleted (a lightweight DELETE).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson

from collector.store import model_files
from collector.store.clickhouse import control
from collector.store.clickhouse.leases import Timing
from collector.store.model_files import ModelError
from collector.store.models import MODELS_FOLDER, ModelVersion, check_name, staging_path, unpacked_upload

CHUNK_BYTES = 4 * 2**20
"""The bytes of one `model_chunks` row."""
CHUNKS_PER_REQUEST = 4
"""Rows inserted or read in one request (16 MB)."""
MAX_CLAIMS = 50

TABLES: dict[str, control.TableSpec] = {
    "model_registry": (
        "name String, version UInt32, description Nullable(String), tags String, root String, is_folder Bool, "
        "files Int32, size_bytes Int64, sha256 String, created_at DateTime64(6, 'UTC'), blob String, parts UInt32, "
        "row_version UInt64, is_deleted UInt8",
        "ReplacingMergeTree", "row_version, is_deleted", "ORDER BY (name, version)"),
    "model_chunks": (
        "blob String, part UInt32, bytes String CODEC(ZSTD(1))", "MergeTree", "", "ORDER BY (blob, part)"),
    "model_version_claims": (
        "name String, version UInt32, claim String, inserted DateTime64(6, 'UTC') DEFAULT now64(6)",
        "MergeTree", "", "ORDER BY (name, version, inserted)"),
}

_COLUMNS = "name, version, description, tags, root, is_folder, files, size_bytes, sha256, created_at"
"""The registry's columns that make a ModelVersion."""


class ModelRegistry:
    """store/models.py's registry over ClickHouse (see the module docstring)."""

    def __init__(self, connection: control.Connection, data_dir: Path, settle: float | None = None) -> None:
        self._connection = connection
        self.directory = data_dir / MODELS_FOLDER
        """Where uploads are unpacked and checked on their way in (in this collector's data dir)."""
        self._settle = Timing.from_environ().settle if settle is None else settle

    def staging_path(self) -> Path:
        return staging_path(self.directory)

    async def register(self, name: str, archive: Path, description: str | None, tags: dict[str, str]) -> ModelVersion:
        """Check and unpack the uploaded tar at `archive`, store its files, record the next version."""
        async with unpacked_upload(name, archive) as (unpacked_dir, unpacked):
            return await asyncio.wrap_future(control.submit(
                lambda: self._store(name, unpacked_dir, unpacked, description, tags)))

    def _store(self, name: str, unpacked_dir: Path, unpacked: model_files.Unpacked, description: str | None,
               tags: dict[str, str]) -> ModelVersion:
        blob = uuid.uuid4().hex
        try:
            parts = self._write_chunks(blob, model_files.packed(unpacked_dir))
            version = self._claim_version(name)
            model = ModelVersion(name, version, description, tags, unpacked.root, unpacked.is_folder, unpacked.files,
                                 unpacked.size_bytes, unpacked.sha256, datetime.now(UTC).replace(tzinfo=None))
            self._put(model, blob, parts, deleted=False)
        except BaseException:
            self._delete_chunks([blob])
            raise
        return model

    def import_version(self, model: ModelVersion, version_dir: Path) -> bool:
        """A version moved from a DuckDB store (`insights store copy`) with its number, time and files
        (the folder `version_dir`); its number is claimed, so later registrations take the next.
        False, writing nothing, when the store has that version already."""
        if self._blob(model) is not None:
            return False
        blob = uuid.uuid4().hex
        try:
            parts = self._write_chunks(blob, model_files.packed(version_dir))
            self._command(f"INSERT INTO {self._table('model_version_claims')} (name, version, claim) "
                          "SELECT {name:String}, {version:UInt32}, {claim:String}",
                          {"name": model.name, "version": model.version, "claim": f"copy-{blob}"})
            self._put(model, blob, parts, deleted=False)
        except BaseException:
            self._delete_chunks([blob])
            raise
        return True

    def _write_chunks(self, blob: str, stream: Iterator[bytes]) -> int:
        """The stream as `model_chunks` rows of CHUNK_BYTES; how many parts."""
        part, pending, buffer = 0, [], bytearray()
        for piece in stream:
            buffer += piece
            while len(buffer) >= CHUNK_BYTES:
                pending.append([blob, part, bytes(buffer[:CHUNK_BYTES])])
                del buffer[:CHUNK_BYTES]
                part += 1
                if len(pending) >= CHUNKS_PER_REQUEST:
                    self._insert_chunks(pending)
                    pending = []
        if buffer or part == 0:
            pending.append([blob, part, bytes(buffer)])
            part += 1
        self._insert_chunks(pending)
        return part

    def _insert_chunks(self, rows: list[list]) -> None:
        if rows:
            self._connection.client().insert(self._table("model_chunks"), rows, column_names=["blob", "part", "bytes"],
                                             settings=control.write_settings(self._connection))

    def _claim_version(self, name: str) -> int:
        """The next version number of `name`, claimed so that no other collector takes it too."""
        claim = uuid.uuid4().hex
        for _ in range(MAX_CLAIMS):
            (latest,) = self._query(f"SELECT max(version) FROM {self._table('model_version_claims')} "
                                    "WHERE name = {name:String}", {"name": name})[0]
            version = int(latest or 0) + 1
            self._command(f"INSERT INTO {self._table('model_version_claims')} (name, version, claim) "
                          "SELECT {name:String}, {version:UInt32}, {claim:String}",
                          {"name": name, "version": version, "claim": claim})
            time.sleep(self._settle)  # every claim stamped before ours is visible after this
            winner = self._query(f"SELECT claim FROM {self._table('model_version_claims')} WHERE name = {{name:String}} "
                                 "AND version = {version:UInt32} ORDER BY inserted, claim LIMIT 1",
                                 {"name": name, "version": version})
            if winner and winner[0][0] == claim:
                return version
        raise ModelError(f"model {name!r}: no version number could be claimed ({MAX_CLAIMS} registrations at once?)", 409)

    def _put(self, model: ModelVersion, blob: str, parts: int, deleted: bool) -> None:
        row = {"name": model.name, "version": model.version, "description": model.description,
               "tags": orjson.dumps(model.tags).decode(), "root": model.root, "is_folder": model.is_folder,
               "files": model.files, "size_bytes": model.size_bytes, "sha256": model.sha256,
               "created_at": model.created_at.replace(tzinfo=UTC), "blob": blob, "parts": parts,
               "row_version": time.time_ns() // 1000, "is_deleted": int(deleted)}
        self._connection.client().insert(self._table("model_registry"), [list(row.values())], column_names=list(row),
                                         settings=control.write_settings(self._connection))

    # reads --------------------------------------------------------------------------------------

    def get(self, name: str, version: int | None = None) -> ModelVersion:
        """The version asked for, or the latest; ModelError 404 naming what exists otherwise."""
        check_name(name)
        models = self.versions(name)
        found = next((m for m in models if version is None or m.version == version), None)
        if found is None:
            known = f"; its versions are {', '.join(str(m.version) for m in reversed(models))}" if models else ""
            which = f"{name}:{version}" if version is not None else name
            raise ModelError(f"no model {which!r}{known}", 404)
        return found

    def versions(self, name: str | None = None, latest: bool = False) -> list[ModelVersion]:
        """Every version (of `name`), by name then newest first; only the newest of each with `latest`."""
        where, params = ("AND name = {name:String}", {"name": check_name(name)}) if name is not None else ("", {})
        rows = self._query(f"SELECT {_COLUMNS} FROM {self._table('model_registry')} FINAL WHERE NOT is_deleted {where} "
                           "ORDER BY name, version DESC", params)
        models = [_model(row) for row in rows]
        if latest:
            models = [m for i, m in enumerate(models) if i == 0 or models[i - 1].name != m.name]
        return models

    def has_files(self, model: ModelVersion) -> bool:
        return self._blob(model) is not None

    def files(self, model: ModelVersion) -> Iterator[bytes]:
        """The version's file or folder as a tar stream, read from ClickHouse a few parts at a time."""
        found = self._blob(model)
        if found is None:
            raise ModelError(f"model {model.id!r} has no files in the store", 404)
        blob, parts = found
        for first in range(0, parts, CHUNKS_PER_REQUEST):
            wanted = list(range(first, min(first + CHUNKS_PER_REQUEST, parts)))
            rows = self._connection.client().query(
                f"SELECT part, bytes FROM {self._table('model_chunks')} WHERE blob = {{blob:String}} "
                "AND part >= {first:UInt32} AND part <= {last:UInt32} ORDER BY part",
                parameters={"blob": blob, "first": wanted[0], "last": wanted[-1]}, query_formats={"String": "bytes"},
                settings=control.read_settings(self._connection)).result_rows
            if [part for part, _ in rows] != wanted:
                raise ModelError(f"model {model.id!r}: parts of its files are missing from the store", 503)
            for _, data in rows:
                yield data

    def _blob(self, model: ModelVersion) -> tuple[str, int] | None:
        rows = self._query(f"SELECT blob, parts FROM {self._table('model_registry')} FINAL WHERE name = {{name:String}} "
                           "AND version = {version:UInt32} AND NOT is_deleted", {"name": model.name, "version": model.version})
        return (rows[0][0], int(rows[0][1])) if rows else None

    # deletes ------------------------------------------------------------------------------------

    async def delete(self, name: str, version: int | None = None) -> list[ModelVersion]:
        """Remove one version (or every version of the name) and its files; what was removed."""
        doomed = [self.get(name, version)] if version is not None else self.versions(name)
        if not doomed:
            raise ModelError(f"no model {name!r}", 404)
        await asyncio.wrap_future(control.submit(lambda: self._delete(doomed)))
        return doomed

    def _delete(self, doomed: list[ModelVersion]) -> None:
        blobs = [found[0] for model in doomed if (found := self._blob(model)) is not None]
        for model in doomed:
            self._put(model, "", 0, deleted=True)
        self._delete_chunks(blobs)

    def _delete_chunks(self, blobs: list[str]) -> None:
        if blobs:
            self._command(f"DELETE FROM {self._table('model_chunks')} WHERE blob IN {{blobs:Array(String)}}",
                          {"blobs": blobs})

    # plumbing -----------------------------------------------------------------------------------

    def _table(self, name: str) -> str:
        return control.table(self._connection, name)

    def _query(self, sql: str, parameters: dict) -> list:
        return self._connection.client().query(sql, parameters=parameters,
                                               settings=control.read_settings(self._connection)).result_rows

    def _command(self, sql: str, parameters: dict) -> None:
        self._connection.client().command(sql, parameters=parameters, settings=control.write_settings(self._connection))


def _model(row: tuple) -> ModelVersion:
    name, version, description, tags, root, is_folder, files, size, sha, created = row
    return ModelVersion(name, int(version), description, orjson.loads(tags), root, bool(is_folder), int(files),
                        int(size), sha, created.astimezone(UTC).replace(tzinfo=None) if created.tzinfo else created)

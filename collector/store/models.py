"""The model registry: versioned models (name:version), their metadata in the store and their files
under `<data dir>/models/<name>/<version>/`.

Models belong to the collector (an Azure ML workspace's registry), not to one service. A version
number is given by the single writer, inside the commit that records it (the highest so far plus
one), so two registrations at once never get the same one; the unpacked files are moved into their
version folder in that same operation, and a commit that fails takes its folder away again.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson

from collector.store import model_files
from collector.store.model_files import ModelError
from collector.store.writer import Writer

MODELS_FOLDER = "models"
STAGING_FOLDER = ".incoming"
MAX_MODEL_BYTES = int(os.environ.get("INSIGHTS_MODEL_MAX_MB") or 2048) * 2**20
"""The largest model (its files together, and its upload) the collector takes; INSIGHTS_MODEL_MAX_MB."""
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
MAX_TAGS_BYTES = 16 * 2**10

DDL = (
    """CREATE TABLE IF NOT EXISTS models (
        name VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        description VARCHAR,
        tags JSON NOT NULL,
        root VARCHAR NOT NULL,
        is_folder BOOLEAN NOT NULL,
        files INTEGER NOT NULL,
        size_bytes BIGINT NOT NULL,
        sha256 VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (name, version)
    )""",
)

_COLUMNS = "name, version, description, tags, root, is_folder, files, size_bytes, sha256, created_at"


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    description: str | None
    tags: dict[str, str]
    root: str
    """The registered file's or folder's own name: the one entry of its version folder."""
    is_folder: bool
    files: int
    size_bytes: int
    sha256: str
    created_at: datetime

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "version": self.version, "description": self.description,
                "tags": self.tags, "root": self.root, "is_folder": self.is_folder, "files": self.files,
                "size_bytes": self.size_bytes, "sha256": self.sha256,
                "created_time": self.created_at.replace(tzinfo=UTC).isoformat()}


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ModelError(f"model name {name!r}: 1 to 255 letters, digits, '-', '_' or '.', starting with a letter or digit")
    return name


def check_tags(tags: object) -> dict[str, str]:
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise ModelError("tags: a JSON object of strings to strings")
    if len(orjson.dumps(tags)) > MAX_TAGS_BYTES:
        raise ModelError(f"tags: more than {MAX_TAGS_BYTES} bytes of JSON")
    return tags


def staging_path(directory: Path) -> Path:
    """A fresh path for an upload on its way in, under the registry's `directory` (on the same disk
    as the models, so moving it is a rename); both stores' registries stage uploads here."""
    staging = directory / STAGING_FOLDER
    staging.mkdir(parents=True, exist_ok=True)
    return staging / uuid.uuid4().hex


@asynccontextmanager
async def unpacked_upload(name: str, archive: Path) -> AsyncIterator[tuple[Path, model_files.Unpacked]]:
    """The uploaded tar at `archive` for model `name`, checked and unpacked beside it (model_files:
    safe names, size bound, content hash): (the folder, what it holds); the folder is removed after,
    unless the caller moved it into place. Both stores' `register` start here."""
    check_name(name)
    unpacked_dir = archive.with_suffix(".d")
    try:
        yield unpacked_dir, await asyncio.to_thread(model_files.unpack, archive, unpacked_dir, MAX_MODEL_BYTES)
    finally:
        model_files.remove(unpacked_dir)


class ModelRegistry:
    """The store's side of the model registry; reads open a cursor each, writes go through the
    single writer."""

    def __init__(self, reader: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]], writer: Writer,
                 directory: Path):
        self._reader = reader
        self._writer = writer
        self.directory = directory

    def staging_path(self) -> Path:
        return staging_path(self.directory)

    async def register(self, name: str, archive: Path, description: str | None, tags: dict[str, str]) -> ModelVersion:
        """Unpack the uploaded tar at `archive` and record it as the name's next version."""
        async with unpacked_upload(name, archive) as (unpacked_dir, unpacked):
            created = datetime.now(UTC).replace(tzinfo=None)
            future = self._writer.write(operation=lambda con: self._insert(con, name, unpacked, description, tags, created))
            model = await asyncio.wrap_future(future)
            self._place(unpacked_dir, model)
            return model

    @staticmethod
    def _insert(con: duckdb.DuckDBPyConnection, name: str, unpacked: model_files.Unpacked, description: str | None,
                tags: dict[str, str], created: datetime) -> ModelVersion:
        (latest,) = con.execute("SELECT coalesce(max(version), 0) FROM models WHERE name = ?", [name]).fetchone() or (0,)
        model = ModelVersion(name, latest + 1, description, tags, unpacked.root, unpacked.is_folder, unpacked.files,
                             unpacked.size_bytes, unpacked.sha256, created)
        con.execute(f"INSERT INTO models ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [name, model.version, description, orjson.dumps(tags).decode(), model.root, model.is_folder,
                     model.files, model.size_bytes, model.sha256, created])
        return model

    def _place(self, unpacked_dir: Path, model: ModelVersion) -> None:
        target = self.version_dir(model.name, model.version)
        model_files.remove(target)  # a deleted version's leftovers, when its number comes round again
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(unpacked_dir, target)

    def version_dir(self, name: str, version: int) -> Path:
        return self.directory / check_name(name) / str(int(version))

    def get(self, name: str, version: int | None = None) -> ModelVersion:
        """The version asked for, or the latest; ModelError 404 naming what exists otherwise."""
        check_name(name)
        with self._reader() as cursor:
            if version is None:
                row = cursor.execute(f"SELECT {_COLUMNS} FROM models WHERE name = ? ORDER BY version DESC LIMIT 1",
                                     [name]).fetchone()
            else:
                row = cursor.execute(f"SELECT {_COLUMNS} FROM models WHERE name = ? AND version = ?",
                                     [name, version]).fetchone()
        if row is None:
            versions = sorted(m.version for m in self.versions(name))
            known = f"; its versions are {', '.join(map(str, versions))}" if versions else ""
            which = f"{name}:{version}" if version is not None else name
            raise ModelError(f"no model {which!r}{known}", 404)
        return _model(row)

    def versions(self, name: str | None = None, latest: bool = False) -> list[ModelVersion]:
        """Every version (of `name`), by name then newest first; only the newest of each with `latest`."""
        where, params = ("WHERE name = ?", [check_name(name)]) if name is not None else ("", [])
        with self._reader() as cursor:
            rows = cursor.execute(f"SELECT {_COLUMNS} FROM models {where} ORDER BY name, version DESC", params).fetchall()
        models = [_model(row) for row in rows]
        if latest:
            models = [m for i, m in enumerate(models) if i == 0 or models[i - 1].name != m.name]
        return models

    def has_files(self, model: ModelVersion) -> bool:
        return self.version_dir(model.name, model.version).is_dir()

    def files(self, model: ModelVersion) -> Iterator[bytes]:
        """The version's file or folder as a tar stream."""
        return model_files.packed(self.version_dir(model.name, model.version))

    async def delete(self, name: str, version: int | None = None) -> list[ModelVersion]:
        """Remove one version (or every version of the name) and its files; what was removed."""
        doomed = [self.get(name, version)] if version is not None else self.versions(name)
        if not doomed:
            raise ModelError(f"no model {name!r}", 404)
        versions = [m.version for m in doomed]
        await asyncio.wrap_future(self._writer.write(operation=lambda con: con.execute(
            "DELETE FROM models WHERE name = ? AND list_contains(?, version)", [name, versions])))
        for model in doomed:
            model_files.remove(self.version_dir(name, model.version))
        if not self.versions(name):
            model_files.remove(self.directory / name)
        return doomed


def _model(row: tuple) -> ModelVersion:
    name, version, description, tags, root, is_folder, files, size, sha, created = row
    return ModelVersion(name, int(version), description, orjson.loads(tags), root, bool(is_folder), int(files),
                        int(size), sha, created)

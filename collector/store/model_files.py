"""A registered model's files on disk: unpacking an uploaded tar safely, hashing it, packing it again.

A model version is one file or one folder, kept as Azure ML v1 keeps it in a scoring container:
`<models dir>/<name>/<version>/<file or folder name>`, so a deployment can copy the version folder
as it is and `Model.get_model_path` finds exactly one entry in it. Uploads come as a tar whose one
top-level entry is that file or folder. Nothing in an archive chooses where it lands: absolute
names, `..`, backslashes, links and special files are refused (400) before anything is written,
and the unpacked size is bounded (413) whatever the archive's own size.

The content hash (`sha256`) of a file model is the SHA-256 of its bytes (what `sha256sum` prints);
of a folder model, the SHA-256 of its files' lines `<relative path>\\0<file sha256>\\n`, sorted by
path, so the same folder gives the same hash wherever it is registered from.
"""

from __future__ import annotations

import hashlib
import queue
import shutil
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_FILES = 10_000
CHUNK_BYTES = 1 << 20
READER_GONE_S = 120.0


class ModelError(ValueError):
    """A model request that cannot be met: the message says what and where; `status_code` is the
    HTTP status the API answers with."""

    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class Unpacked:
    """What an upload held: its top-level name, file count, total bytes and content hash."""

    root: str
    files: int
    size_bytes: int
    sha256: str
    is_folder: bool


def unpack(archive: Path, destination: Path, max_bytes: int) -> Unpacked:
    """Check every member of the tar at `archive`, then write it under `destination` (created)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            root, is_folder = _check(members, max_bytes)
            destination.mkdir(parents=True)
            hashes = _extract(tar, members, destination)
    except (tarfile.TarError, EOFError, OSError) as error:
        if isinstance(error, FileExistsError):
            raise ModelError(f"{error.filename}: the archive holds this path twice") from None
        raise ModelError(f"the upload is not a readable tar archive ({str(error).splitlines()[0].rstrip(':')})") from None
    return Unpacked(root, len(hashes), sum(size for _, size in hashes.values()), content_hash(hashes, is_folder),
                    is_folder)


def _check(members: list[tarfile.TarInfo], max_bytes: int) -> tuple[str, bool]:
    """(the one top-level name, whether it is a folder); ModelError for anything unsafe."""
    if not members:
        raise ModelError("the archive is empty: a model is one file or one folder")
    if len(members) > MAX_FILES:
        raise ModelError(f"the archive holds {len(members)} entries; the limit is {MAX_FILES}")
    roots = set()
    total = 0
    for member in members:
        parts = safe_parts(member.name)
        if not (member.isfile() or member.isdir()):
            raise ModelError(f"{member.name}: links and special files are not accepted in a model")
        roots.add(parts[0])
        total += member.size if member.isfile() else 0
    if total > max_bytes:
        raise ModelError(f"the model's files hold {total} bytes; the limit is {max_bytes}", 413)
    if len(roots) != 1:
        raise ModelError(f"the archive has {len(roots)} top-level entries ({', '.join(sorted(roots)[:5])}); "
                         "a model is one file or one folder")
    (root,) = roots
    is_folder = any(len(safe_parts(m.name)) > 1 or m.isdir() for m in members)
    return root, is_folder


def safe_parts(name: str) -> tuple[str, ...]:
    """The parts of a relative POSIX path that stays where it is put; ModelError otherwise."""
    if not name or "\\" in name or "\0" in name or name.startswith("/"):
        raise ModelError(f"{name!r}: only relative names with '/' are accepted in a model archive")
    parts = tuple(part for part in PurePosixPath(name).parts if part != ".")
    if not parts or ".." in parts:
        raise ModelError(f"{name!r}: a name in a model archive may not leave its folder ('..')")
    return parts


def _extract(tar: tarfile.TarFile, members: list[tarfile.TarInfo], destination: Path) -> dict[str, tuple[str, int]]:
    """Write the checked members; {relative path: (sha256, size)} of the files."""
    hashes: dict[str, tuple[str, int]] = {}
    for member in members:
        parts = safe_parts(member.name)
        target = destination.joinpath(*parts)
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        if source is None:  # a regular file always has a reader; checked in _check
            raise ModelError(f"{member.name}: cannot be read from the archive")
        digest = hashlib.sha256()
        with open(target, "xb") as out:
            while chunk := source.read(CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
        hashes["/".join(parts[1:]) or parts[0]] = (digest.hexdigest(), member.size)
    return hashes


def content_hash(hashes: dict[str, tuple[str, int]], is_folder: bool) -> str:
    if not is_folder:
        (only,) = hashes.values()
        return only[0]
    lines = "".join(f"{path}\0{sha}\n" for path, (sha, _) in sorted(hashes.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def packed(version_dir: Path) -> Iterator[bytes]:
    """The version folder's one entry as a tar stream, produced by a thread a few chunks ahead of
    the reader (a model may be larger than memory should hold)."""
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=8)

    class _Pipe:
        def write(self, data: bytes) -> int:
            chunks.put(bytes(data), timeout=READER_GONE_S)  # queue.Full ends a pack nobody reads any more
            return len(data)

    def produce() -> None:
        try:
            with tarfile.open(fileobj=_Pipe(), mode="w|", bufsize=CHUNK_BYTES) as tar:  # type: ignore[call-overload]
                for entry in sorted(version_dir.iterdir()):
                    tar.add(entry, arcname=entry.name, filter=_regular_only)
            chunks.put(None)
        except BaseException as error:  # noqa: BLE001 (handed to the reader, which raises it)
            chunks.put(error)

    threading.Thread(target=produce, name="model-pack", daemon=True).start()
    while (chunk := chunks.get()) is not None:
        if isinstance(chunk, BaseException):
            raise chunk
        yield chunk


def _regular_only(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return info if info.isfile() or info.isdir() else None


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)

"""Where the collector is and which key to present: one answer for the CLI, the SDK, the dashboard
and the wrapper, so they cannot disagree, and a record of where it looked, so an error about a
missing or refused key can say where to put one.

`resolve_collector(url, api_key, config)` takes each of the URL and the key from the first place
that has it (empty values count as unset):

1. The arguments: a command-line flag, `Workspace(url, api_key)`.
2. A config file, only when one is asked for (`config`; `Workspace.from_config()` asks): JSON
   `{"url": ..., "api_key": ...}`, either may be left out. `config` is a file, or a folder holding
   `.insights/config.json` or `config.json` (it must exist), or True to look in the current folder
   and then each parent for `.insights/config.json`, then `config.json`; a `config.json` that has
   neither "url" nor "api_key" (an Azure ML one, say) is passed over.
3. The environment: INSIGHTS_URL, INSIGHTS_API_KEY, and the admin.key in INSIGHTS_DATA_DIR when set.
4. The user config `insights up` writes (`user_config_path()`: $XDG_CONFIG_HOME/insights/config.json,
   else ~/.config/insights/config.json; mode 0600): JSON `{"url": ..., "key_file": ...}`, the path
   of the admin.key, never the key itself. Passed over when the environment names no home.
5. The local collector: ./insights-data/admin.key and the URL http://127.0.0.1:8080.

No key anywhere is not an error here: the collector answers 401 and the SDK's error names every
place in `Connection.looked_at`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from collector import admin_key
from collector.client.errors import ConfigError

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_DATA_DIR = "./insights-data"
URL_ENV_VAR = "INSIGHTS_URL"
DATA_DIR_ENV_VAR = "INSIGHTS_DATA_DIR"

CONFIG_FILES = (Path(".insights") / "config.json", Path("config.json"))
USER_CONFIG = Path("insights") / "config.json"
"""Under $XDG_CONFIG_HOME (else ~/.config): what `insights up` last wrote (`write_user_config`)."""


@dataclass(frozen=True)
class Connection:
    """A collector's URL and the key to present, with where the key came from."""

    url: str
    api_key: str | None
    source: str | None
    """Where `api_key` came from: "the api_key argument", a config file's path, "INSIGHTS_API_KEY" or
    an admin.key's path; None when there is no key."""
    looked_at: tuple[str, ...] = ()
    """Every place looked at for the key, in order, ending with `source` when one had it."""
    config_path: Path | None = None
    """The config file read, if any."""

    def key_hint(self) -> str:
        """Where the key came from, or every place it was looked for: what to add to an
        authentication error so the user knows which key to fix or where to put one."""
        if self.api_key:
            return f"the key came from {self.source}"
        return "no key: looked at " + ", ".join(self.looked_at)


def resolve_collector(url: str | None = None, api_key: str | None = None,
                      config: str | os.PathLike | bool | None = None,
                      environ: Mapping[str, str] | None = None) -> Connection:
    """The collector's URL and key, each from the first place that has it (see the module's
    docstring): arguments, then the config file (when `config` asks for one), then INSIGHTS_URL and
    INSIGHTS_API_KEY, then the local data dir's admin.key and http://127.0.0.1:8080.
    ConfigError when a config file named by `config` is missing or unreadable."""
    environ = os.environ if environ is None else environ
    looked_at: list[str] = []
    found = _find_config(None if config is True else Path(config)) if config else None
    values = _read_config(found) if found else {}

    def key() -> tuple[str | None, str | None]:
        if api_key:
            return api_key, "the api_key argument"
        if config:
            looked_at.append(str(found) if found else
                             f".insights/config.json or config.json in {Path.cwd()} and its parents")
            if values.get("api_key"):
                return values["api_key"], str(found)
        looked_at.append(admin_key.ENV_VAR)
        if environ.get(admin_key.ENV_VAR):
            return environ[admin_key.ENV_VAR], admin_key.ENV_VAR
        if environ.get(DATA_DIR_ENV_VAR):
            return _key_file(Path(environ[DATA_DIR_ENV_VAR]) / admin_key.KEY_FILENAME, looked_at)
        if user_path is not None:
            looked_at.append(f"{user_path} (key_file)" if user.get("key_file") else str(user_path))
            if user.get("key_file"):
                from_user = _key_file(Path(user["key_file"]), looked_at)
                if from_user[0]:
                    return from_user
        return _key_file(Path(DEFAULT_DATA_DIR) / admin_key.KEY_FILENAME, looked_at)

    user_path = user_config_path(environ)
    user = _read_user_config(user_path) if user_path is not None else {}
    resolved_key, source = key()
    resolved_url = (url or values.get("url") or environ.get(URL_ENV_VAR) or user.get("url") or DEFAULT_URL).rstrip("/")
    return Connection(resolved_url, resolved_key, source, tuple(looked_at), found)


def _key_file(path: Path, looked_at: list[str]) -> tuple[str | None, str | None]:
    """The key in an admin.key file, and its path; (None, None) when missing, empty or unreadable."""
    absolute = os.path.abspath(path)
    try:
        from_file = Path(absolute).read_text().strip() if os.path.exists(absolute) else None
    except OSError as error:
        looked_at.append(f"{absolute} (unreadable: {error.strerror})")
        return None, None
    looked_at.append(absolute)
    return (from_file, absolute) if from_file else (None, None)


def user_config_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """$XDG_CONFIG_HOME/insights/config.json, else $HOME/.config/insights/config.json; None when the
    environment names neither."""
    environ = os.environ if environ is None else environ
    if environ.get("XDG_CONFIG_HOME"):
        return Path(environ["XDG_CONFIG_HOME"]) / USER_CONFIG
    if environ.get("HOME"):
        return Path(environ["HOME"]) / ".config" / USER_CONFIG
    return None


def write_user_config(url: str, key_file: str | os.PathLike, environ: Mapping[str, str] | None = None) -> Path | None:
    """Record where the collector is and where its admin.key lives (not the key) for every later
    command, in the user config (folder 0700, file 0600). Its path, or None when there is no home
    to write it in or it cannot be written."""
    path = user_config_path(environ)
    if path is None:
        return None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = json.dumps({"url": url, "key_file": os.path.abspath(key_file)}, indent=2) + "\n"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(data)
        os.chmod(path, 0o600)
    except OSError:
        return None
    return path


def _read_user_config(path: Path) -> dict:
    """The user config's "url" and "key_file"; {} when it is missing or not such a file."""
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(values, dict):
        return {}
    return {key: values[key] for key in ("url", "key_file") if isinstance(values.get(key), str) and values[key]}


def _find_config(path: Path | None) -> Path | None:
    if path is not None:
        if path.is_file():
            return path
        for name in CONFIG_FILES:
            if (path / name).is_file():
                return path / name
        raise ConfigError(f"no config file at {path} (expected a file, or a folder with .insights/config.json "
                          f"or config.json holding {{\"url\", \"api_key\"}})")
    for folder in (Path.cwd(), *Path.cwd().parents):
        for name in CONFIG_FILES:
            candidate = folder / name
            if candidate.is_file() and (name != Path("config.json") or _names_a_collector(candidate)):
                return candidate
    return None


def _names_a_collector(path: Path) -> bool:
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(values, dict) and bool({"url", "api_key"} & values.keys())


def _read_config(path: Path) -> dict:
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read the config file {path}: {error}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"the config file {path} must hold a JSON object like {{\"url\": ..., \"api_key\": ...}}")
    return {key: values[key] for key in ("url", "api_key") if isinstance(values.get(key), str) and values[key]}

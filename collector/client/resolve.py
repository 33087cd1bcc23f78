"""Where the collector is and which key to present."""

from __future__ import annotations

import json
from pathlib import Path

from collector.client.errors import ConfigError

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_DATA_DIR = "./insights-data"

CONFIG_FILES = (Path(".insights") / "config.json", Path("config.json"))


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

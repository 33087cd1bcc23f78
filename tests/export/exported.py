"""Reading back what export wrote, from a folder or a container, and checking it."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import orjson

NAME = re.compile(
    r"^(?P<service>[A-Za-z0-9-]+)_(?P<ikey>[0-9a-f]{32})/(?P<type>Requests|Messages|Exceptions|Rdd|Event|Metrics)/"
    r"(?P<day>\d{4}-\d{2}-\d{2})/(?P<hour>\d{2})/(?P<first>\d{16})-(?P<last>\d{16})_(?P<stamp>\d{8}_\d{6})\.blob$"
)


def folder_blobs(root: Path) -> dict[str, bytes]:
    """Every published blob under a folder by its name (staging files excluded)."""
    root = Path(root)
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*.blob")}


def items_of(blobs: dict[str, bytes]) -> list[dict]:
    return [orjson.loads(line) for data in blobs.values() for line in data.splitlines() if line.strip()]


def check_names(blobs: dict[str, bytes], service: dict) -> None:
    """The App Insights layout, the service's prefix, and no two blobs of a type sharing a `_seq`."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for name in blobs:
        match = NAME.match(name)
        assert match, f"blob name out of layout: {name}"
        assert match["service"] == service["name"]
        assert match["ikey"] == service["instrumentation_key"].replace("-", "")
        assert match["day"].replace("-", "") + match["hour"] == match["stamp"][:8] + match["stamp"][9:11]
        spans.setdefault(match["type"], []).append((int(match["first"]), int(match["last"])))
    for record_type, ranges in spans.items():
        ranges.sort()
        for (_, last), (first, _) in zip(ranges, ranges[1:]):
            assert first > last, f"{record_type}: overlapping blobs {ranges}"


def assert_exactly_once(items: list[dict], expected_ids: set[str]) -> None:
    counts = Counter(item["itemId"] for item in items)
    duplicated = [item_id for item_id, n in counts.items() if n > 1]
    missing = expected_ids - set(counts)
    extra = set(counts) - expected_ids
    assert not duplicated, f"{len(duplicated)} items exported more than once, e.g. {duplicated[:3]}"
    assert not missing, f"{len(missing)} items never exported, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} unexpected items exported"
    assert len(items) == len(expected_ids)


def wait_status(client, service: str, until, timeout: float = 60.0, interval: float = 0.1) -> dict:
    """Poll the service's export status until `until(status)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"/api/services/{service}/export/status").json()
        if until(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"export status never got there: {status}")
        time.sleep(interval)

"""Putting user-chosen values (operation names, result codes, exception types) into KQL safely.

The collector's translator never pastes text into SQL, but a value pasted into *KQL* could still
change the query's meaning; a quoted literal with escapes keeps it a value.
"""

from __future__ import annotations


def string(value: str) -> str:
    """A KQL double-quoted string literal holding exactly `value`."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def string_list(values) -> str:
    """`("a", "b")` for an `in` clause."""
    return "(" + ", ".join(string(v) for v in values) + ")"

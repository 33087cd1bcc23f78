"""Compile a query within its budget: measure the text, reuse the translation made for the same
text before, or have the sandbox make one (translation.py, run in sandbox.py's workers).

Translations are cached by text: dashboards re-run the same queries, and the SQL does not depend
on the instant, which travels as the bound clock parameter. A query that sets the clock itself
(`set query_now = ...`) is not cached, so its own value is kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime

from duckdb_kql.translate import CLOCK_SLOT

from .budget import Budget, check_shape
from .errors import SYNTAX, KqlError
from .sandbox import SANDBOX
from .translation import Translation

DEFAULT_TIMEOUT_S = 30.0
_CACHE_SIZE = 512


class _Translations:
    """The last `_CACHE_SIZE` translations, by text (least recently used out first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, Translation] = OrderedDict()

    def get(self, text: str) -> Translation | None:
        with self._lock:
            found = self._entries.get(text)
            if found is not None:
                self._entries.move_to_end(text)
            return found

    def put(self, text: str, compiled: Translation) -> None:
        with self._lock:
            self._entries[text] = compiled
            while len(self._entries) > _CACHE_SIZE:
                self._entries.popitem(last=False)


_CACHE = _Translations()


def compile_kql(text: str, now: datetime, budget: Budget | None = None) -> Translation:
    """Validate and translate *text* within *budget* (default: 30 s from now); raise KqlError
    naming the problem and its position, or the limit the query reached."""
    if not isinstance(text, str) or not text.strip():
        raise KqlError(SYNTAX, "the query is empty")
    budget = budget or Budget.starting_now(DEFAULT_TIMEOUT_S)
    if "query_now" in text:
        check_shape(text)
        return Translation(*SANDBOX.translate(text, now, budget))
    compiled = _CACHE.get(text)
    if compiled is None:
        check_shape(text)
        compiled = Translation(*SANDBOX.translate(text, None, budget))
        _CACHE.put(text, compiled)
    if CLOCK_SLOT not in compiled.parameters:
        return compiled
    return replace(compiled, parameters={**compiled.parameters, CLOCK_SLOT: now})

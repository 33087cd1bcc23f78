"""One budget per query: the time, memory and rows it may use, from the first character compiled
to the last row fetched.

- **Time**: one deadline, set when the query (or the batch holding it) arrives. Compilation runs
  in a sandbox process that is killed at the deadline (sandbox.py); execution is interrupted at
  it (engine.py). Either way the answer is a 504 naming the limit.
- **Text**: before anything is compiled, the text is measured: its length, how deep its brackets
  nest and how many operators (`|`) it chains. Beyond these the translator's recursion and the
  SQL it writes grow past what any query needs, so the query is refused with a 400 at the place
  it crosses the line.
- **Compilation memory**: the sandbox's address-space cap (sandbox.py).
- **Rows and values generated**: `range` may produce at most `MAX_RANGE_ROWS` rows, and `strrep`
  at most `MAX_GENERATED_VALUE_BYTES` per value (generators.py), checked before anything is
  generated.
- **Execution memory**: each query's sorts and hash tables get a share of the collector's DuckDB
  memory (`QUERY_MEMORY_SHARE` of INSIGHTS_MEMORY_LIMIT, DuckDB's `operator_memory_limit`) and
  spill to disk beyond it, so that ingestion always finds memory; a query that cannot fit gets a
  400 naming the limit.
- **Result**: App Insights' caps, 500,000 rows / 64 MB (results.py).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import lru_cache

from .errors import LIMIT, TIMEOUT, KqlError, position

MAX_QUERY_CHARS = 65_536
MAX_NESTING = 32
"""Brackets (`(`, `[`, `{`) inside one another. The parser recurses about fifteen frames per level."""
MAX_OPERATORS = 200
"""`|` in the whole text: each is a nested subquery in the SQL, and a `join`'s or `union`'s inner
pipeline counts too."""
MAX_RANGE_ROWS = 10_000_000
MAX_GENERATED_VALUE_BYTES = 64 * 1024
"""The largest value ingestion stores whole (an item above 64 KB is capped)."""
STRREP_MAX_MULTIPLIER = 1024
"""Kusto repeats a string at most 1024 times, whatever multiplier it is given."""
QUERY_MEMORY_SHARE = 0.5


@dataclass(frozen=True)
class Budget:
    """What one query may still spend: the deadline (time.monotonic()) and the limit it came from."""

    deadline: float
    timeout_s: float
    memory_bytes: int | None = None
    """The query's share of the collector's memory for sorts and hash tables (None: DuckDB's own)."""

    @classmethod
    def starting_now(cls, timeout_s: float, deadline: float | None = None,
                     memory_bytes: int | None = None) -> Budget:
        """A budget of *timeout_s* from now, or up to *deadline* if that comes first (a batch's)."""
        own = time.monotonic() + timeout_s
        return cls(min(own, deadline) if deadline is not None else own, timeout_s, memory_bytes)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check(self, stage: str) -> float:
        """The seconds left; a TIMEOUT KqlError naming the limit and *stage* if none are."""
        left = self.remaining()
        if left <= 0:
            raise out_of_time(self.timeout_s, stage)
        return left


def out_of_time(timeout_s: float, stage: str) -> KqlError:
    return KqlError(TIMEOUT, f"the query was cancelled while {stage}: it ran longer than the time limit "
                             f"({timeout_s:g} s, INSIGHTS_QUERY_TIMEOUT_S)")


_SCAN = re.compile(
    r"//[^\n]*"                                            # a comment
    r"|```.*?(?:```|$)"                                     # a multi-line string
    r"""|[hH]?@"[^"\n]*"?|[hH]?@'[^'\n]*'?"""              # verbatim: "" is two adjacent strings
    r"""|[hH]?"(?:[^"\\\n]|\\.)*"?|[hH]?'(?:[^'\\\n]|\\.)*'?"""  # with backslash escapes
    r"|[()\[\]{}|]",
    re.DOTALL)


def check_shape(text: str) -> None:
    """Refuse a text too long, too deeply nested or with too many operators (see the module doc).

    Comments and string literals are skipped (a bracket or `|` inside them is text), so the count
    is what the parser will see.
    """
    if len(text) > MAX_QUERY_CHARS:
        raise KqlError(LIMIT, f"the query is {len(text):,} characters long; the limit is {MAX_QUERY_CHARS:,}")
    depth = operators = 0
    for match in _SCAN.finditer(text):
        token = match.group(0)
        if token in ("(", "[", "{"):
            depth += 1
            if depth > MAX_NESTING:
                line, pos = position(text, match.start())
                raise KqlError(LIMIT, f"the query nests brackets more than {MAX_NESTING} deep", line, pos)
        elif token in (")", "]", "}"):
            depth = max(depth - 1, 0)
        elif token == "|":
            operators += 1
            if operators > MAX_OPERATORS:
                line, pos = position(text, match.start())
                raise KqlError(LIMIT, f"the query chains more than {MAX_OPERATORS} operators ('|')", line, pos)


_SIZE = re.compile(r"^\s*([\d.]+)\s*([KMGT]?I?B|BYTES?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "BYTE": 1, "BYTES": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(text: str | None) -> int | None:
    """Bytes in a DuckDB memory size (`4GB`, `512MiB`, `953.6 MiB`); None if it is not one."""
    match = _SIZE.match(text or "")
    if match is None:
        return None
    unit = (match.group(2) or "").upper()
    try:
        return int(float(match.group(1)) * _UNITS[unit])
    except (KeyError, ValueError):
        return None


@lru_cache(maxsize=16)
def query_memory(memory_limit: str | None) -> int | None:
    """A query's share of the collector's DuckDB memory limit (None when there is no limit set);
    cached: parsing it was 0.08 ms of every query."""
    total = parse_size(memory_limit)
    return int(total * QUERY_MEMORY_SHARE) if total else None

"""The lookup index: which rows may hold an id-like term, so that finding one request (`search
"<id>"`, `where operation_Id == "..."`, a request-id dimension, `has` on `message`) reads a few
rows instead of every row of every table.

Why a side index of terms, and why this shape (profiled at 10M rows per table, bench/README.md):
- The ids users look for are random (operation ids, GUIDs), so neither the tables' order nor
  their min/max zone maps narrow a scan: `search "<id>"` ran `has` over every string column of
  every row (4.3 s). No DuckDB full-text extension installs offline here.
- What is indexed: every *term* of a row that looks like an id, the maximal runs of ASCII letters
  and digits (lowercased, with the two non-ASCII letters that case-fold to ASCII, `ſ` and the
  Kelvin sign, folded too) at least MIN_TERM characters long and holding a digit (but not
  starting with STOP_ZEROS zeros: a counter's padding), taken from every
  string column and from the text of every dynamic column as KQL's `has` sees it (`col ->> '$'`).
  Words and short numbers are left out: they would make the index as large as the tables and
  narrow nothing. A query the index cannot narrow simply scans (collector/kql/lookup.py decides).
  The writer's statement reads only the columns of its batch that can hold such a term: one
  with no value, no ASCII digit, or (a string column) no run of MIN_TERM ASCII letters, digits or
  non-ASCII characters holds none (`_may_hold_terms`, checked over the Arrow batch in hand), so
  leaving it out drops no entry, and a batch's short or wordy columns (`itemType`, `sdkVersion`,
  `url`, ...) cost the statement nothing.
- Stored as (64-bit hash of the term, table, `_seq`), in three tables: `lookup_recent`, which the
  writer appends to in the same transaction as the rows, and `lookup_terms`, sorted runs: when
  the recent part reaches RUN_ROWS it becomes `lookup_sealed` and is copied over sorted by hash,
  a slice of the hash space per group commit (off any one commit's critical path: `RunMove`),
  then dropped; so each run's row groups
  cover narrow hash ranges and DuckDB's zone maps skip all but one per run; a probe reads a row group per run plus the recent part
  (~1 ms at 33M entries), and the query joins the few `_seq`s back (zone maps again).
- Who makes the entries: the C extension `_lookup_terms` (built with the ingestion one by
  `pip install -e .`), in one pass over the Arrow buffers of the batch the writer inserts, with
  DuckDB's own string hash reproduced (checked against DuckDB's at open: `compiled_matches`),
  so that probes keep hashing in SQL. The SQL statement `terms_sql` is the reference, and makes
  the entries where the extension is not built or hashes otherwise, and for the rows whose
  dynamic text DuckDB's `->> '$'` renders with other terms than the stored text has (a `\\u`
  escape, an exponent, a fraction not in its shortest form: `dynamic_safe` in the C file);
  tests/kql/test_lookup_terms_compiled.py holds the two to the same entries. In the writer
  alone the statement cost ~9 µs of CPU per row (regex over the lowercased texts, unnest,
  hash), the C pass ~0.5; what the index still costs is its entries' insert and their moves
  into sorted runs (bench/README.md).
- What keeps answers exact: the index is only ever used to *narrow* the rows a predicate is then
  evaluated on, unchanged (collector/kql/lookup.py), so an entry too many (a hash collision, a
  row deleted by retention, a term of another column) costs nothing but a row read; the one thing
  that matters is that no row's term is missing, which holds because every insert goes through
  the writer's transaction (imports included), a store opened without the index (an earlier
  version's, or another DuckDB build whose `hash` differs: HASH_PROBE) is indexed whole before
  the collector serves, and retention forgets the entries of the rows it deleted in the same
  commit (`forget`). tests/kql/test_request_lookup.py compares indexed and full-scan answers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collector.store.schema import SEQ_COLUMN, TABLES
from collector.store.transactions import transaction

try:
    from collector.store import _lookup_terms  # type: ignore[attr-defined]
except ImportError:  # not built (no C compiler at install): the SQL statement makes every entry
    _lookup_terms = None

log = logging.getLogger(__name__)

MIN_TERM = 8
STOP_ZEROS = 6
"""A term that starts with this many zeros is not indexed, and `best_term` never asks for one: a
zero-padded counter (the ends of the collector's own item ids, `...-000000000123`) repeats in
every batch, so its probe listed more rows than MAX_CANDIDATES and the query scanned anyway;
its entries were 1 in 6 of the ingest bench's. A rule of the term alone, so that both sides
apply it alike."""
RUN_ROWS = 1_000_000
"""Entries of `lookup_recent` past which they are sorted into a run of `lookup_terms`."""
MOVE_ROWS = 100_000
"""Entries copied into a run per group commit, about (`RunMove`): each slice scans the whole sealed
table, so 10 slices of a million entries cost about what the one move did (bench/README.md)."""
COMPILED_FORM = 2
"""The `FORM` of the C module this file calls (its arguments and the entries it makes)."""
HASH_PROBE = "endpoint-insights-lookup-0"
"""Hashed at open and compared with the value stored at build: DuckDB's `hash` is not promised
stable across versions, and a changed hash would make every stored entry unfindable."""
UNINDEXED = frozenset({"modelData", "modelMonitorResults"})
"""Payload tables (features, metric rows): large texts, never what a request id is looked up in;
queries over them scan, as before."""
INDEXED = tuple(name for name in TABLES if name not in UNINDEXED)
_NUMBER = {name: number for number, name in enumerate(INDEXED)}
"""The `t` of a table's entries (an index's entries name their table: `_seq`s are unique across
tables only when the writer drew them)."""

INDEX_TABLES = ("lookup_terms", "lookup_recent", "lookup_sealed")
DDL = (
    "CREATE TABLE IF NOT EXISTS lookup_terms (h UBIGINT NOT NULL, t UTINYINT NOT NULL, seq BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS lookup_recent (h UBIGINT NOT NULL, t UTINYINT NOT NULL, seq BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS lookup_sealed (h UBIGINT NOT NULL, t UTINYINT NOT NULL, seq BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS lookup_state (key VARCHAR PRIMARY KEY, value UBIGINT NOT NULL)",
)


_TEXT_COLUMNS = {name: tuple(c.name for c in t.columns if c.kql_type in ("string", "dynamic"))
                 for name, t in TABLES.items()}
_DYNAMIC = {name: {c.name for c in t.columns if c.kql_type == "dynamic"} for name, t in TABLES.items()}
"""Per table: a name can be dynamic in one table and a string in another (`data`, `details`)."""


def _text_sql(table: str, columns: tuple[str, ...]) -> str:
    """One lowercased text of the string and dynamic columns (as `has` reads them) of a row,
    columns apart by a space so that no term spans two of them."""
    parts = [f"(\"{name}\" ->> '$')" if name in _DYNAMIC[table] else f'"{name}"' for name in columns]
    return f"replace(lower(concat_ws(' ', {', '.join(parts)})), 'ſ', 's')" if parts else "''"


@lru_cache(maxsize=256)
def terms_sql(table: str, source: str, columns: tuple[str, ...] | None = None) -> str:
    """SELECT (h, t, seq) of every id-like term of the rows of `source` (a relation with `table`'s
    columns and `_seq`), from `columns` only when given (the writer leaves out those its batch
    has no value in: a statement over 35 columns cost ~8 ms to run whatever its rows). A term
    twice in a row gives one entry, as in the C pass: a row's ids repeat (the operation id in
    `operation_ParentId`, a request id in a dimension), and every entry costs its insert and its
    move into a run (1 in 5 of the ingest bench's entries were such repeats)."""
    text = _text_sql(table, _TEXT_COLUMNS[table] if columns is None else columns)
    extracted = f"list_distinct(regexp_extract_all({text}, '[0-9a-z]{{{MIN_TERM},}}'))"
    return (f'SELECT hash(term) AS h, {_NUMBER[table]}::UTINYINT AS t, seq FROM (SELECT "{SEQ_COLUMN}" AS seq, '
            f"unnest({extracted}) AS term FROM {source}) WHERE regexp_matches(term, '[0-9]') "
            f"AND NOT starts_with(term, '{'0' * STOP_ZEROS}')")


def probe_sql(tables: list[str], terms: list[str]) -> str:
    """(table, its `_seq`s) of the rows of `tables` that hold one of `terms` (as the index spells
    them: see collector/kql/lookup.py); one row (NULL, NULL) when the index is there but lists
    none, no row when the store keeps no index (`lookup_state` is empty)."""
    hashes = ", ".join("hash(" + _literal(term) + ")" for term in terms)
    numbers = ", ".join(str(_NUMBER[t]) for t in tables if t in _NUMBER) or "NULL"
    where = f"WHERE h IN ({hashes}) AND t IN ({numbers})"
    names = "[" + ", ".join(_literal(name) for name in INDEXED) + "]"
    return (f"SELECT {names}[t + 1], list(seq) FROM (SELECT t, seq FROM lookup_terms {where} "
            f"UNION ALL SELECT t, seq FROM lookup_sealed {where} "
            f"UNION ALL SELECT t, seq FROM lookup_recent {where}) RIGHT JOIN (SELECT 1 FROM lookup_state "
            "WHERE key = 'hash_probe') ON TRUE GROUP BY t")


class LookupIndex:
    """Keeps the index; the writer calls `record` with every table it inserts and `flush` after
    them, in its transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection, keep: bool = True):
        self._recent_rows = 0
        self._pending: list[tuple[str, tuple[str, ...], pa.Table]] = []
        self._entries: list[tuple[int, bytes, bytes]] = []
        self._moving: RunMove | None = None
        """The run being copied out of `lookup_sealed`, a hash range per group (see `RunMove`)."""
        self.compiled = keep and compiled_matches()
        """Whether `record` makes the entries in C (_lookup_terms.c) rather than in the SQL statement."""
        if keep:
            self._ensure_built(con)
        else:  # dropped whole: queries then scan, and keeping it again rebuilds it at open
            with transaction(con):
                for table in ("lookup_state", *INDEX_TABLES):
                    con.execute(f"DELETE FROM {table}")

    def _ensure_built(self, con: duckdb.DuckDBPyConnection) -> None:
        """Index the whole store unless it was indexed, by this DuckDB's hash, already."""
        probe = con.execute("SELECT hash(?)", [HASH_PROBE]).fetchall()[0][0]
        stored = con.execute("SELECT value FROM lookup_state WHERE key = 'hash_probe'").fetchall()
        if stored and stored[0][0] == probe:
            self._recent_rows = con.execute("SELECT count(*) FROM lookup_recent").fetchall()[0][0]
            self._moving = RunMove.resumed(con)
            return
        started = time.perf_counter()
        with transaction(con):
            rebuild(con)
            con.execute("INSERT OR REPLACE INTO lookup_state VALUES ('hash_probe', ?)", [probe])
        log.info("indexed the store's terms for lookups in %.1f s", time.perf_counter() - started)

    def record(self, con: duckdb.DuckDBPyConnection, table: str, incoming: pa.Table) -> None:
        """Note the rows just inserted into `table` (the Arrow table `incoming`, with `_seq`);
        `flush` indexes the group's rows of every table in one statement, in the same transaction
        (one statement per table cost ~1.3 ms each whatever its rows)."""
        if table in UNINDEXED:
            return
        columns = _columns(incoming)
        if self.compiled:
            left = self._record_compiled(table, incoming, columns)
            if left is None:
                return
            incoming, columns = left
        present = tuple(name for name in _TEXT_COLUMNS[table]
                        if name in columns and _may_hold_terms(columns[name], name in _DYNAMIC[table]))
        if present:
            self._pending.append((table, present, incoming))

    def _record_compiled(self, table: str, incoming: pa.Table, columns: dict[str, pa.ChunkedArray],
                         ) -> tuple[pa.Table, dict[str, pa.ChunkedArray]] | None:
        """Make in C the entries of the rows it can read; the rows left to the SQL statement (all
        of them when C cannot read the batch, those it refused otherwise) with their columns, or
        None when none is left."""
        made = compiled_entries(table, columns, incoming.num_rows)
        if made is None:
            return incoming, columns
        hashes, seqs, refused = made
        if hashes:
            self._entries.append((_NUMBER[table], hashes, seqs))
        if not refused:
            return None
        left = incoming.take(pa.array(np.frombuffer(refused, dtype=np.int64)))
        return left, _columns(left)

    def flush(self, con: duckdb.DuckDBPyConnection) -> None:
        """Index what `record` noted (the writer calls it once its group's rows are inserted). A
        group that failed after `record` leaves entries for rows that are not there: harmless, and
        its retry records its rows again."""
        pending, self._pending = self._pending, []
        entries, self._entries = self._entries, []
        if self._moving is not None:
            # From the stored progress, not memory's: a group that failed after its step rolled it back.
            move = RunMove.resumed(con)
            self._moving = move.step(con) if move is not None else None
        elif self._recent_rows >= RUN_ROWS:  # before this group's entries: DuckDB renames no table it changed
            self._moving = seal(con, self._recent_rows)
            self._recent_rows = 0
        if not pending and not entries:
            return
        names = [f"lookup_incoming_{i}" for i in range(len(pending))]
        selects = []
        for name, (table, present, incoming) in zip(names, pending, strict=True):
            con.register(name, incoming)
            selects.append(terms_sql(table, name, present))
        if entries:
            names.append("lookup_entries")
            con.register("lookup_entries", _entries_table(entries))
            selects.append("SELECT h, t, seq FROM lookup_entries")
        try:
            (added,) = con.execute("INSERT INTO lookup_recent " + " UNION ALL ".join(selects)).fetchall()[0]
        finally:
            for name in names:
                try:
                    con.unregister(name)
                except duckdb.Error:  # an aborted transaction refuses it; the next register replaces it
                    pass
        self._recent_rows += added


@lru_cache(maxsize=1)
def compiled_matches() -> bool:
    """Whether the compiled terms are built and hash as this DuckDB does (a DuckDB whose `hash`
    differs would make their entries unfindable: the SQL statement then makes them). Asked of a
    connection of its own: the store's is the writer thread's by now. A module built from an older
    source (another FORM: other arguments, entries not distinct per row) is not used either."""
    if _lookup_terms is None or getattr(_lookup_terms, "FORM", 1) != COMPILED_FORM:
        return False
    samples = [HASH_PROBE, "", "a", "0123456", "01234567", "abcdefgh12345678z", "x" * 41]
    with duckdb.connect() as con:
        wanted = con.execute("SELECT list(hash(s) ORDER BY i) FROM (SELECT unnest(?) AS s, "
                             "generate_subscripts(?, 1) AS i)", [samples, samples]).fetchall()[0][0]
    return wanted == [_lookup_terms.hash(s.encode()) for s in samples]


def compiled_entries(table: str, columns: dict[str, pa.ChunkedArray], rows: int) -> tuple[bytes, bytes, bytes] | None:
    """The entries of a batch's rows as the C extension makes them (the hashes and `_seq`s, as
    uint64 and int64 bytes), and the rows whose dynamic text it cannot read as `->> '$'` does
    (int64 row indexes, for the SQL statement); None where it cannot read the batch's columns."""
    seq = _one_chunk(columns.get(SEQ_COLUMN))
    if seq is None or seq.type != pa.int64() or seq.null_count:
        return None
    given = []
    for name in _TEXT_COLUMNS[table]:
        column = columns.get(name)
        if column is None or column.null_count == len(column):
            continue
        chunk = _one_chunk(column)
        if chunk is None or chunk.type != pa.string():
            return None
        validity, offsets, data = chunk.buffers()
        given.append((validity, offsets, data if data is not None else b"", chunk.offset, name in _DYNAMIC[table]))
    return _lookup_terms.terms(given, rows, seq.buffers()[1], seq.offset, MIN_TERM, STOP_ZEROS)


def _columns(table: pa.Table) -> dict[str, pa.ChunkedArray]:
    return dict(zip(table.column_names, table.columns, strict=True))  # `table[name]` costs ~10 µs


def _one_chunk(column: pa.ChunkedArray | None) -> pa.Array | None:
    if column is None:
        return None
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _entries_table(entries: list[tuple[int, bytes, bytes]]) -> pa.Table:
    hashes = b"".join(h for _, h, _ in entries)
    seqs = b"".join(s for _, _, s in entries)
    counts = [len(h) // 8 for _, h, _ in entries]
    numbers = np.repeat(np.array([t for t, _, _ in entries], dtype=np.uint8), counts)
    count = len(hashes) // 8
    return pa.table({
        "h": pa.Array.from_buffers(pa.uint64(), count, [None, pa.py_buffer(hashes)]),
        "t": pa.array(numbers, pa.uint8()),
        "seq": pa.Array.from_buffers(pa.int64(), count, [None, pa.py_buffer(seqs)]),
    })


def _may_hold_terms(column: pa.ChunkedArray, dynamic: bool) -> bool:
    r"""Whether any value of a batch's column can hold a term; a column that cannot is left out
    of the indexing statement (the text's concatenation, lowercasing and regex cost per row).
    Exact: a term holds an ASCII digit, and neither `lower` nor JSON's `->> '$'` makes one out
    of other bytes (a digit escape, `\u0031`, holds digits itself); and a string column's term
    is a run of MIN_TERM characters of one value that are ASCII letters or digits or non-ASCII
    (`lower` maps a character to one, and only letters to ASCII letters), which _LONG_RUN finds.
    A dynamic column's text is not its raw JSON (`\u0041` reads `A`, `1e7` reads `10000000.0`),
    so only the digit test applies to it."""
    if column.null_count == len(column):
        return False
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        return True
    buffers = [chunk.buffers()[2] for chunk in column.chunks]
    if not any(_has_digit(data) for data in buffers if data is not None):
        return False
    return dynamic or _matches(column.slice(0, 64)) or _matches(column)  # an id column's first rows say yes


def _matches(column: pa.ChunkedArray) -> bool:
    return pc.any(pc.match_substring_regex(column, _LONG_RUN)).as_py() is True


_LONG_RUN = f"[0-9A-Za-z\\x{{80}}-\\x{{10FFFF}}]{{{MIN_TERM}}}"
"""A run of characters that may be a term's once lowercased (every non-ASCII one counts, which
can only keep a column in)."""


def _has_digit(data: pa.Buffer) -> bool:
    """Whether a chunk's data buffer holds an ASCII digit (the whole buffer is read: bytes outside
    the values can only make it say yes, which costs a statement column)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    return bool(np.any((raw >= 0x30) & (raw <= 0x39)))


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Index every row of the indexed tables anew, as one sorted run (inside the caller's
    transaction). Also what a tool that wrote rows past the writer must call."""
    for table in INDEX_TABLES:
        con.execute(f"DELETE FROM {table}")
    con.execute("DELETE FROM lookup_state WHERE key LIKE 'run_%'")
    every = " UNION ALL ".join(terms_sql(name, f'"{name}"') for name in INDEXED)
    con.execute(f"INSERT INTO lookup_terms SELECT h, t, seq FROM ({every}) ORDER BY h")


@dataclass(frozen=True)
class RunMove:
    """Copying `lookup_sealed` into a sorted run of `lookup_terms`, one slice of the hash space per
    group commit: the move of a million entries in one commit (sort, insert, delete) stalled it for
    ~0.5 s, doubling the p99 of a batch's latency (bench/README.md). The slices go in ascending
    order, so the run is sorted by hash as a whole (its row groups cover narrow hash ranges). The
    sealed entries stay where they are until the last slice is in, and the next group drops the
    table rather than deleting from it (~10 ms rather than ~0.3 s): meanwhile a probe finds the copied ones twice,
    which costs nothing (its `_seq`s are a set), and no entry is ever missing from what a reader
    sees. The progress is kept in `lookup_state`, in each slice's transaction, so a restart
    resumes the move rather than copying a slice twice."""

    steps: int
    done: int = 0

    @staticmethod
    def resumed(con: duckdb.DuckDBPyConnection) -> RunMove | None:
        """The move a previous run of the store left unfinished, if any."""
        state = dict(con.execute("SELECT key, value FROM lookup_state WHERE key LIKE 'run_%'").fetchall())
        return RunMove(state["run_steps"], state.get("run_done", 0)) if "run_steps" in state else None

    def step(self, con: duckdb.DuckDBPyConnection) -> RunMove | None:
        """Copy the next slice, or once all are copied drop the sealed table (in a group of its
        own, not the last slice's); in the caller's transaction. The move left, None once done."""
        if self.done == self.steps:
            con.execute("DROP TABLE lookup_sealed")
            con.execute(DDL[2])
            con.execute("DELETE FROM lookup_state WHERE key LIKE 'run_%'")
            return None
        where = f"h >= {(self.done << 64) // self.steps}::UBIGINT"
        if self.done + 1 < self.steps:
            where += f" AND h < {((self.done + 1) << 64) // self.steps}::UBIGINT"
        con.execute(f"INSERT INTO lookup_terms SELECT h, t, seq FROM lookup_sealed WHERE {where} ORDER BY h")
        con.execute("INSERT OR REPLACE INTO lookup_state VALUES ('run_done', ?)", [self.done + 1])
        return RunMove(self.steps, self.done + 1)


def seal(con: duckdb.DuckDBPyConnection, entries: int) -> RunMove:
    """Start moving `lookup_recent` (about `entries` long) into a sorted run: it becomes the sealed
    table (a rename, whatever its size), and the writer's entries go to a new one."""
    con.execute("DROP TABLE lookup_sealed")  # empty: the previous move is done
    con.execute("ALTER TABLE lookup_recent RENAME TO lookup_sealed")
    con.execute(DDL[1])
    move = RunMove(max(1, -(-entries // MOVE_ROWS)))
    con.execute("INSERT OR REPLACE INTO lookup_state VALUES ('run_steps', ?)", [move.steps])
    return move


def forget(con: duckdb.DuckDBPyConnection, table: str, deleted: np.ndarray) -> None:
    """Drop the entries of the rows of `table` whose `_seq`s are `deleted` (a numpy array), in the
    transaction that deleted them (retention)."""
    if table not in _NUMBER or not len(deleted):
        return
    gone = pa.table({"seq": pa.array(deleted, pa.int64())})  # noqa: F841 (DuckDB scans it by name)
    for index in INDEX_TABLES:
        con.execute(f"DELETE FROM {index} WHERE t = {_NUMBER[table]} AND seq IN (SELECT seq FROM gone)")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"

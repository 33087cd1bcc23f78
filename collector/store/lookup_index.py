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
- Stored as (64-bit hash of the term, table, `_seq`) in `lookup_terms`, as sorted runs (a run's row
  groups cover narrow hash ranges, so DuckDB's zone maps skip all but one per run: a probe reads
  a row group per run, ~1 ms at 33M entries, and the query joins the few `_seq`s back, zone maps
  again), and, for the rows since the last run, in memory (`Recent`, lookup_memory.py). The writer adds a group's
  entries to memory before its commit, and once they reach RUN_ROWS writes them as one run, with
  `indexed_through` in `lookup_state` (every row whose `_seq` is at most it has its entries in
  the runs) in the same transaction, and lets memory go once that commit is done. Why memory:
  inserting every group's entries into a table, then copying them sorted into a run, cost the
  entries' insert, WAL, checkpoint, sort and copy (~4.5 µs of the collector's CPU per ingested
  item, a fifth of it: bench/README.md part 22q); a run of a million entries written in one
  insert goes to disk as compressed row groups directly (DuckDB's optimistic write: no WAL, no
  checkpoint). A reader sees runs and `indexed_through` in its snapshot and memory as it is
  (`candidates`): memory holds every entry of the rows after its own `through`; where the two
  leave a gap (a run committed after the reader's snapshot, whose entries memory let go), or
  where this process holds no memory of the store (another process reads the file), the rows
  after the reader's `indexed_through` are read by their `_seq` range instead, which narrows
  exactly too. What memory holds when the process ends without closing the store is made again
  from those rows at the next open (`_index_tail`).
- Who makes the entries: the C extension `_lookup_terms` (built with the ingestion one by
  `pip install -e .`), in one pass over the Arrow buffers of the batch the writer inserts, with
  DuckDB's own string hash reproduced (checked against DuckDB's at open: `compiled_matches`),
  so that probes keep hashing in SQL. The SQL statement `terms_sql` is the reference, and makes
  the entries where the extension is not built or hashes otherwise, and for the rows whose
  dynamic text DuckDB's `->> '$'` renders with other terms than the stored text has (a `\\u`
  escape, an exponent, a fraction not in its shortest form: `dynamic_safe` in the C file);
  tests/kql/test_lookup_terms_compiled.py holds the two to the same entries. In the writer
  alone the statement cost ~9 µs of CPU per row (regex over the lowercased texts, unnest,
  hash), the C pass ~0.5; the rest of what the index costs is writing its runs (bench/README.md).
- What keeps answers exact: the index is only ever used to *narrow* the rows a predicate is then
  evaluated on, unchanged (collector/kql/lookup.py), so an entry too many (a hash collision, a
  row deleted by retention, a term of another column, an entry of a group that failed) costs
  nothing but a row read; the one thing that matters is that no row's term is missing, which
  holds because every insert goes through the writer's transaction (imports included), a store
  opened without the index (an earlier version's, or another DuckDB build whose `hash` differs:
  HASH_PROBE) is indexed whole before the collector serves, and retention forgets the entries
  of the rows it deleted from the runs in the same commit (`forget`; memory keeps them: a
  deleted row's `_seq` is never given again, so they point at nothing). tests/kql/test_request_lookup.py and
  tests/kql/test_lookup_recent.py compare indexed and full-scan answers.
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

from collector.store import lookup_memory
from collector.store.lookup_memory import EMPTY, Chunk, Recent, compiled_chunk
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
"""Entries in memory past which they are written as a run of `lookup_terms` (one insert of more
than DuckDB's row group, 122,880 rows, is written to disk directly: bench/README.md part 22q)."""
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

INDEX_TABLES = ("lookup_terms",)
EARLIER_TABLES = ("lookup_recent", "lookup_sealed")
"""Where earlier versions kept the entries not yet in a run: moved into one at open (`_migrate`)."""
DDL = (
    "CREATE TABLE IF NOT EXISTS lookup_terms (h UBIGINT NOT NULL, t UTINYINT NOT NULL, seq BIGINT NOT NULL)",
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


def probe_sql(hashes: list[int], numbers: list[int]) -> str:
    """(t, its `_seq`s) of the runs' entries of these term hashes in the tables numbered so."""
    return (f"SELECT t, list(seq) FROM lookup_terms WHERE h IN ({', '.join(map(str, hashes))}) "
            f"AND t IN ({', '.join(map(str, numbers)) or 'NULL'}) GROUP BY t")


@dataclass(frozen=True)
class Candidates:
    """Which rows of each table may hold one of a lookup's terms: those whose `_seq` is listed,
    and those after `unindexed_after` (up to `unindexed_through`, without end when None), if it
    is not None: rows whose entries the reader could not see (see the module's docstring)."""

    seqs: dict[str, list[int]]
    unindexed_after: int | None = None
    unindexed_through: int | None = None


def candidates(con: duckdb.DuckDBPyConnection, tables: list[str], terms: list[str]) -> Candidates | None:
    """The rows of `tables` that may hold one of `terms` (as the index spells them: see
    collector/kql/lookup.py), as the reader's transaction sees the store; None when the store
    keeps no index (`lookup_state` is empty). Call it inside the transaction of the query it
    narrows."""
    state = dict(con.execute("SELECT key, value FROM lookup_state").fetchall())
    if "hash_probe" not in state:
        return None
    numbers = [_NUMBER[table] for table in tables if table in _NUMBER]
    hashes = con.execute(f"SELECT [{', '.join('hash(?)' for _ in terms)}]", terms).fetchall()[0][0]
    found: dict[int, list[int]] = dict(con.execute(probe_sql(hashes, numbers)).fetchall())
    through = state.get("indexed_through", 0)
    recent = lookup_memory.recent_of(state.get("recent_token", -1))
    if recent is not None:
        for number, more in recent.find(hashes, numbers).items():
            found.setdefault(number, []).extend(more)
    seqs = {INDEXED[number]: listed for number, listed in found.items()}
    if recent is None:
        return Candidates(seqs, through)
    if recent.through > through:  # a run committed after this snapshot, and memory let it go
        return Candidates(seqs, through, recent.through)
    return Candidates(seqs)


class LookupIndex:
    """Keeps the index; the writer calls `record` with every table it inserts, `flush` after
    them (in its transaction) and `settle` once the transaction is over."""

    def __init__(self, con: duckdb.DuckDBPyConnection, keep: bool = True):
        self._pending: list[tuple[str, tuple[str, ...], pa.Table]] = []
        self._entries: list[tuple[int, bytes, bytes]] = []
        self._high = 0
        """The highest `_seq` recorded (or indexed at open): every row up to it has its entries in
        memory or a run."""
        self._written_through: int | None = None
        """What the group being committed wrote a run through (memory lets it go once committed)."""
        self._token: int | None = None
        self.recent = Recent(0)
        self.compiled = keep and compiled_matches()
        """Whether `record` makes the entries in C (_lookup_terms.c) rather than in the SQL statement."""
        if keep:
            self._open(con)
        else:  # dropped whole: queries then scan, and keeping it again rebuilds it at open
            with transaction(con):
                for table in ("lookup_state", *INDEX_TABLES):
                    con.execute(f"DELETE FROM {table}")
                _drop_earlier_tables(con)

    def _open(self, con: duckdb.DuckDBPyConnection) -> None:
        """Index the whole store unless it was indexed, by this DuckDB's hash, already; index the
        rows a process that ended without closing the store left in memory only; and note this
        store's memory where readers find it."""
        probe = con.execute("SELECT hash(?)", [HASH_PROBE]).fetchall()[0][0]
        stored = con.execute("SELECT value FROM lookup_state WHERE key = 'hash_probe'").fetchall()
        with transaction(con):
            if stored and stored[0][0] == probe:
                _migrate(con)
                self._index_tail(con)
            else:
                started = time.perf_counter()
                rebuild(con)
                con.execute("INSERT OR REPLACE INTO lookup_state VALUES ('hash_probe', ?)", [probe])
                log.info("indexed the store's terms for lookups in %.1f s", time.perf_counter() - started)
            self._token = int.from_bytes(np.random.bytes(7), "little")
            con.execute("INSERT OR REPLACE INTO lookup_state VALUES ('recent_token', ?)", [self._token])
        self._high = _indexed_through(con)
        self.recent = Recent(self._high)
        self._written_through = None
        lookup_memory.publish(self._token, self)

    def _index_tail(self, con: duckdb.DuckDBPyConnection) -> None:
        """Write as a run the entries of the rows after `indexed_through` (those of a process that
        ended without closing the store), made as the writer makes them."""
        through = _indexed_through(con)
        for name in INDEXED:
            self.record(con, name, con.sql(f'SELECT * FROM "{name}" WHERE "{SEQ_COLUMN}" > ?', params=[through]).to_arrow_table())
        self.recent = Recent(through).added(self._group_entries(con))
        self._write_run(con, max(self._high, _max_seq(con)))

    def record(self, con: duckdb.DuckDBPyConnection, table: str, incoming: pa.Table) -> None:
        """Note the rows just inserted into `table` (the Arrow table `incoming`, with `_seq`);
        `flush` adds their entries to memory, in the same transaction."""
        if table in UNINDEXED or not incoming.num_rows:
            return
        columns = _columns(incoming)
        self._high = max(self._high, pc.max(columns[SEQ_COLUMN]).as_py())
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
        """Add what `record` noted to memory (the writer calls it once its group's rows are
        inserted, before the commit: a reader that sees the rows finds their entries), and write
        memory as a run once it holds RUN_ROWS entries. A group that fails after this leaves
        entries of rows that are not there: harmless, and its retry records its rows again."""
        self.recent = self.recent.added(self._group_entries(con))
        if self.recent.count >= RUN_ROWS:
            self._write_run(con, self._high)

    def settle(self, committed: bool) -> None:
        """After the writer's transaction: once committed, memory lets go of the entries a run of
        it holds; rolled back, what it noted and wrote is forgotten (memory keeps its entries)."""
        if committed and self._written_through is not None:
            self.recent = Recent(self._written_through)
        self._written_through = None
        self._pending, self._entries = [], []

    def close(self, con: duckdb.DuckDBPyConnection) -> None:
        """Write memory as a run (the next open then has no rows to index again); once the writer
        is stopped."""
        if self._token is None:
            return
        lookup_memory.withdraw(self._token)
        if self.recent.count:
            with transaction(con):
                self._write_run(con, self._high)
            self.settle(committed=True)

    def _group_entries(self, con: duckdb.DuckDBPyConnection) -> Chunk:
        """The entries of what `record` noted since the last call: those made in C, and the SQL
        statement's (one statement for every table: one per table cost ~1.3 ms each whatever its
        rows)."""
        pending, self._pending = self._pending, []
        entries, self._entries = self._entries, []
        parts = [compiled_chunk(entries)] if entries else []
        if pending:
            parts.append(_statement_chunk(con, pending))
        if not parts:
            return EMPTY
        return tuple(np.concatenate(arrays) for arrays in zip(*parts, strict=True))  # type: ignore[return-value]

    def _write_run(self, con: duckdb.DuckDBPyConnection, through: int) -> None:
        """Insert memory's entries as a run, with `indexed_through`, in the caller's transaction."""
        if self.recent.count:
            run = self.recent.run()  # noqa: F841 (DuckDB scans it by name)
            con.execute("INSERT INTO lookup_terms SELECT h, t, seq FROM run")
        con.execute("INSERT OR REPLACE INTO lookup_state VALUES ('indexed_through', ?)", [through])
        self._written_through = through


def _statement_chunk(con: duckdb.DuckDBPyConnection, pending: list[tuple[str, tuple[str, ...], pa.Table]],
                     ) -> Chunk:
    names = [f"lookup_incoming_{i}" for i in range(len(pending))]
    selects = []
    for name, (table, present, incoming) in zip(names, pending, strict=True):
        con.register(name, incoming)
        selects.append(terms_sql(table, name, present))
    try:
        made = con.execute(" UNION ALL ".join(selects)).fetchnumpy()
    finally:
        for name in names:
            try:
                con.unregister(name)
            except duckdb.Error:  # an aborted transaction refuses it; the next register replaces it
                pass
    return (np.asarray(made["h"], dtype=np.uint64), np.asarray(made["t"], dtype=np.uint8),
            np.asarray(made["seq"], dtype=np.int64))


def _indexed_through(con: duckdb.DuckDBPyConnection) -> int:
    found = con.execute("SELECT value FROM lookup_state WHERE key = 'indexed_through'").fetchall()
    return found[0][0] if found else 0


def _max_seq(con: duckdb.DuckDBPyConnection) -> int:
    every = " UNION ALL ".join(f'SELECT max("{SEQ_COLUMN}") AS seq FROM "{name}"' for name in INDEXED)
    return con.execute(f"SELECT coalesce(max(seq), 0) FROM ({every})").fetchall()[0][0]


def _earlier_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    names = con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                        "AND schema_name = 'main' AND table_name IN ?", [list(EARLIER_TABLES)]).fetchall()
    return [name for (name,) in names]


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Move the entries an earlier version kept outside its runs (every row then had its entries
    in one of three tables) into a run; in the caller's transaction."""
    earlier = _earlier_tables(con)
    if not earlier:
        return
    every = " UNION ALL ".join(f"SELECT h, t, seq FROM {name}" for name in earlier)
    con.execute(f"INSERT INTO lookup_terms SELECT h, t, seq FROM ({every}) ORDER BY h")
    con.execute("DELETE FROM lookup_state WHERE key LIKE 'run_%'")
    con.execute("INSERT OR REPLACE INTO lookup_state VALUES ('indexed_through', ?)", [_max_seq(con)])
    _drop_earlier_tables(con)


def _drop_earlier_tables(con: duckdb.DuckDBPyConnection) -> None:
    for name in _earlier_tables(con):
        con.execute(f"DROP TABLE {name}")


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
    _drop_earlier_tables(con)
    con.execute("DELETE FROM lookup_state WHERE key LIKE 'run_%'")
    every = " UNION ALL ".join(terms_sql(name, f'"{name}"') for name in INDEXED)
    con.execute(f"INSERT INTO lookup_terms SELECT h, t, seq FROM ({every}) ORDER BY h")
    con.execute("INSERT OR REPLACE INTO lookup_state VALUES ('indexed_through', ?)", [_max_seq(con)])


def forget(con: duckdb.DuckDBPyConnection, table: str, deleted: np.ndarray) -> None:
    """Drop the runs' entries of the rows of `table` whose `_seq`s are `deleted` (a numpy array),
    in the transaction that deleted them (retention)."""
    if table not in _NUMBER or not len(deleted):
        return
    gone = pa.table({"seq": pa.array(deleted, pa.int64())})  # noqa: F841 (DuckDB scans it by name)
    for index in INDEX_TABLES:
        con.execute(f"DELETE FROM {index} WHERE t = {_NUMBER[table]} AND seq IN (SELECT seq FROM gone)")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"

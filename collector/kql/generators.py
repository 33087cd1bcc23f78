"""What a query may generate out of nothing: `range` rows and built values, under the budget's caps.

The translator renders `range x from a to b step s` as `SELECT UNNEST(generate_series(a, b, s))`,
which builds the whole series as one list in memory before the first row leaves: memory DuckDB
does not count against its limit, in one call it never interrupts (2e8 rows took a collector to
14 GB and ran on for a minute past its deadline). Rendered here as the `generate_series` *table*
function instead, rows stream in chunks, under the memory limit and the interrupt. Its bounds are
evaluated once, when DuckDB binds the query, before any row exists; a series longer than
`MAX_RANGE_ROWS` (or with a zero step, which would never end) stops there with an error naming
the limit.

Values are the other thing a query can multiply: the strings and arrays that `strrep`, `strcat`
and their kin build live in memory DuckDB neither counts nor interrupts while a chunk of 2,048
rows is computed (`strcat(s, s)` extended twenty times doubles a value a million-fold). So each
builder checks, before it builds, that its result stays within `MAX_GENERATED_VALUE_BYTES`, the
size of the largest value ingestion stores whole; `strrep`'s multiplier is also capped at 1024, as
Kusto caps it. A chunk of built values then weighs what a chunk of stored ones can.

All are overrides of the translator's renderings, registered like functions.py's; a test pins
the hooks. The errors carry `LIMIT_MARKER`, which errors.from_duckdb turns into a LIMIT KqlError.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb_kql.translate as _translate
from duckdb_kql.errors import KqlUnsupportedError
from duckdb_kql.translate import functions as _registry

from .budget import MAX_GENERATED_VALUE_BYTES, MAX_RANGE_ROWS, STRREP_MAX_MULTIPLIER
from .errors import LIMIT_MARKER
from .functions import _args, _fresh


def _fail(message: str) -> str:
    return "error('" + (LIMIT_MARKER + message).replace("'", "''") + "')"


def render_range(source) -> str:
    """`range name from start to stop step step` as a streaming, bounded series (see module doc).

    Bounds are rendered exactly as the translator renders them: BIGINT for a numeric range, as
    written when any bound is a datetime or timespan. The stop bound carries the checks.
    """
    bounds = [source.start, source.stop, source.step]
    temporal = any(_translate._is_datetime_expr(e) or _translate._is_timespan_expr(e) for e in bounds)
    start, stop, step = (_translate.render_expr(e) if temporal
                         else f"CAST({_translate.render_expr(e)} AS BIGINT)" for e in bounds)
    if temporal:
        zero, count = f"epoch({step}) = 0", f"(epoch({stop}) - epoch({start})) / epoch({step})"
    else:
        zero = f"({step}) = 0"
        count = f"(CAST({stop} AS DOUBLE) - CAST({start} AS DOUBLE)) / CAST({step} AS DOUBLE)"
    checked = (f"CASE WHEN {zero} THEN {_fail('range: the step is 0, so the series would never end')} "
               f"WHEN {count} >= {MAX_RANGE_ROWS} THEN "
               f"{_fail(f'range would generate more than {MAX_RANGE_ROWS:,} rows, the most a query may generate')} "
               f"ELSE {stop} END")
    name = _translate.quote_ident(source.name)
    return f"SELECT {name} FROM generate_series({start}, {checked}, {step}) AS _range({name})"


def _render_strrep(node) -> str | None:
    """`strrep(s, n)`: `repeat` with n capped at 1024, refused past the value size (module doc)."""
    if len(node.args) != 2:
        return None
    rendered = _args(node)
    text, times = rendered
    value = _fresh("__kql_v", rendered)
    capped = f"least(CAST({times} AS BIGINT), {STRREP_MAX_MULTIPLIER})"
    return (f"list_transform([{text}], lambda {value}: CASE "
            f"WHEN strlen(CAST({value} AS VARCHAR)) * {capped} > {MAX_GENERATED_VALUE_BYTES} "
            f"THEN {_fail(_too_long('strrep'))} ELSE repeat({value}, {capped}) END)[1]")


def _too_long(name: str) -> str:
    return (f"{name} would build a value longer than {MAX_GENERATED_VALUE_BYTES:,} bytes, "
            "the most a query may build in one value")


def _length(sql: str) -> str:
    return f"coalesce(strlen(CAST({sql} AS VARCHAR)), 0)"


def _joined_size(args: list[str]) -> str:
    """What concatenating the arguments' text weighs (their JSON text, for arrays and bags)."""
    return "(" + " + ".join(_length(a) for a in args) + ")" if args else "0"


def _replaced_size(args: list[str]) -> str | None:
    """`replace_string(s, lookup, rewrite)`: s, plus each occurrence's growth."""
    if len(args) != 3:
        return None
    text, lookup, rewrite = (_length(a) for a in args)
    removed = _length(f"replace(CAST({args[0]} AS VARCHAR), CAST({args[1]} AS VARCHAR), '')")
    occurrences = f"(({text} - {removed}) // greatest({lookup}, 1))"
    return f"({text} + {occurrences} * greatest({rewrite} - {lookup}, 0))"


def _regex_replaced_size(args: list[str]) -> str | None:
    """`replace_regex(s, re, rewrite)`: s, plus per match the rewrite, whose group references
    (a backslash each) may each repeat up to all of s."""
    if len(args) != 3:
        return None
    text, rewrite = _length(args[0]), _length(args[2])
    matches = f"coalesce(len(regexp_extract_all(CAST({args[0]} AS VARCHAR), CAST({args[1]} AS VARCHAR))), 0)"
    backslashes = f"({rewrite} - {_length(f'replace(CAST({args[2]} AS VARCHAR), chr(92), {_EMPTY})')})"
    return f"({text} + {matches} * ({rewrite} + {backslashes} * {text}))"


_EMPTY = "''"


_BUILDERS: dict[str, Callable[[list[str]], str | None]] = {
    "strcat": _joined_size, "strcat_delim": lambda args: _joined_size(args + args[:1] * max(len(args) - 2, 0)),
    "array_concat": _joined_size, "pack_array": _joined_size, "bag_pack": _joined_size, "pack": _joined_size,
    "zip": _joined_size, "replace_string": _replaced_size, "replace": _replaced_size,
    "replace_regex": _regex_replaced_size,
}
_ORIGINAL_FORMS = {name: _translate._SPECIAL_FORMS.get(name) for name in _BUILDERS}


def _bounded(name: str) -> Callable:
    """The translator's rendering of builder *name*, behind a check of the size it would build."""
    original, estimate = _ORIGINAL_FORMS[name], _BUILDERS[name]

    def render(node) -> str | None:
        built = original(node) if original is not None else None
        if built is None:
            spec = _registry.lookup(node.name)
            if spec is None:
                return None
            try:
                built = spec.render([_translate._render_arg(node.name, i, a) for i, a in enumerate(node.args)])
            except ValueError as exc:  # as the translator reports a wrong argument count
                raise KqlUnsupportedError(f"function:{node.name}", hint=str(exc)) from None
        size = estimate([_translate.render_expr(a) for a in node.args])
        if size is None:
            return built
        return (f"(CASE WHEN {size} > {MAX_GENERATED_VALUE_BYTES} THEN {_fail(_too_long(name))} "
                f"ELSE {built} END)")

    return render


def register() -> None:
    """Install the renderings above in the translator; idempotent."""
    _translate.render_range = render_range
    _translate._SPECIAL_FORMS["strrep"] = _render_strrep
    for name in _BUILDERS:
        _translate._SPECIAL_FORMS[name] = _bounded(name)


register()

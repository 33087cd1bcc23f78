"""The translator's Python UDFs lowered to ClickHouse expressions with the same answers.

On DuckDB, `hash()` is the `kql_xxhash64` UDF and the series functions are one UDF,
`kql_compute(name, series JSON text, options JSON text)` (series_functions.py, with the arithmetic
of series_math.py). ClickHouse runs no Python, so each is rewritten here into ClickHouse's own
functions over the same JSON text, reproducing the UDF's arithmetic operation for operation:

- `hash(s[, m])`: ClickHouse's `xxHash64` is the same xxHash64 (seed 0, the UTF-8 bytes); signed
  as a long, or `% m` on the unsigned value.
- `series_fill_forward/backward/const`: the items are taken as the JSON text's own tokens (so `1.0`
  stays a real and `"a"` a string, as the UDF keeps them) and filled with `arrayFill` /
  `arrayReverseFill` / a constant.
- `series_fill_linear`: numpy's `interp` formula, `slope * (i - p) + x[p]` between the known
  neighbours p and q, edges and constants as series_math.fill_linear.
- `series_outliers`: numpy's linear percentiles (index `(n - 1) * q`, its two-sided lerp), then
  the Tukey score.
- `series_fir`: the convolution written out tap by tap. numpy sums through BLAS in an order of its
  own, so the answers are only certain to be the same when every product and sum is an exact
  integer: the taps must be integers (or the query is refused), and a series holding a fraction,
  or big enough to round, is refused when the query runs.

Anything else (another function, options that are not constants, a series holding arrays or bags)
is refused, at lowering or, where it depends on the rows, at run time with the message
`kql-unsupported: ...` that execute.py turns into the same 400.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from sqlglot import exp, parse_one

from ..columns import _empty_store
from .refusals import refuse

UNSUPPORTED_MARK = "kql-unsupported: "
_SERIES = "__kql_series"
_MAX_TAPS = 64
_EXACT = 2 ** 53
MAX_WORK = 200_000_000  # series_math.MAX_WORK: the same limit, the same message

# The JSON text's tokens, for an array of scalars: strings (escapes kept), numbers, true/false/null.
_TOKENS = f"""extractAll({_SERIES}, '"(?:[^"\\\\\\\\]|\\\\\\\\.)*"|[-0-9.eE+]+|true|false|null')"""
_IS_ARRAY = f"(isValidJSON({_SERIES}) AND JSONType({_SERIES}) = 'Array')"
_FLAT = f"NOT arrayExists(e -> JSONType(e) IN ('Array', 'Object'), JSONExtractArrayRaw({_SERIES}))"
_NUMBERS = f"arrayMap(t -> if(match(t, '^-?[0-9]'), toFloat64OrNull(t), NULL), {_TOKENS})"


def float_json(value: str) -> str:
    """A Float64 as the UDF's `json.dumps` reads back: `null` for NaN, infinities and NULL, and a
    whole number with its `.0` (ClickHouse writes `1`), so the JSON value stays a real."""
    text = f"toString(assumeNotNull({value}))"
    return (f"if(isNull({value}) OR NOT isFinite(assumeNotNull({value})), 'null', "
            f"if(match({text}, '[.e]'), {text}, concat({text}, '.0')))")


def _json_array(elements: str) -> str:
    return f"concat('[', arrayStringConcat({elements}, ','), ']')"


def _floats_json(values: str) -> str:
    return _json_array(f"arrayMap(__kql_f -> {float_json('__kql_f')}, {values})")


def _refused_if(condition: str, what: str) -> str:
    """0, or (where *condition* holds for a row) a refusal of the query. A guard evaluated on every
    row rather than a branch: ClickHouse evaluates both sides of an `if` inside a lambda."""
    return f"throwIf({condition}, '{UNSUPPORTED_MARK}{what} is not supported on the clickhouse store')"


def _series_answer(body: str) -> str:
    """*body* over an array of scalars; NULL for anything that is not an array, as the UDF answers."""
    guard = _refused_if(f"{_IS_ARRAY} AND NOT {_FLAT}", "a series holding arrays or bags")
    return f"if({guard} = 0 AND {_IS_ARRAY}, {body}, NULL)"


def _fill(direction: str, options: list) -> str:
    _no_placeholder(options, 0)
    return _series_answer(_json_array(f"{direction}(t -> t != 'null', {_TOKENS})"))


def _fill_const(options: list) -> str:
    constant = options[0] if options else 0
    _no_placeholder(options, 1)
    text = json.dumps(constant, separators=(",", ":")).replace("\\", "\\\\").replace("'", "\\'")
    return _series_answer(_json_array(f"arrayMap(t -> if(t = 'null', '{text}', t), {_TOKENS})"))


def _fill_linear(options: list) -> str:
    _no_placeholder(options, 0)
    edges = bool(options[1]) if len(options) > 1 else True
    constant = options[2] if len(options) > 2 else None
    if constant is not None and not _number(constant):
        refuse("series_fill_linear with a constant that is not a number")
    fallback = "NULL" if constant is None else f"toFloat64({float(constant)!r})"
    known = f"arrayMap((v, i) -> if(isNull(v), 0, i), {_NUMBERS}, arrayEnumerate({_NUMBERS}))"
    interpolated = (
        f"arrayMap((v, i, p, q) -> multiIf(isNotNull(v), v, p > 0 AND q > 0, "
        f"((__kql_x[q] - __kql_x[p]) / toFloat64(q - p)) * toFloat64(i - p) + __kql_x[p], "
        f"p = 0 AND q = 0, {fallback}, {'__kql_x[if(p > 0, p, q)]' if edges else fallback}), "
        f"__kql_x, arrayEnumerate(__kql_x), arrayFill(k -> k > 0, __kql_k), arrayReverseFill(k -> k > 0, __kql_k))")
    return _series_answer(_floats_json(_let({"__kql_x": _NUMBERS, "__kql_k": known}, interpolated)))


def _let(bindings: dict[str, str], body: str) -> str:
    """*body* with each name bound to its value: a lambda applied to one-element arrays (ClickHouse
    has no LET; an array's element per name keeps each value computed once)."""
    names = list(bindings)
    arrays = ", ".join(f"[{bindings[n]}]" for n in names)
    return f"arrayMap(({', '.join(names)}) -> {body}, {arrays})[1]"


def _percentile(sorted_values: str, count: str, share: float) -> str:
    """numpy's linear percentile of *sorted_values* (1-based here) at *share* (0..1): index
    `(n - 1) * share`, then `a + (b - a) * t` below t = 0.5 and `b - (b - a) * (1 - t)` from it."""
    lerp = ("if(__kql_t >= 0.5, __kql_b - (__kql_b - __kql_a) * (1 - __kql_t), "
            "__kql_a + (__kql_b - __kql_a) * __kql_t)")
    neighbours = _let({"__kql_a": f"{sorted_values}[toUInt64(floor(__kql_i)) + 1]",
                       "__kql_b": f"{sorted_values}[toUInt64(floor(__kql_i)) + 2]",
                       "__kql_t": "__kql_i - floor(__kql_i)"}, lerp)
    body = f"if(__kql_i >= toFloat64({count} - 1), {sorted_values}[{count}], {neighbours})"
    return _let({"__kql_i": f"toFloat64({count} - 1) * {share!r}"}, body)


def _outliers(options: list) -> str:
    kind = options[0] if options else "ctukey"
    if len(options) > 1 and options[1] is not None:
        refuse("series_outliers with an ignore value")
    low = options[2] if len(options) > 2 else 10.0
    high = options[3] if len(options) > 3 else 90.0
    if kind == "tukey":
        low, high = 25.0, 75.0
    if not (_number(low) and _number(high) and 0 <= low <= 100 and 0 <= high <= 100):
        refuse("series_outliers with percentiles outside 0..100")
    return _series_answer(_floats_json(tukey_scores(_NUMBERS, low, high)))


def tukey_scores(series: str, low: float, high: float) -> str:
    """series_math.outliers over *series* (an array of Nullable Float64): Tukey's scores against
    the *low*-th and *high*-th linear percentiles of its non-null values; NULL stays NULL."""
    values = "arraySort(arrayFilter(v -> isNotNull(v), __kql_x))"
    score = ("arrayMap(v -> if(isNull(v), NULL, if(__kql_hi - __kql_lo = 0, 0., "
             "if(v > __kql_hi, (v - __kql_hi) / (__kql_hi - __kql_lo), "
             "if(v < __kql_lo, (v - __kql_lo) / (__kql_hi - __kql_lo), 0.)))), __kql_x)")
    inner = _let({"__kql_lo": _percentile("__kql_s", "length(__kql_s)", low / 100),
                  "__kql_hi": _percentile("__kql_s", "length(__kql_s)", high / 100)}, score)
    return _let({"__kql_x": series}, f"if(length({values}) = 0, arrayMap(v -> NULL, __kql_x), "
                                     f"{_let({'__kql_s': values}, inner)})")


def _fir(options: list) -> str:
    taps = options[0] if options else None
    if not (isinstance(taps, list) and 0 < len(taps) <= _MAX_TAPS and all(_integral(t) for t in taps)):
        refuse("series_fir with a filter that is not a constant list of at most 64 whole numbers")
    normalize = bool(options[1]) if len(options) > 1 else True
    center = bool(options[2]) if len(options) > 2 else False
    total = float(sum(taps)) if normalize and sum(taps) != 0 else 1.0
    shift = (len(taps) - 1) // 2 if center else 0
    terms = [f"{float(t)!r} * if(i + {shift - j} >= 1, __kql_x[i + {shift - j}], 0.)"
             for j, t in enumerate(taps) if t != 0] or ["0."]
    bound = _EXACT / max(sum(abs(t) for t in taps), 1)
    exact = f"arrayAll(v -> v = floor(v) AND abs(v) < {bound!r}, __kql_x)"
    limit = (f"throwIf(length(__kql_x) * {len(taps)} > {MAX_WORK}, 'kql-limit: series_fir: a series times "
             f"its filter is more than {MAX_WORK:,} steps')")
    convolved = f"arrayMap(i -> ({' + '.join(terms)}) / {total!r}, arrayEnumerate(__kql_x))"
    # numpy refuses an empty series (the DuckDB path answers an error): refused here too.
    inexact = _refused_if(f"length(__kql_x) = 0 OR NOT {exact}", "series_fir over an empty series or values that are not whole numbers")
    checked = f"if({limit} = 0 AND {inexact} = 0, {_floats_json(convolved)}, NULL)"
    return _series_answer(_let({"__kql_x": f"arrayMap(v -> ifNull(v, 0.), {_NUMBERS})"}, checked))


def _stats(options: list) -> str:
    """series_stats_dynamic's bag (series_math.stats): min and max with their first index, the mean,
    and the sample variance (n - 1) around it, two passes as numpy's var; NULLs are skipped, and
    a series of no number answers every field null. numpy sums pairwise and ClickHouse in an
    order of its own: the reals agree to rounding (the differential test's tolerance), the
    indexes exactly."""
    fields = {
        "min": float_json("arrayMin(__kql_v)"), "min_idx": "toString(indexOf(__kql_x, arrayMin(__kql_v)) - 1)",
        "max": float_json("arrayMax(__kql_v)"), "max_idx": "toString(indexOf(__kql_x, arrayMax(__kql_v)) - 1)",
        "avg": float_json("__kql_m"), "stdev": float_json("sqrt(__kql_var)"), "variance": float_json("__kql_var"),
    }
    bag = "concat('{', " + ", ',', ".join(f"'\"{k}\":', {v}" for k, v in fields.items()) + ", '}')"
    empty = "'{" + ",".join(f'"{k}":null' for k in fields) + "}'"
    variance = ("if(length(__kql_v) > 1, arraySum(arrayMap(v -> (v - __kql_m) * (v - __kql_m), __kql_v)) "
                "/ (length(__kql_v) - 1), 0.)")
    numbers = _let({"__kql_v": "arrayMap(v -> assumeNotNull(v), arrayFilter(v -> isNotNull(v), __kql_x))"},
                   f"if(length(__kql_v) = 0, {empty}, "
                   f"{_let({'__kql_m': 'arraySum(__kql_v) / length(__kql_v)'}, _let({'__kql_var': variance}, bag))})")
    return _series_answer(_let({"__kql_x": _NUMBERS}, numbers))


def _fir_of_a_column(taps: exp.Expr) -> str:
    """series_fir whose filter is computed (a column): not lowered, but past series_math's work
    limit it answers the DuckDB path's limit error, as the UDF checks that first."""
    limit = (f"throwIf(length(JSONExtractArrayRaw({_SERIES})) * greatest(length(JSONExtractArrayRaw(ifNull(__kql_taps, ''))), 1) "
             f"> {MAX_WORK}, 'kql-limit: series_fir: a series times its filter is more than {MAX_WORK:,} steps')")
    refused = _refused_if("1", "series_fir with a computed filter")
    return _series_answer(f"if({limit} = 0 AND {refused} = 0, '', NULL)")


def _no_placeholder(options: list, at: int) -> None:
    if len(options) > at and options[at] is not None:
        refuse("a missing-value placeholder in the series_fill functions")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integral(value: Any) -> bool:
    return _number(value) and float(value).is_integer() and abs(value) < _EXACT


_SERIES_FUNCTIONS: dict[str, Callable[[list], str]] = {
    "series_fill_forward": lambda o: _fill("arrayFill", o),
    "series_fill_backward": lambda o: _fill("arrayReverseFill", o),
    "series_fill_const": _fill_const,
    "series_fill_linear": _fill_linear,
    "series_outliers": _outliers,
    "series_fir": _fir,
    "series_stats_dynamic": _stats,
}


def lower_udfs(tree: exp.Expr) -> exp.Expr:
    """`kql_xxhash64(...)` and `kql_compute('<function>', series, options)` as ClickHouse
    expressions (see the module doc); a function or option this module cannot reproduce exactly
    is refused."""
    def swap(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Anonymous):
            return node
        name = node.name.lower()
        if name == "kql_xxhash64":
            return _hash(node.expressions)
        if name != "kql_compute":
            return node
        function, series, options = node.expressions
        lower = _SERIES_FUNCTIONS.get(function.name) if isinstance(function, exp.Literal) else None
        if lower is None:
            refuse(f"{function.name.removeprefix('__kql_') or 'this function'}()")
        taps = _computed_filter(function.name, options)
        if taps is not None:
            return _with_series(_fir_of_a_column(taps), series, {"__kql_taps": taps})
        return _with_series(lower(_constant_options(options)), series)
    return tree.transform(swap, copy=False)


def _hash(arguments: list[exp.Expr]) -> exp.Expr:
    text, modulo = arguments
    if isinstance(modulo, exp.Null):
        template = f"reinterpretAsInt64(xxHash64({_SERIES}))"
    else:
        # A modulo that is NULL when the query runs: the signed hash, as the UDF answers.
        template = (f"if(isNull(__kql_m), reinterpretAsInt64(xxHash64({_SERIES})), if(__kql_m > 0, "
                    f"toInt64(xxHash64({_SERIES}) % toUInt64(greatest(assumeNotNull(__kql_m), 1))), NULL))")
    lowered = _with_series(f"if(isNull(__kql_t), NULL, {template})", text)
    for column in list(lowered.find_all(exp.Column)):
        if column.name == "__kql_t":
            column.replace(text.copy())
    for column in list(lowered.find_all(exp.Column)):
        if column.name == "__kql_m":
            column.replace(modulo.copy())
    return lowered


def _with_series(template: str, series: exp.Expr, values: dict[str, exp.Expr] | None = None) -> exp.Expr:
    """*template* with the series (or hashed text) in place of its placeholder, and each of
    *values* in place of its name; a NULL series is read as '' (not JSON: a NULL answer), as
    ClickHouse keeps no arrays inside a Nullable."""
    lowered = parse_one(template, read="clickhouse")
    for column in list(lowered.find_all(exp.Column)):
        if column.name == _SERIES:
            column.replace(exp.func("ifNull", series.copy(), exp.Literal.string("")))
        elif values and column.name in values:
            column.replace(values[column.name].copy())
    return lowered


def _computed_filter(function: str, options: exp.Expr) -> exp.Expr | None:
    """series_fir's filter when it is computed (`json_array(column, constants...)`), else None."""
    if function != "series_fir" or not isinstance(options, exp.Cast):
        return None
    array = options.this
    if not (isinstance(array, exp.JSONArray) or isinstance(array, exp.Anonymous) and array.name.lower() == "json_array") \
            or not array.expressions:
        return None
    first, rest = array.expressions[0], array.expressions[1:]
    if not any(True for _ in first.find_all(exp.Column)) or any(any(True for _ in r.find_all(exp.Column)) for r in rest):
        return None
    return exp.Cast(this=first.copy(), to=exp.DataType.build("VARCHAR"))


def _constant_options(options: exp.Expr) -> list:
    """The UDF's options (a `json_array(...)` of constants), evaluated as DuckDB evaluates them."""
    if isinstance(options, exp.Null):
        return []
    if any(True for _ in options.find_all(exp.Column)):
        refuse("series function options that are not constants")
    row = _empty_store().cursor().execute(f"SELECT {options.sql(dialect='duckdb')}").fetchone()
    value = json.loads(row[0]) if row and row[0] is not None else []
    return value if isinstance(value, list) else []

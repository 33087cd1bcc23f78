"""The deliberate rules: each rewrites one construct of the translator's DuckDB SQL (parsed by sqlglot)
into a tree that sqlglot's ClickHouse generator renders with the same meaning.

Each rule is a function from tree to tree, named for what it lowers, with a test of its own in
tests/clickhouse/test_lowering_rules.py. RULES is the order they run in: the type folding
(typing.py) first, so later rules see no dead DuckDB-only branches.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlglot import exp

from . import dynamic_rules as dynamic
from .characters import character_strings
from .decompose import decompose_fields, lower_decompose
from .jsontext import json_functions, json_literals
from .lets import guarded_lets, typed_lets
from .lists import list_ranges
from .numbers import half_away_rounding
from .parsing import named_groups, string_guards
from .percentile_arrays import level_sql
from .refusals import refuse
from .series import bin_numbers, ordered_lists, series_json
from .structs import numeric_bins, struct_fields
from .timespans import timespan_values
from .udfs import lower_udfs
from .unions import ordered_values, union_by_name

CLOCK_PARAMETER = "kql_now"

_UNITS_US = {"MICROSECOND": 1, "MILLISECOND": 1_000, "SECOND": 1_000_000, "MINUTE": 60_000_000,
             "HOUR": 3_600_000_000, "DAY": 86_400_000_000, "WEEK": 7 * 86_400_000_000}
_SHORT_UNITS = {"d": "DAY", "h": "HOUR", "m": "MINUTE", "s": "SECOND", "ms": "MILLISECOND",
                "us": "MICROSECOND", "microsecond": "MICROSECOND"}


def _ch(text: str) -> exp.Expr:
    """A ClickHouse expression, parsed in ClickHouse's dialect (sqlglot keeps its spelling)."""
    from sqlglot import parse_one
    return parse_one(text, read="clickhouse")


def pinned_clock(tree: exp.Expr) -> exp.Expr:
    """`$kqlnow`, the instant now()/ago() are pinned to, becomes the typed ClickHouse parameter
    `{kql_now: DateTime64(6, 'UTC')}` (sqlglot alone writes `{kqlnow: }`, with no type, which
    ClickHouse refuses). The value stays bound, never pasted."""
    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder) and node.name == "kqlnow":
            return _ch(f"{{{CLOCK_PARAMETER}: DateTime64(6, 'UTC')}}")
        return node
    return tree.transform(swap, copy=False)


def microsecond_timestamps(tree: exp.Expr) -> exp.Expr:
    """DuckDB's TIMESTAMP keeps microseconds; sqlglot maps it to ClickHouse's DateTime (whole
    seconds, in the server's zone). Every timestamp type becomes DateTime64(6, 'UTC')."""
    kinds = {exp.DType.TIMESTAMP, exp.DType.TIMESTAMPNTZ, exp.DType.TIMESTAMPTZ, exp.DType.DATETIME}
    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.DataType) and node.this in kinds:
            return exp.DataType.build("DateTime64(6, 'UTC')", dialect="clickhouse")
        return node
    return tree.transform(swap, copy=False)


def try_cast_to_null(tree: exp.Expr) -> exp.Expr:
    """DuckDB's TRY_CAST answers NULL for a value that does not convert; sqlglot writes a plain
    CAST, which throws in ClickHouse. `accurateCastOrNull(x, 'T')` is the same contract."""
    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.TryCast):
            target = node.to.copy()
            target.set("nullable", False)
            type_text = target.sql("clickhouse")
            if type_text.startswith("Nullable("):
                type_text = type_text[len("Nullable("):-1]
            return exp.func("accurateCastOrNull", node.this, exp.Literal.string(type_text))
        return node
    return tree.transform(swap, copy=False)


def time_buckets(tree: exp.Expr) -> exp.Expr:
    """`bin(t, 5m)` is DuckDB's `time_bucket(INTERVAL '5m', t, origin)`; sqlglot writes DATE_BIN,
    which ClickHouse lacks. Lowered to whole-microsecond arithmetic from the origin, which is
    Kusto's bin (floor to a multiple of the step since the origin, for any step, also over days):
    `origin + floor((t - origin) / step) * step` in microseconds (a floor, not a truncation, so
    instants before the origin go to the bin below, as Kusto's do)."""
    def swap(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.DateBin):
            return node
        step = interval_microseconds(node.this)
        origin = node.args.get("unit")
        origin_sql = origin.sql("clickhouse") if origin is not None else \
            "toDateTime64('1970-01-01 00:00:00', 6, 'UTC')"
        t_sql = node.expression.sql("clickhouse")
        return _ch(
            f"fromUnixTimestamp64Micro(toUnixTimestamp64Micro(toDateTime64({origin_sql}, 6, 'UTC')) + "
            f"toInt64(floor((toUnixTimestamp64Micro(toDateTime64({t_sql}, 6, 'UTC')) - "
            f"toUnixTimestamp64Micro(toDateTime64({origin_sql}, 6, 'UTC'))) / {step})) * {step}, 'UTC')")
    return tree.transform(swap, copy=False)


def interval_microseconds(interval: exp.Expr) -> int:
    """The length of a constant interval (`INTERVAL '5m'`, `INTERVAL 5 MINUTE`) in microseconds;
    a month or a year is no fixed length: refused."""
    if not isinstance(interval, exp.Interval):
        refuse("a bin step that is not a constant")
    amount = interval.this.name if interval.this is not None else ""
    unit_node = interval.args.get("unit")
    unit = unit_node.name.upper() if unit_node is not None else ""
    if not unit:
        number = amount.rstrip("abcdefghijklmnopqrstuvwxyz")
        amount, unit = number, _SHORT_UNITS.get(amount[len(number):].lower(), "")
    unit = unit.removesuffix("S")  # SECONDS, HOURS...
    if unit not in _UNITS_US:
        refuse(f"a bin step in {unit.lower() or 'that unit'}")
    try:
        return round(float(amount) * _UNITS_US[unit])
    except ValueError:
        refuse("a bin step that is not a constant")
        raise


def nearest_rank_percentiles(tree: exp.Expr) -> exp.Expr:
    """`percentile(x, p)` is DuckDB's `quantile_disc(x, p)`: Kusto's nearest rank, the value at
    1-based rank ceil(n * p) of the sorted non-null values (50 and 95 over 1..100; 100.0 as the
    p95 of 10.5, 40, 100). ClickHouse's quantileExact* pick index floor(n * p) (96 over 1..100),
    so it is lowered to that rank of the sorted values: exact, as quantile_disc is, and NULL over
    no value."""
    def swap(node: exp.Expr) -> exp.Expr:
        if not (isinstance(node, exp.PercentileDisc) or
                (isinstance(node, exp.Anonymous) and node.name.lower() == "quantile_disc")):
            return node
        value, level = _percentile_args(node)
        v, p = value.sql("clickhouse"), level.sql("clickhouse")
        pick = (f"if(count({v}) = 0, NULL, arrayElement(arraySort(groupArray({v})), "
                f"greatest(toUInt64(ceil(count({v}) * {{p}})), 1)))")
        if isinstance(level, exp.Array):
            return _percentile_list(v, level)
        return _ch(pick.format(p=p))
    return tree.transform(swap, copy=False)


def _percentile_args(node: exp.Expr) -> tuple[exp.Expr, exp.Expr]:
    if isinstance(node, exp.PercentileDisc):
        return node.this, node.expression
    return node.expressions[0], node.expressions[1]


def _percentile_list(v: str, levels: exp.Array) -> exp.Expr:
    """quantile_disc over a list of levels: one array, each element picked as above."""
    sorted_values = f"arraySort(groupArray({v}))"
    picks = [f"arrayElement({sorted_values}, greatest(toUInt64(ceil(count({v}) * {level_sql(q)})), 1))" for q in levels.expressions]
    return _ch(f"if(count({v}) = 0, NULL, [{', '.join(picks)}])")


def regex_functions(tree: exp.Expr) -> exp.Expr:
    """Both engines use RE2, so patterns carry over; the calls do not. `regexp_escape` (Kusto's
    `has`/`search` term quoting) is `regexpQuoteMeta`; a match with DuckDB's 'i' option keeps its
    case-insensitivity as an inline `(?i)` (sqlglot drops the option); `regexp_extract(s, p, g)`
    answers '' for no match in both."""
    def escape(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Anonymous) and node.name.lower() == "regexp_escape":
            return exp.Anonymous(this="regexpQuoteMeta", expressions=node.expressions)
        return node

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.RegexpLike) and node.args.get("flag") is not None:
            flag = node.args["flag"]
            if isinstance(flag, exp.Literal) and "i" in flag.this:
                pattern = exp.func("concat", exp.Literal.string("(?i)"), node.expression)
                return exp.RegexpLike(this=node.this, expression=pattern)
            refuse("regular expression options other than i")
        return node
    return tree.transform(escape, copy=False).transform(swap, copy=False)


def integer_division(tree: exp.Expr) -> exp.Expr:
    """Kusto's long / long truncates toward zero; the translator writes DuckDB's `//`, which
    sqlglot renders as a float division cast back to Int64 (wrong past 2^53). `intDiv` truncates
    exactly; a NULL divisor (the translator's NULLIF(d, 0)) gives NULL in both."""
    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.IntDiv):
            return exp.func("intDiv", node.this, node.expression)
        return node
    return tree.transform(swap, copy=False)


def limit_errors(tree: exp.Expr) -> exp.Expr:
    """The translator guards its generators with DuckDB's `error('kql-limit: ...')` in a CASE
    branch only a runaway query reaches. ClickHouse's `throwIf(1, message)` raises the same
    message, and with short-circuit evaluation (ClickHouse's default) only on the rows that reach
    the branch (`materialize` keeps ClickHouse from folding the constant call at analysis, which
    would raise it for every query); execute.py turns the message back into the same limit error."""
    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Anonymous) and node.name.lower() == "error":
            message = node.expressions[0] if node.expressions else exp.Literal.string("error")
            return exp.func("throwIf", exp.func("materialize", exp.Literal.number(1)), message)
        return node
    return tree.transform(swap, copy=False)


_RENAMED = {"strlen": "length", "starts_with": "startsWith", "ends_with": "endsWith"}


def function_names(tree: exp.Expr) -> exp.Expr:
    """DuckDB functions sqlglot passes through by name whose ClickHouse function has the same
    meaning under another name: `strlen` (bytes) is `length`, `starts_with` is `startsWith`..."""
    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Anonymous) and node.name.lower() in _RENAMED:
            node.set("this", _RENAMED[node.name.lower()])  # in place: transform() goes on into nested calls
        return node
    return tree.transform(swap, copy=False)


def integer_ranges(tree: exp.Expr) -> exp.Expr:
    """`range x from 1 to 5 step 1` is DuckDB's `generate_series(a, b, s) AS _range(x)`
    (inclusive of b). ClickHouse's generate_series is UInt64-only, so it is lowered to
    `arrayJoin(range(a, b + sign(s), s))` over Int64, which counts down and below zero too. A
    range over instants or reals (an interval step, a timestamp or double cast) is refused."""
    def swap(node: exp.Expr) -> exp.Expr:
        if not (isinstance(node, exp.Table) and isinstance(node.this, exp.GenerateSeries)):
            return node
        series = node.this
        parts = [series.args.get("start"), series.args.get("end"), series.args.get("step")]
        present = [p for p in parts if p is not None]
        if len(present) != 3 or not (_integral(present[0]) and _integral(present[2])):
            refuse("range over instants, timespans or reals")
        start, end, step = (f"toInt64({p.sql('clickhouse')})" for p in present)
        columns = node.alias_column_names or ["generate_series"]
        alias = node.alias or "_range"
        values = _ch(f"SELECT arrayJoin(range({start}, {end} + sign({step}), {step})) AS `{columns[0]}`")
        return exp.Subquery(this=values, alias=exp.TableAlias(this=exp.to_identifier(alias)))
    return tree.transform(swap, copy=False)


def _integral(node: exp.Expr) -> bool:
    """An integer literal or a cast to an integer type: what the translator writes for a long
    range's start and step (the end carries its limit guard, whose arithmetic is in doubles)."""
    if isinstance(node, exp.Neg):
        return _integral(node.this)
    if isinstance(node, exp.Literal):
        return not node.is_string and node.this.lstrip("-").isdigit()
    return isinstance(node, exp.Cast) and node.to.this in (exp.DType.BIGINT, exp.DType.INT)


def window_nulls(tree: exp.Expr) -> exp.Expr:
    """`prev()`/`next()` are DuckDB's lag/lead, NULL past the edge of the partition. ClickHouse's
    give the type's default there (1970-01-01 for the store's non-Nullable timestamp, 0, '') unless
    the value is Nullable: the argument is wrapped in `toNullable`. The offset, which the
    translator casts to BIGINT (Nullable once lowered), is passed as the plain integer it is."""
    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, (exp.Lag, exp.Lead)) and not _is_nullable_call(node.this):
            node.set("this", exp.Anonymous(this="toNullable", expressions=[node.this]))
            offset = node.args.get("offset")
            while isinstance(offset, exp.Cast):  # ClickHouse wants a plain integer offset
                offset = offset.this
            if offset is not None:
                node.set("offset", offset)
        return node
    return tree.transform(swap, copy=False)


def _is_nullable_call(node: exp.Expr) -> bool:
    return isinstance(node, exp.Anonymous) and node.name == "toNullable"


def regex_replace(tree: exp.Expr) -> exp.Expr:
    """DuckDB's `regexp_replace(s, p, r)` replaces the first match, with option 'g' every match;
    sqlglot passes the option through to a function ClickHouse lacks. Lowered to
    replaceRegexpOne / replaceRegexpAll (RE2 both, `\\1` backreferences both)."""
    def swap(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.RegexpReplace):
            return node
        modifiers = node.args.get("modifiers")
        flags = modifiers.this if isinstance(modifiers, exp.Literal) else ""
        if modifiers is not None and not isinstance(modifiers, exp.Literal) or set(flags) - {"g"}:
            refuse("regular expression options other than g")
        name = "replaceRegexpAll" if "g" in flags else "replaceRegexpOne"
        return exp.Anonymous(this=name, expressions=[node.this, node.expression, node.args["replacement"]])
    return tree.transform(swap, copy=False)


def datetime_parsing(tree: exp.Expr) -> exp.Expr:
    """`datetime(2026-01-01)` and `todatetime(s)` are DuckDB's `COALESCE(TRY_CAST(s AS
    TIMESTAMPTZ) AT TIME ZONE 'UTC', try_strptime(s, [the formats Kusto also reads]))`: ISO 8601
    first, then US dates and RFC 822. ClickHouse's `parseDateTime64BestEffortUSOrNull(s, 6, 'UTC')`
    reads the same forms (month first where ambiguous, as the list does), in UTC, NULL when none
    matches."""
    def swap(node: exp.Expr) -> exp.Expr:
        if not (isinstance(node, exp.Coalesce) and isinstance(node.this, exp.AtTimeZone)):
            return node
        cast = node.this.this
        rest = node.expressions
        if not (isinstance(cast, exp.TryCast) and len(rest) == 1 and isinstance(rest[0], exp.Anonymous)
                and rest[0].name.lower() == "try_strptime"):
            return node
        text = exp.Anonymous(this="toString", expressions=[cast.this])
        return exp.Anonymous(this="parseDateTime64BestEffortUSOrNull",
                             expressions=[text, exp.Literal.number(6), exp.Literal.string("UTC")])
    return tree.transform(swap, copy=False)


def filter_coalesce(tree: exp.Expr) -> exp.Expr:
    """The translator writes `where a == b` as `WHERE coalesce(a = b, FALSE)` (Kusto's null
    comparisons are false). In a WHERE, NULL and FALSE both drop the row, so the coalesce is
    dropped there (and in each AND-ed part): ClickHouse's index analysis then sees `operation_Id =
    'x'` and uses the store's bloom filter, which it cannot through coalesce()."""
    def strip(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Paren):
            inner = strip(node.this)
            return inner if inner is not node.this else node
        if isinstance(node, exp.And):
            return exp.And(this=strip(node.this), expression=strip(node.expression))
        if (isinstance(node, exp.Coalesce) and len(node.expressions) == 1
                and isinstance(node.expressions[0], exp.Boolean) and node.expressions[0].this is False):
            return node.this
        return node
    for where in list(tree.find_all(exp.Where)):
        where.set("this", strip(where.this))
    return tree


def epoch_seconds(tree: exp.Expr) -> exp.Expr:
    """DuckDB's `epoch(t)` (seconds since 1970 as a double, microseconds kept) and
    `to_timestamp(seconds)` back, which the translator uses for `bin()` over a scalar and timespan
    arithmetic; sqlglot writes TIME_TO_UNIX and a whole-second fromUnixTimestamp. Lowered through
    microseconds both ways: `epoch(INTERVAL '5m')` is the constant 300.0, `epoch(t)` is
    `toUnixTimestamp64Micro(t) / 1e6`, `to_timestamp(s)` is `fromUnixTimestamp64Micro(round(s *
    1e6))` in UTC."""
    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.TimeToUnix):
            if isinstance(node.this, exp.Interval):
                return exp.Literal.number(interval_microseconds(node.this) / 1_000_000)
            return _ch(f"(toUnixTimestamp64Micro(toDateTime64({inner(node.this)}, 6, 'UTC')) / 1e6)")
        if isinstance(node, exp.UnixToTime) and not node.args.get("scale") and not node.args.get("format"):
            return _ch(f"fromUnixTimestamp64Micro(toInt64(round(({inner(node.this)}) * 1e6)), 'UTC')")
        return node

    def inner(node: exp.Expr) -> str:  # nested calls lowered too (transform skips a replaced subtree)
        return node.transform(swap).sql("clickhouse")
    return tree.transform(swap, copy=False)


def regex_extract_all(tree: exp.Expr) -> exp.Expr:
    """DuckDB's `regexp_extract_all(s, p, g)` is group g of every match (g = 0: the whole match);
    ClickHouse's extractAll gives the first group when the pattern has one. Lowered to
    `arrayMap(m -> m[g + 1], extractAllGroupsVertical(s, concat('(', p, ')')))`: the added outer
    group is group 0, the pattern's own groups follow."""
    def swap(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.RegexpExtractAll):
            return node
        group = node.args.get("group")
        if group is not None and not (isinstance(group, exp.Literal) and not group.is_string):
            refuse("extract_all with a computed group")
        index = int(group.this) + 1 if group is not None else 1
        s, p = node.this.transform(swap).sql("clickhouse"), node.expression.transform(swap).sql("clickhouse")
        return _ch(f"arrayMap(m -> m[{index}], extractAllGroupsVertical({s}, concat('(', {p}, ')')))")
    return tree.transform(swap, copy=False)


def day_arithmetic(tree: exp.Expr) -> exp.Expr:
    """`startofweek()` is DuckDB's `date_trunc('day', t) - to_days(dayofweek(t))`: `dayofweek`
    counts from Sunday = 0, ClickHouse's toDayOfWeek from Monday = 1 to Sunday = 7 (so `% 7`), and
    `to_days(n)` is an interval of n days (ClickHouse's TO_DAYS is a day number since year zero):
    `toIntervalDay(n)`."""
    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.DayOfWeek):
            return exp.Mod(this=exp.Paren(this=exp.Anonymous(this="toDayOfWeek", expressions=[node.this.transform(swap)])),
                           expression=exp.Literal.number(7))
        if isinstance(node, exp.ToDays):
            return exp.Anonymous(this="toIntervalDay", expressions=[node.this.transform(swap)])
        return node
    return tree.transform(swap, copy=False)


def array_lengths(tree: exp.Expr) -> exp.Expr:
    """DuckDB's `len()` is a list's length as well as a string's; sqlglot writes CHAR_LENGTH,
    which ClickHouse refuses for an array. The `len()` of a list the translator builds
    (`str_split` for split(), `regexp_extract_all` for extract_all and replace_regex's guard, a
    list literal) is ClickHouse's `length`, which counts an array's elements."""
    lists = (exp.Split, exp.RegexpExtractAll, exp.Array)
    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Length) and isinstance(node.this, lists):
            return exp.Anonymous(this="length", expressions=[node.this])
        return node
    return tree.transform(swap, copy=False)


_UNPADDED = {"m": "toMonth", "d": "toDayOfMonth", "H": "toHour", "M": "toMinute", "S": "toSecond"}


def datetime_formatting(tree: exp.Expr) -> exp.Expr:
    """`format_datetime(t, "yyyy-M-d H:mm")` is DuckDB's strftime with `%-m`, `%-d`, `%-H`...
    (no leading zero), which ClickHouse's formatDateTime refuses. The format is split at each
    unpadded field: the padded parts stay formatDateTime, each unpadded field is the number itself
    (`toString(toMonth(t))`), all concatenated; NULL in, NULL out as before. DuckDB's minute
    `%M` is ClickHouse's `%i` (its `%M` is the month's name)."""
    def swap(node: exp.Expr) -> exp.Expr:
        fmt = node.args.get("format") if isinstance(node, exp.TimeToStr) else None
        if not isinstance(fmt, exp.Literal):
            return node
        if "%-" not in fmt.this:
            return exp.Anonymous(this="formatDateTime", expressions=[node.this, _minutes(fmt.this)])
        parts: list[exp.Expr] = []
        for i, chunk in enumerate(re.split(r"%-(\w)", fmt.this)):
            if i % 2:
                if chunk not in _UNPADDED:
                    refuse(f"the datetime format field %-{chunk}")
                number = exp.Anonymous(this=_UNPADDED[chunk], expressions=[node.this.copy()])
                parts.append(exp.Anonymous(this="toString", expressions=[number]))
            elif chunk:
                parts.append(exp.Anonymous(this="formatDateTime",
                                           expressions=[node.this.copy(), _minutes(chunk)]))
        return exp.Anonymous(this="concat", expressions=parts) if len(parts) > 1 else parts[0]
    return tree.transform(swap, copy=False)


def _minutes(fmt: str) -> exp.Literal:
    """A DuckDB strftime format in ClickHouse's spelling: `%M` (minute) is `%i`; `%%` stays."""
    return exp.Literal.string(re.sub(r"%(.)", lambda m: "%i" if m.group(1) == "M" else m.group(0), fmt))


_STEP = "__kql_s"


def series_step(tree: exp.Expr) -> exp.Expr:
    """make-series carries its step as a column, `INTERVAL '5m' AS __kql_s`, and uses it as
    `epoch(b.__kql_s)` and `b.__kql_f + n.i * b.__kql_s`; ClickHouse can neither take an
    interval column's length nor multiply one. The step column becomes its length in
    microseconds (Int64): its epoch is that / 1e6, and `n * step` an IntervalMicrosecond. A
    numeric series' step (a number) stays as it is; a query mixing both kinds is refused."""
    kinds = {isinstance(a.this, exp.Interval) for a in tree.find_all(exp.Alias) if a.alias == _STEP}
    if kinds != {True}:
        if kinds == {True, False}:
            refuse("make-series over instants and numbers in one query")
        return tree

    def is_step(node: exp.Expr | None) -> bool:
        return isinstance(node, exp.Column) and node.name == _STEP

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Alias) and node.alias == _STEP and isinstance(node.this, exp.Interval):
            node.set("this", exp.Literal.number(interval_microseconds(node.this)))
        elif isinstance(node, exp.TimeToUnix) and is_step(node.this):
            return exp.Paren(this=exp.Div(this=node.this, expression=exp.Literal.number("1e6")))
        elif isinstance(node, exp.Mul) and (is_step(node.this) or is_step(node.expression)):
            return exp.Anonymous(this="toIntervalMicrosecond", expressions=[node])
        return node
    return tree.transform(swap, copy=False)


RULES: tuple[Callable[[exp.Expr], exp.Expr], ...] = (
    *dynamic.BINDING,  # first: they bind DuckDB SQL (dynamic_rules.py)
    numeric_bins, struct_fields,  # before the type folding: the bins' branches are typed there
    typed_lets,
    *dynamic.TYPE_FOLDING,
    union_by_name,
    lower_decompose,
    decompose_fields,
    lower_udfs,
    *dynamic.JSON_CASTS,
    json_literals,
    *dynamic.EXPANSIONS,
    json_functions,
    *dynamic.JSON_TEXTS,
    named_groups,
    string_guards,
    ordered_lists,
    bin_numbers,
    series_json,
    limit_errors,
    half_away_rounding,  # before the rules that write ClickHouse's own round() (timespans, epoch)
    datetime_parsing,
    pinned_clock,
    *dynamic.INTERVALS,  # before the rules that read interval lengths
    series_step,
    time_buckets,
    timespan_values,
    epoch_seconds,
    array_lengths,
    regex_extract_all,
    day_arithmetic,
    datetime_formatting,
    microsecond_timestamps,
    try_cast_to_null,
    nearest_rank_percentiles,
    regex_functions,
    integer_division,
    function_names,
    integer_ranges,
    list_ranges,
    window_nulls,
    regex_replace,
    filter_coalesce,
    character_strings,
    ordered_values,  # after the rules that lower a datatable's cells
    guarded_lets,  # last: it inlines values the rules above have lowered
)

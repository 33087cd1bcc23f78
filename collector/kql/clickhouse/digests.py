"""`tdigest`, `tdigest_merge` and `percentile_tdigest` on ClickHouse, as collector/kql/digests.py
computes them on DuckDB (a digest is `{"n": count, "q": [1001 picks]}`), pick for pick.

- `tdigest(x)`: DuckDB's `quantile_disc` over the grid i / 1000, a DECIMAL list, so its rank is
  exact: the value at 1-based rank max(1, ceil(n * i / 1000)) (no floating point: 10 * 0.3 is 3
  here, not 3.0000000000000004). The sorted values are expanded by how many grid steps pick each
  (`_picks`), so no step captures the whole sorted array in a lambda. The text is DuckDB's
  `to_json` (percentile_arrays' real form; a pick of 1e15 or more, or not finite, is refused when
  the query runs).
- `tdigest_merge(d)`: the UDF's merge. Its CDF at a candidate x is (sum of n_d * min(#{q_d <= x},
  1000)) / total, i.e. each part's first 1000 picks weigh n_d and its last 0: a weighted sort and
  a cumulative sum. Step i takes the first candidate whose CDF reaches i / 1000 - 1e-12; in
  integers that is the first cumulative weight >= i * total, the same comparison as the UDF's
  floats while the total is under 1e8 and there are at most 5,000 digests (the rounding of its
  sums stays under the 1e-12 slack and the CDF's steps are wider than it): beyond, refused at run
  time. No digest gives `{"n":0,"q":null}` (no row at all: null, as DuckDB's list() of no row), one
  digest comes back as it is.
- `percentile_tdigest(d, p)`: the UDF's lerp between steps, the same float operations.

A digest whose picks are not all reals (one the query built itself) is refused at run time; one
that is not a digest is skipped by the merge and reads back null, as the UDF does.
"""

from __future__ import annotations

from sqlglot import exp, parse_one

from .percentile_arrays import _REAL, _REAL_TEXT, _WHOLE
from .refusals import refuse
from .shapes import source_columns
from .udfs import UNSUPPORTED_MARK, float_json

_MAX_TOTAL = 100_000_000
_MAX_PARTS = 5_000
_NUMBERS = _WHOLE | _REAL


def _picks(values: str, cumulative: str, total: str) -> str:
    """The 1001 steps: step i is the first of the sorted *values* whose *cumulative* weight reaches
    i * *total*; each value repeated for the steps that pick it (floor(c_k / total) - floor(c_k-1 / total),
    with c_0 = -total)."""
    floors = f"arrayMap(__kql_c -> intDiv(toInt64(__kql_c), toInt64(greatest({total}, 1))), {cumulative})"
    counts = f"arrayPopFront(arrayDifference(arrayPushFront({floors}, toInt64(-1))))"
    return f"arrayFlatten(arrayMap((__kql_v, __kql_m) -> arrayWithConstant(__kql_m, __kql_v), {values}, {counts}))"


def _refused_if(condition: str, what: str) -> str:
    return f"throwIf({condition}, '{UNSUPPORTED_MARK}{what} is not supported on the clickhouse store')"


_DIGEST_TEXT = ("concat('{\"n\":', toString(length(__s)), ',\"q\":', if(length(__s) = 0, 'null', concat('[', "
                "arrayStringConcat(arrayMap(__kql_v -> if(" + _refused_if("NOT isFinite(__kql_v)", "tdigest of NaN or "
                "infinite values") + " = 0, __fmt, ''), " + _picks(
                    "__s", "arrayMap(__kql_k -> __kql_k * 1000, range(1, length(__s) + 1))", "length(__s)")
                + "), ','), ']')), '}')")
_TDIGEST = f"arrayMap(__s -> {_DIGEST_TEXT}, [arraySort(groupArray(__x))])[1]"

_SHAPED = ("(JSONType(__d, 'n') IN ('Int64', 'UInt64') AND JSONExtractInt(__d, 'n') > 0 AND JSONType(__d, 'q') = 'Array' "
           "AND JSONLength(__d, 'q') = 1001)")
_W = "[[:space:]]*"
_REAL_PICK = "-?[0-9]+([.][0-9]+([eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)"
_PLAIN = (f"match(__d, '^{_W}[{{]{_W}\"n\"{_W}:{_W}[0-9]+{_W},{_W}\"q\"{_W}:{_W}[[]{_W}{_REAL_PICK}"
          f"({_W},{_W}{_REAL_PICK})*{_W}[]]{_W}[}}]{_W}$')")
"""A digest as the UDF reads it: n then q, each pick a float to Python's json (written with a point
or an exponent), nothing else (JSONExtractArrayRaw would write 1.0 as 1, so the text is matched)."""
_VALID = (f"(ifNull({_SHAPED}, 0) AND "
          f"{_refused_if(f'ifNull({_SHAPED}, 0) AND NOT {_PLAIN}', 'a digest holding more than reals')} = 0)")
_PART = "(toInt64(JSONExtractInt(__d, 'n')), JSONExtract(__d, 'q', 'Array(Float64)'))"
_DIGEST_JSON = ("concat('{\"n\":', toString(__n), ',\"q\":[', arrayStringConcat(arrayMap(__kql_f -> "
                f"{float_json('__kql_f')}, __q), ','), ']}}')")
_WEIGHED = ("arraySort(__kql_w -> __kql_w.1, arrayFlatten(arrayMap(__kql_p -> arrayMap((__kql_v, __kql_j) -> "
            "(__kql_v, if(__kql_j <= 1000, __kql_p.1, 0)), __kql_p.2, range(1, 1002)), __ps)))")
_MERGED = (f"arrayMap(__w -> {_picks('arrayMap(__kql_w -> __kql_w.1, __w)', 'arrayCumSum(arrayMap(__kql_w -> __kql_w.2, __w))', '__t')}, "
           f"[{_WEIGHED}])[1]")
_TOO_MANY = f"__t >= {_MAX_TOTAL} OR length(__ps) > {_MAX_PARTS}"
_MERGE_BODY = (
    f"if(length(__ps) = 0, '{{\"n\":0,\"q\":null}}', "
    f"if({_refused_if(_TOO_MANY, f'tdigest_merge of over {_MAX_PARTS:,} digests or {_MAX_TOTAL:,} values')} = 0, "
    "arrayMap((__n, __q) -> " + _DIGEST_JSON + ", "
    "[if(length(__ps) = 1, __ps[1].1, __t)], [if(length(__ps) = 1, __ps[1].2, " + _MERGED + ")])[1], ''))")
_MERGE = ("if(count() = 0, NULL, arrayMap(__ps -> arrayMap(__t -> " + _MERGE_BODY + ", [arraySum(arrayMap(__kql_p -> __kql_p.1, __ps))])[1], "
          "[arrayMap(__d -> " + _PART + ", arrayFilter(__d -> " + _VALID + ", groupArray(toString(__dv))))])[1])")
_PERCENTILE = ("arrayMap(__dd -> if(" + _VALID.replace("__d", "__dd")
               + " AND __p >= 0 AND __p <= 100, arrayMap((__q, __pos) -> if(__pos >= 1000, __q[1001], "
               "__q[toInt64(floor(__pos)) + 1] + (__q[toInt64(floor(__pos)) + 2] - __q[toInt64(floor(__pos)) + 1]) * "
               "(__pos - toInt64(floor(__pos)))), [JSONExtract(__dd, 'q', 'Array(Float64)')], [__p / 100 * 1000])[1], NULL), [ifNull(__dv, '')])[1]")


def _filled(template: str, **nodes: exp.Expr) -> exp.Expr:
    """*template* (ClickHouse) with each column `__name` replaced by a copy of nodes[name]."""
    tree = parse_one(template, read="clickhouse")

    def fill(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.name.removeprefix("__") in nodes and not node.table:
            return nodes[node.name.removeprefix("__")].copy()
        return node
    return tree.transform(fill)


def tdigests(tree: exp.Expr) -> exp.Expr:
    """`CAST(json_object('n', count(x), 'q', quantile_disc(CAST(x AS DOUBLE), grid)) AS JSON)` of a
    number column x: the digest's JSON text, as DuckDB writes it."""
    found = []
    for node in tree.find_all(exp.Cast):
        value = _digest_value(node)
        if value is not None and (source_columns(node.parent_select) or {}).get(value.this.name) in _NUMBERS:
            found.append((node, value))
    for node, value in found:
        formatted = parse_one(_REAL_TEXT, read="clickhouse")
        node.replace(_filled(_TDIGEST.replace("__fmt", formatted.sql("clickhouse")), x=value))
    return tree


def _digest_value(node: exp.Cast) -> exp.Cast | None:
    """`CAST(x AS DOUBLE)` when *node* is the translator's tdigest(x) of a column x."""
    inner = node.this
    if node.to.this != exp.DType.JSON or not isinstance(inner, exp.JSONObject) or len(inner.expressions) != 2:
        return None
    n, q = inner.expressions
    if not (isinstance(n, exp.JSONKeyValue) and n.this.name == "n" and isinstance(q, exp.JSONKeyValue)
            and q.this.name == "q" and isinstance(q.expression, exp.PercentileDisc)):
        return None
    value, grid = q.expression.this, q.expression.expression
    if not (isinstance(value, exp.Cast) and value.to.this == exp.DType.DOUBLE and isinstance(value.this, exp.Column)
            and isinstance(grid, exp.Array) and len(grid.expressions) == 1001):
        return None
    return value


def digest_udfs(tree: exp.Expr) -> exp.Expr:
    """`kql_compute('tdigest_merge', to_json(list(d)), NULL)` of a dynamic column d and
    `kql_compute('percentile_tdigest', d, json_array(p))` of a number p, as the UDF computes them."""
    def swap(node: exp.Expr) -> exp.Expr:
        if not (isinstance(node, exp.Anonymous) and node.name.lower() == "kql_compute" and len(node.expressions) == 3):
            return node
        name = node.expressions[0].name
        if name == "tdigest_merge":
            return _merge(node)
        if name == "percentile_tdigest":
            return _percentile(node)
        return node
    return tree.transform(swap, copy=False)


def _merge(node: exp.Anonymous) -> exp.Expr:
    listed = node.expressions[1]
    inner = listed.this if isinstance(listed, exp.Cast) else None
    agg = inner.expressions[0] if isinstance(inner, exp.Anonymous) and inner.name.lower() == "to_json" else None
    column = agg.this if isinstance(agg, exp.ArrayAgg) else None
    if not isinstance(column, exp.Column) or (source_columns(node.parent_select) or {}).get(column.name) != "JSON":
        return node
    return _filled(_MERGE, dv=column)


def _percentile(node: exp.Anonymous) -> exp.Expr:
    digest, options = node.expressions[1], node.expressions[2]
    packed = options.this if isinstance(options, exp.Cast) else None
    if not (isinstance(packed, exp.JSONArray) and len(packed.expressions) == 1):
        return node
    point = packed.expressions[0]
    if not (isinstance(point, exp.Literal) and not point.is_string
            or isinstance(point, exp.Cast) and point.to.this.value in _NUMBERS | {"BIGINT", "INT"}):
        refuse("percentile_tdigest of a point that is not a number")
    return _filled(_PERCENTILE, dv=digest, p=point)


DIGESTS = (digest_udfs, tdigests)
"""The rules, in order, for dynamic_rules.BINDING (they bind the DuckDB SQL's column types: the
merge reads its digests' type before tdigests rewrites the SELECT that makes them)."""

"""The cases of tests/kql/cases that the clickhouse store refuses with a clear 400 ("... is not
supported on the clickhouse store"), never different rows; each with its reason.

Grouped by reason. They are the deeper KQL features whose DuckDB SQL no rule lowers yet; the hot
paths (filters, summarize, bin, percentiles, joins, top, search in a table, has/contains,
datetime literals, prev/next, range, union, make-series,
format_datetime, hash(), series_fill_*/series_fir/series_outliers, parse with named groups,
dynamic literals, array_length, bag_keys) pass, and so do mv-expand, mv-apply (with_itemindex too),
pack/bag_pack/pack_array, make_set of a dynamic, string or whole-number column, percentiles_array,
set_union/set_intersect/set_difference of literal arrays, make_bag, bag_merge/bag_remove_keys,
bag_unpack, project-rename, getschema and format_timespan of a time() literal (expansions.py,
dynamics.py, percentile_arrays.py, jsonlists.py, bags.py, entries.py, shapes.py, intervals.py).
test_kql_differential.py checks each refusal.
"""

from __future__ import annotations

_UDF = ("the kql_compute Python UDF where udfs.py cannot reproduce numpy's arithmetic exactly "
        "(series_stats' pairwise sums, series_decompose, tdigest merging, row_window_session)")

_LISTS = ("evaluate narrow: json_object over a typeof() of a COALESCE that neither sqlglot's typing nor "
          "the source binding types (the dead branches reach ClickHouse)")

REFUSED: dict[str, str] = {
    # series_stats/series_decompose*/tdigest/row_window_session: not lowered (see _UDF)
    "functions_depth:6": _UDF,
    "functions_depth:7": _UDF,
    "series:8": _UDF,
    "series:9": _UDF,
    "series:12": _UDF,
    "series:13": _UDF,
    "series:14": _UDF,
    "series:15": _UDF,
    "window:9": _UDF,
    "window:10": _UDF,
    "window:11": _UDF,
    # dynamic values built in the query: narrow's cells (see _LISTS)
    "operators:13": _LISTS,
    # timespan values (interval arithmetic, to_microseconds, totimespan, format_timespan): no rule yet
    "datetime:1": "timespan values (interval arithmetic, to_microseconds, totimespan, format_timespan)",
    "datetime:8": "timespan values (interval arithmetic, to_microseconds, totimespan, format_timespan)",
    "functions_depth:12": "timespan values (interval arithmetic, to_microseconds, totimespan, format_timespan)",
    # typeof() over a lambda value sqlglot cannot type: the dead branches reach ClickHouse
    "bridges:31": "typeof() over a lambda value sqlglot cannot type",
    "functions_depth:9": "typeof() over a lambda value sqlglot cannot type",
    # indexof with an occurrence: generate_series inside an expression
    "bridges:29": "indexof with an occurrence",
    # series_fir with a computed filter (here past its work limit: DuckDB answers a LimitError)
    "series:18": _UDF,
}

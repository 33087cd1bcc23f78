"""The cases of tests/kql/cases that the clickhouse store refuses with a clear 400 ("... is not
supported on the clickhouse store"), never different rows; each with its reason.

Grouped by reason. They are the deeper KQL features whose DuckDB SQL no rule lowers yet; the hot
paths (filters, summarize, bin, percentiles, joins, top, search in a table, has/contains,
datetime literals, prev/next, range, union, make-series,
format_datetime, hash(), series_fill_*/series_fir/series_outliers, parse with named groups,
dynamic literals, array_length, bag_keys) pass. test_kql_differential.py checks each refusal.
"""

from __future__ import annotations

_UDF = ("the kql_compute Python UDF where udfs.py cannot reproduce numpy's arithmetic exactly "
        "(series_stats' pairwise sums, series_decompose, tdigest merging, row_window_session)")

REFUSED: dict[str, str] = {
    # series_stats/series_decompose*/tdigest/row_window_session: not lowered (see _UDF)
    "functions_depth:6": _UDF,
    "functions_depth:7": _UDF,
    "series:15": _UDF,
    "window:9": _UDF,
    "window:10": _UDF,
    "window:11": _UDF,
    # dynamic values built in the query (DuckDB JSON/MAP/STRUCT values): no rule yet
    "aggregates:6": "dynamic values built in the query (DuckDB JSON/MAP/STRUCT values)",
    "functions_depth:3": "dynamic values built in the query (DuckDB JSON/MAP/STRUCT values)",
    "functions_depth:4": "dynamic values built in the query (DuckDB JSON/MAP/STRUCT values)",
    "functions_depth:5": "dynamic values built in the query (DuckDB JSON/MAP/STRUCT values)",
    "functions_depth:10": "dynamic values built in the query (DuckDB JSON/MAP/STRUCT values)",
    "functions_depth:11": "dynamic values built in the query (DuckDB JSON/MAP/STRUCT values)",
    "operators:13": "dynamic values built in the query (DuckDB JSON/MAP/STRUCT values)",
    # mv-expand/mv-apply/bag_unpack: DuckDB's JSON[] lists and lambdas over them (json_keys itself is lowered)
    "operators:4": "json_keys (bag_keys, bag_unpack, mv-expand of a bag)",
    "operators:5": "json_keys (bag_keys, bag_unpack, mv-expand of a bag)",
    "operators:6": "json_keys (bag_keys, bag_unpack, mv-expand of a bag)",
    "operators:7": "json_keys (bag_keys, bag_unpack, mv-expand of a bag)",
    "operators:9": "json_keys (bag_keys, bag_unpack, mv-expand of a bag)",
    "operators:10": "json_keys (bag_keys, bag_unpack, mv-expand of a bag)",
    "tabular:22": "json_keys (bag_keys, bag_unpack, mv-expand of a bag)",
    "tabular:23": "json_keys (bag_keys, bag_unpack, mv-expand of a bag)",
    # DuckDB-only syntax sqlglot passes through (struct literals, named arguments)
    "dynamic:5": "DuckDB-only syntax sqlglot passes through (struct literals, named arguments)",
    "tabular:5": "DuckDB-only syntax sqlglot passes through (struct literals, named arguments)",
    "tabular:29": "DuckDB-only syntax sqlglot passes through (struct literals, named arguments)",
}

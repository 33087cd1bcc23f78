"""The cases of tests/kql/cases that the clickhouse store refuses with a clear 400 ("... is not
supported on the clickhouse store"), never different rows; each with its reason.

Grouped by reason. They are the deeper KQL features whose DuckDB SQL no rule lowers yet; the hot
paths (filters, summarize, bin, percentiles, joins, top, search in a table, has/contains,
datetime literals, prev/next, range, union, make-series,
format_datetime, hash(), series_fill_*/series_fir/series_outliers, parse with named groups,
dynamic literals, array_length, bag_keys) pass, and so do timespan values (arithmetic,
to_microseconds, totimespan, format_timespan: timespans.py), indexof with an occurrence (lists.py),
extract with a typeof target (lets.py), series_stats(_dynamic) and series_decompose(_anomalies)
with a given period (udfs.py, decompose.py; reals to 1e-9, see test_kql_differential.py),
series_fir's work limit over a computed filter, mv-expand, mv-apply (with_itemindex too),
pack/bag_pack/pack_array, make_set of a dynamic, string or whole-number column, percentiles_array,
set_union/set_intersect/set_difference of literal arrays, make_bag, bag_merge/bag_remove_keys,
bag_unpack, project-rename, getschema and format_timespan of a time() literal (expansions.py,
dynamics.py, percentile_arrays.py, jsonlists.py, bags.py, entries.py, shapes.py, intervals.py),
row_window_session (sessions.py: the walk as an arrayFold, over at most 20,000 rows) and evaluate
narrow (retyping.py: nested typeof() folded).
test_kql_differential.py checks each refusal.
"""

from __future__ import annotations

_DIGEST = ("tdigest: the digest is a DuckDB JSON object of 1001 quantile_disc picks, merged and read "
           "by the kql_compute Python UDF (tdigest_merge, percentile_tdigest): not lowered yet")

REFUSED: dict[str, str] = {
    # the kql_compute Python UDF where no rule reproduces it (udfs.py, decompose.py lower the others)
    "functions_depth:6": _DIGEST,
    "functions_depth:7": _DIGEST,
    "series:15": ("series_decompose_anomalies with a detected period (series_math's FFT autocorrelation, "
                  "whose winning lag can tie to rounding), then mv-expand of the flags"),
}

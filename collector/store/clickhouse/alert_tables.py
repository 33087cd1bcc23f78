"""The tables of alerting and availability tests on ClickHouse, in control.py's shape (columns,
engine, engine arguments, the rest), registered in tables.py so they are created (and replicated on
a cluster) with every other store table. Why each is shaped so is alerts.py's and availability.py's
to say; this module only declares them (tables.py imports it).
"""

from __future__ import annotations

_TIME = "DateTime64(6, 'UTC')"
_WHEN = f"Nullable({_TIME})"

TABLES: dict[str, tuple[str, str, str, str]] = {
    # what users change, from any collector: the newest version wins, a delete is a row with is_deleted = 1
    "alert_rules": (
        f"service String, name String, spec String, generation String, muted_until {_WHEN}, created_at {_TIME}, "
        f"updated_at {_TIME}, version UInt64, is_deleted UInt8",
        "ReplacingMergeTree", "version, is_deleted", "ORDER BY (service, name)"),
    "alert_action_groups": (
        f"service String, name String, spec String, updated_at {_TIME}, version UInt64, is_deleted UInt8",
        "ReplacingMergeTree", "version, is_deleted", "ORDER BY (service, name)"),
    # what the evaluator writes, under the alerts lease
    "alert_evaluations": (  # the decided evaluations (the intent log): the first stamped per window wins
        f"service String, rule String, generation String, window_end {_TIME}, evaluation String CODEC(ZSTD(1)), "
        f"fence UInt64, inserted {_TIME} DEFAULT now64(6)",
        "MergeTree", "", "ORDER BY (service, rule, generation, window_end) TTL toDateTime(inserted) + INTERVAL 7 DAY"),
    "alert_progress": (
        f"service String, rule String, generation String, watermark {_WHEN}, evaluations UInt64, "
        f"last_error Nullable(String), last_error_at {_WHEN}, version UInt128",
        "ReplacingMergeTree", "version", "ORDER BY (service, rule, generation)"),
    "alert_instances": (
        f"service String, rule String, generation String, dims_key String, dimensions String, "
        f"state LowCardinality(String), alert_id Nullable(String), fired_at {_WHEN}, resolved_at {_WHEN}, "
        f"value Nullable(Float64), threshold Nullable(Float64), history String, clear_since {_WHEN}, "
        f"updated_at {_TIME}, version UInt64",
        "ReplacingMergeTree", "version", "ORDER BY (service, rule, generation, dims_key)"),
    "alert_values": (
        f"service String, rule String, generation String, dims_key String, window_end {_TIME}, "
        "value Nullable(Float64), lower Nullable(Float64), upper Nullable(Float64)",
        "ReplacingMergeTree", "", "ORDER BY (service, rule, generation, dims_key, window_end) "
        "TTL toDateTime(window_end) + INTERVAL 28 DAY"),
    "alert_deliveries": (
        f"key String, service String, rule String, alert_id String, condition LowCardinality(String), "
        f"receiver String, payload String CODEC(ZSTD(1)), status LowCardinality(String), attempts UInt32, "
        f"last_error Nullable(String), created_at {_TIME}, updated_at {_TIME}, next_attempt_at {_TIME}, "
        "version UInt128",
        "ReplacingMergeTree", "version", "ORDER BY (service, rule, key) TTL toDateTime(created_at) + INTERVAL 30 DAY"),
    # availability tests: definitions from any collector, each test's last run from the prober
    "availability_tests": (
        f"service String, name String, spec String, updated_at {_TIME}, version UInt64, is_deleted UInt8",
        "ReplacingMergeTree", "version, is_deleted", "ORDER BY (service, name)"),
    "availability_last_runs": (
        f"service String, name String, test_version UInt64, last_run {_TIME}",
        "ReplacingMergeTree", "last_run", "ORDER BY (service, name, test_version)"),
}

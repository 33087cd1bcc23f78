"""KQL on the ClickHouse store: the translator's DuckDB SQL lowered to ClickHouse SQL (lowering.py,
rules.py) and run through the store's clickhouse-connect client (execute.py)."""

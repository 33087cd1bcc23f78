"""The ClickHouse store: the same store boundary as the embedded DuckDB one, for teams that run
several collectors against one ClickHouse server or cluster (schema, migrations, copy from DuckDB,
the writer, retention)."""

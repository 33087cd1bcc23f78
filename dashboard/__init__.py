"""The Streamlit dashboard: Overview, Failures, Performance, Logs, Services and Console logs over
the collector's HTTP API (never the DuckDB file).

Start it with `dashboard.launcher.run_dashboard` (what `insights up` and `insights dashboard` call).
"""

"""Live metrics and the application map.

Live metrics are computed at ingestion: the collector hands each accepted batch to this
extension's intake (intake.py), which keeps per-second aggregates per role instance and samples in
memory (state.py) for the streaming routes (api.py), the wrappers' and QuickPulse SDKs' CPU and
memory included (quickpulse.py). On the ClickHouse store shared by N collectors, each publishes its
seconds and the one serving a stream merges the others' in (sharing.py). The application map
(appmap.py) is read from stored telemetry (the store's rollups, or the KQL engine), so it works on
any store.
"""

from live.extension import LiveExtension

__all__ = ["LiveExtension"]

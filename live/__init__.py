"""Live metrics and the application map.

Live metrics are computed at ingestion: the collector hands each accepted batch to this
extension's intake (intake.py), which keeps per-second aggregates per role instance and samples in
memory (state.py) for the streaming routes (api.py), the wrappers' and QuickPulse SDKs' CPU and
memory included (quickpulse.py). The application map (appmap.py) is read from stored telemetry
through the KQL engine, so it works on any store.
"""

from live.extension import LiveExtension

__all__ = ["LiveExtension"]

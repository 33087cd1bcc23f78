"""Continuous export: each service's telemetry as NDJSON blobs in a folder or Azure Blob Storage,
every item exactly once, even across crashes.

Stages, one module each: `settings` (what to export where, validated), `formats` (blob names and
NDJSON rows), `sinks` (folder, Azure Blob, memory), `checkpoints` (per service and record type, on
`_seq`, in DuckDB), `export` (one pass: plan -> write -> publish -> advance), `retention`,
`scheduler` (the background thread in the collector), `api` (HTTP), `extension` (how the collector
runs it) and `cli` (`insights export`).
The format and the guarantees are described in exporters/README.md.
"""

from exporters.extension import ExportExtension
from exporters.scheduler import ExportScheduler

__all__ = ["ExportExtension", "ExportScheduler"]

"""Continuous export: each service's telemetry as NDJSON blobs in a folder or Azure Blob Storage,
every item exactly once, even across crashes.

Stages, one module each: `settings` (what to export where, validated), `formats` (blob names),
`sinks` (folder, Azure Blob, memory), `export` (one pass: plan -> write -> publish -> advance),
`retention`,
`scheduler` (the background thread in the collector), `api` (HTTP), `extension` (how the collector
runs it) and `cli` (`insights export`).
What export keeps (settings, checkpoints per service and record type on `_seq`) and reads (ranges,
NDJSON rows) lives behind the store boundary, in collector/store/exports.py. The format and the
guarantees are described in exporters/README.md.
"""

from exporters.extension import ExportExtension
from exporters.scheduler import ExportScheduler

__all__ = ["ExportExtension", "ExportScheduler"]

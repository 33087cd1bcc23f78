"""The instrumented scoring wrapper: hosts an unmodified score.py (init/run) as azmlinfsrv does.

Processes: `supervisor` (binds the port, ships telemetry and console output to the collector) runs
`worker`s (uvicorn + `app`). Telemetry path, one stage per module: `capture` (items from requests,
prints, logging, `dependencies`, exceptions; built by `envelopes`) -> `telemetry_queue` (bounded, in
memory) -> `spool` (disk) -> `sender` (track protocol to the collector). Beside it, the supervisor's
`heartbeat` reports the wrapper's state and scoring URI and brings back the live switch (`switch`).
"""

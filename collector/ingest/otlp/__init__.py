"""OTLP/HTTP bodies turned into App Insights envelopes, the way Azure Monitor's exporter builds them.

A span must look the same whichever SDK sent it, so OTLP is not mapped to rows directly: each span,
span event, log record and metric point becomes the Breeze envelope that
azure-monitor-opentelemetry-exporter 1.0.0b58 would have sent for the same SDK object
(`export/trace/_exporter.py`, `export/logs/_exporter.py`, `export/metrics/_exporter.py`, `_utils.py`),
and then goes through the one envelope mapper (`envelope.py`) like everything else.

The rules are ported, not imported: the collector does not depend on the Azure exporter. Where the
exporter reads an SDK object this package reads the protobuf, after turning attributes into the Python
values the SDK would hold (arrays as tuples), so `str(value)` gives the same property strings.
`tests/ingest/test_otlp_mapping.py` runs both on the same SDK objects and compares them field by field.

Deliberate differences from the exporter (the first three are facts it takes from its own process):
- `ai.internal.sdkVersion` is `otlp:<telemetry.sdk.language>:<telemetry.sdk.version>`;
- `ai.device.id` is the resource's `device.id`, else `host.name`; no `ai.device.locale`;
  `ai.device.type` is "Other" as the exporter sends;
- without `k8s.pod.name`/`service.instance.id`, `ai.cloud.roleInstance` is `host.name` or absent
  (the exporter uses the hostname of the process it runs in);
- durations keep microseconds (`d.hh:mm:ss.ffffff`; the exporter rounds to milliseconds), and a span
  that ends before it starts gets 0 rather than a negative duration;
- exponential histograms and summaries carry their sum, count, min and max (the exporter sends 0);
- no `_OTELRESOURCE_` metric per trace batch (SDK self-telemetry);
- where the exporter would crash or send a non-string (an attribute of the wrong type under a
  semantic key), tags and string fields are rendered with `str()` and a non-numeric
  `_MS.sampleRate` is ignored: every OTLP body that decodes gives JSON-ready envelopes.
The exporter's own oddities are kept on purpose, so rows match: `type` "rpc.system" for RPC
spans. (Before 1.0.0b59 it also sent a target of "host:None" for `server.address` without
`server.port`; that was a bug, fixed there, and the target here is the bare host.)

The modules: `decode` (bodies to protobuf messages, export responses), `semconv` (what attributes
say, by the semantic conventions), `common` (what every envelope shares), then one per signal
(`traces`, `logs`, `metrics`). A module reaches another's names through it (`semconv.peer_target`);
underscored names are private to their module. Only the names below are the package's interface.
"""

from __future__ import annotations

from collector.ingest.otlp.decode import OtlpContentTypeError, OtlpDecodeError, decode_otlp, export_response
from collector.ingest.otlp.logs import logs_to_envelopes
from collector.ingest.otlp.metrics import metrics_to_envelopes
from collector.ingest.otlp.traces import traces_to_envelopes

__all__ = [
    "CONVERTERS",
    "OtlpContentTypeError",
    "OtlpDecodeError",
    "decode_otlp",
    "export_response",
    "logs_to_envelopes",
    "metrics_to_envelopes",
    "traces_to_envelopes",
]


CONVERTERS = {"traces": traces_to_envelopes, "logs": logs_to_envelopes, "metrics": metrics_to_envelopes}

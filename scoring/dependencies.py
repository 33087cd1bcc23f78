"""Outgoing calls from run() -> `dependencies`, through the OpenTelemetry instrumentations.

The request's trace context is made current in the thread that runs run() (a non-recording span
carrying the request's trace id and span id), so the instrumented clients (requests, httpx, and the
standard library's urllib and urllib3 used directly, through small wrappers here) start CLIENT spans
under it and send `traceparent` on; a span processor turns each ended CLIENT span into a RemoteDependencyData envelope
linked to the request. Nothing is exported anywhere else: no OTel exporter is configured.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags

from scoring import envelopes
from scoring.capture import Capture
from scoring.envelopes import Operation

log = logging.getLogger(__name__)

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class DependencyProcessor(SpanProcessor):
    def __init__(self, capture: Capture):
        self.capture = capture

    def on_end(self, span: ReadableSpan) -> None:
        if span.kind not in (SpanKind.CLIENT, SpanKind.PRODUCER) or span.start_time is None:
            return
        try:
            self.capture.line(self._envelope(span))
        except Exception:
            log.exception("could not record a dependency")

    def _envelope(self, span: ReadableSpan) -> bytes:
        attributes = span.attributes or {}
        method = attributes.get("http.request.method") or attributes.get("http.method")
        url = attributes.get("url.full") or attributes.get("http.url")
        status = attributes.get("http.response.status_code") or attributes.get("http.status_code")
        parts = urlsplit(str(url)) if url else None
        target = parts.netloc if parts else attributes.get("server.address")
        name = f"{method} {parts.path or '/'}" if method and parts else span.name
        failed = span.status.status_code == StatusCode.ERROR or (isinstance(status, int) and status >= 400)
        current = self.capture.operation
        operation = Operation(
            operation_id=f"{span.context.trace_id:032x}",
            parent_id=f"{span.parent.span_id:016x}" if span.parent else None,
            name=current.name if current else None,
            request_id=current.request_id if current else None,
        )
        return envelopes.dependency(
            self.capture.identity, operation,
            span_id=f"{span.context.span_id:016x}", name=name, data=str(url) if url else None, target=target,
            kind="HTTP" if method else "InProc", result_code=str(status if status is not None else 0),
            success=not failed, start_s=span.start_time / 1e9,
            duration_s=(span.end_time - span.start_time) / 1e9,
            properties=self.capture.identity.properties(current),
        )


def install(capture: Capture) -> None:
    """A tracer provider whose only processor records dependencies, and the client instrumentations."""
    provider = TracerProvider()
    provider.add_span_processor(DependencyProcessor(capture))
    trace.set_tracer_provider(provider)
    for module, name in (
        ("opentelemetry.instrumentation.requests", "RequestsInstrumentor"),
        ("opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor"),
    ):
        try:
            instrumentor = getattr(__import__(module, fromlist=[name]), name)
            instrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
        except Exception as error:  # a missing client library must not stop scoring
            log.debug("instrumentation %s unavailable: %s", name, error)
    _instrument_urllib(provider.get_tracer("scoring.urllib"))
    _instrument_urllib3(provider.get_tracer("scoring.urllib3"))


def _instrument_urllib(tracer) -> None:
    """urllib.request.urlopen and OpenerDirector.open -> a CLIENT span with traceparent injected."""
    import urllib.error
    import urllib.request

    from opentelemetry.propagate import inject

    original = urllib.request.OpenerDirector.open
    if getattr(original, "__insights__", False):
        return

    def open_(self, fullurl, data=None, timeout=None, *args, **kwargs):
        request = fullurl if isinstance(fullurl, urllib.request.Request) else urllib.request.Request(fullurl, data)
        method = request.get_method()
        url = request.full_url
        with tracer.start_as_current_span(method, kind=SpanKind.CLIENT,
                                          attributes={"http.request.method": method, "url.full": url}) as span:
            carrier: dict = {}
            inject(carrier)
            for key, value in carrier.items():
                request.add_unredirected_header(key.capitalize(), value)
            try:
                if timeout is None:
                    response = original(self, request, data, *args, **kwargs)
                else:
                    response = original(self, request, data, timeout, *args, **kwargs)
            except urllib.error.HTTPError as error:
                span.set_attribute("http.response.status_code", error.code)
                raise
            span.set_attribute("http.response.status_code", response.status)
            return response

    open_.__insights__ = True
    urllib.request.OpenerDirector.open = open_


def _instrument_urllib3(tracer) -> None:
    """urllib3's HTTPConnectionPool.urlopen (what PoolManager.request, urllib3.request and a pool's
    own request end in) -> a CLIENT span with traceparent injected.

    Ours rather than opentelemetry-instrumentation-urllib3, whose releases require an SDK other than
    the one we pin. requests sends through urllib3 too: its instrumentation marks the call with
    suppress_http_instrumentation, which we honour, so a requests call stays one dependency; retries
    and redirects urllib3 follows inside one urlopen are part of that call's span."""
    try:
        from urllib3.connectionpool import HTTPConnectionPool
    except ImportError:
        return
    from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled, suppress_http_instrumentation
    from opentelemetry.propagate import inject

    original = HTTPConnectionPool.urlopen
    if getattr(original, "__insights__", False):
        return

    def urlopen(self, method, url, body=None, headers=None, *args, **kwargs):
        if not is_http_instrumentation_enabled():
            return original(self, method, url, body, headers, *args, **kwargs)
        full_url = url if "://" in url else f"{self.scheme}://{_host_port(self)}{url if url.startswith('/') else '/' + url}"
        with tracer.start_as_current_span(method, kind=SpanKind.CLIENT,
                                          attributes={"http.request.method": method, "url.full": full_url}) as span:
            merged = dict(headers if headers is not None else self.headers)
            inject(merged)
            with suppress_http_instrumentation():
                response = original(self, method, url, body, merged, *args, **kwargs)
            span.set_attribute("http.response.status_code", response.status)
            return response

    urlopen.__insights__ = True
    HTTPConnectionPool.urlopen = urlopen


def _host_port(pool) -> str:
    host = f"[{pool.host}]" if ":" in pool.host else pool.host
    default = 443 if pool.scheme == "https" else 80
    return host if pool.port in (None, default) else f"{host}:{pool.port}"


@contextmanager
def current(operation_id: str, span_id: str):
    """Make the request's span the current OTel context in this thread."""
    span_context = SpanContext(int(operation_id, 16), int(span_id, 16), is_remote=False, trace_flags=_SAMPLED)
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(span_context)))
    try:
        yield
    finally:
        otel_context.detach(token)

"""OpenTelemetry tracing, with the GenAI semantic conventions, on only when an OTLP endpoint is set.

With `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, `setup` installs
the SDK with a batching OTLP/HTTP exporter; the SDK reads the other `OTEL_*` variables itself
(service name, headers, batch delay). Without it nothing is set up, and callers test `ENABLED`
before any span work, so that tracing off costs one module-level flag per call site.

Spans: one per HTTP request or WebSocket connection (`Traced`, honouring W3C `traceparent`),
one per response turn, one per model call and one per server tool call (made in core).
Message content is recorded only when `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ENABLED = bool(
    os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
)
CAPTURE_CONTENT = (
    os.environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "").lower() == "true"
)

Attributes = Mapping[str, str | int | float | bool | list[str]]

_tracer: trace.Tracer = trace.NoOpTracer()


def setup() -> None:
    """Install the SDK and its OTLP/HTTP exporter, once, when tracing is on."""
    global _tracer
    if not ENABLED or not isinstance(_tracer, trace.NoOpTracer):
        return
    # Imported here: with tracing off the SDK and the exporter are never loaded.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Our name only where OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES give none: given to
    # Resource.create, it would override theirs.
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "openresponses"}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _tracer = trace.get_tracer("openresponses")


def shutdown() -> None:
    """Export what is still batched before the process ends."""
    provider = trace.get_tracer_provider()
    stop = getattr(provider, "shutdown", None)
    if ENABLED and stop is not None:
        stop()


def start(name: str, parent: Span | None, attributes: Attributes) -> Span:
    """A span under `parent`, or under the current span when there is none."""
    context = trace.set_span_in_context(parent) if parent is not None else None
    return _tracer.start_span(name, context=context, attributes=attributes)


def end(span: Span, error: str | None = None) -> None:
    """End `span`; `error` (a short error class, per the conventions' `error.type`) marks
    it failed."""
    if error is not None:
        span.set_attribute("error.type", error)
        span.set_status(Status(StatusCode.ERROR))
    span.end()


@contextmanager
def serving(name: str, headers: Mapping[str, str], attributes: Attributes) -> Iterator[Span]:
    """A server span, current within: the child of the client's `traceparent`, if sent."""
    parent = propagate.extract(headers)
    span = _tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
    with trace.use_span(span, end_on_exit=True):
        yield span


class Traced:
    """ASGI middleware: a server span per HTTP request, current while it is served. A
    WebSocket connection gets one per turn instead (see api.websocket)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        attributes = {
            "http.request.method": scope["method"],
            "url.path": scope["path"],
            "url.scheme": scope["scheme"],
        }
        with serving(f"{scope['method']} {scope['path']}", headers, attributes) as span:

            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_attribute("error.type", str(status))
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, sending)

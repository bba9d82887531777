"""Traces across the services (OpenTelemetry): one trace per referral, when configured.

The trace context travels in the events themselves, as the CloudEvents distributed-tracing
extension (`traceparent`, `tracestate`; `schemas.envelope.new_event` sets them from the
current span). So one referral's work is one trace:

- intake's HTTP routes open a server span, continuing a W3C `traceparent` header if the
  caller sent one (`http_server`);
- an event made inside a span carries that span's context, staged with it in the outbox;
- the outbox relay's publish of an event is a span in the event's trace (`publishing`);
- a consumer's handling of an event is a span whose parent is the event's traceparent
  (`consuming`), and the events its handler makes continue from it.

Off (no `otlp_endpoint`, the default) no span is opened at all, so no event gets a trace
context: an event with a `traceparent` is refused by a consumer of a release before it
(`Envelope` forbids unknown fields), and this is what lets old and new run side by side until
every consumer reads it (infra/CLUSTER.md, "Rolling upgrades"). Not even the API's
no-op tracer is used: it hands back a remote parent as the current span, which would pass a
caller's header on into events.
Off, neither the SDK nor the exporter is imported (every process's idle memory counts).

On, each service exports by OTLP over HTTP (protobuf) through a batch processor, flushed when
the service stops. The provider stays this module's, never the global one: FastAPI traces an
app by itself once a global provider is set, with `url.path` and `url.query`, which hold
one-time link tokens on the gateway and the web app. Attributes follow the semantic
conventions and carry ids and subjects only, never personal data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from schemas.envelope import EVENT_TYPE, W3C, Envelope, is_id

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from starlette.requests import Request
    from starlette.responses import Response

TRACES_PATH = "/v1/traces"
"""Where an OTLP/HTTP receiver takes spans, under the endpoint's base URL."""
NAMESPACE = "wegweiser"
_TYPE = re.compile(EVENT_TYPE)
UNTRACED_PATHS = frozenset({"/health"})
"""Probes, asked every few seconds: a trace each would bury the referrals'."""


class Tracing:
    """A process's tracing: off until `start`ed with an endpoint; hand it to what opens spans."""

    def __init__(self) -> None:
        self._provider: TracerProvider | None = None
        self.tracer: Tracer | None = None
        """The tracer spans are made with; None while off."""

    @classmethod
    def with_tracer(cls, tracer: Tracer) -> Tracing:
        """Tracing into a tracer made elsewhere (tests, with an in-memory exporter)."""
        tracing = cls()
        tracing.tracer = tracer
        return tracing

    @property
    def on(self) -> bool:
        return self.tracer is not None

    def start(self, endpoint: str | None, service: str) -> None:
        """Export this process's spans to `endpoint` (an OTLP/HTTP base URL) as `service`;
        nothing, and nothing imported, without an endpoint."""
        if endpoint is None or self.on:
            return
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({"service.name": service, "service.namespace": NAMESPACE})
        provider = TracerProvider(resource=resource)
        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + TRACES_PATH)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        self._provider = provider
        self.tracer = provider.get_tracer("wegweiser")

    def shutdown(self) -> None:
        """Export what is left and stop (when the service stops)."""
        if self._provider is not None:
            self._provider.shutdown()
            self._provider, self.tracer = None, None

    @contextmanager
    def consuming(
        self, subject: str, consumer: str, carried: Callable[[], Carried]
    ) -> Iterator[Span | None]:
        """A consumer's handling of one event, as the current span, in the trace the event
        carries (`carried` is asked only while tracing is on); a new trace if it carries
        none. None while off."""
        if self.tracer is None:
            yield None
            return
        event = carried()
        attributes = _messaging("process", subject, event)
        attributes["messaging.consumer.group.name"] = consumer
        with self.tracer.start_as_current_span(
            f"process {subject}",
            context=_parent(event.headers),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        ) as span:
            yield span

    def publishing(self, subject: str, body: bytes) -> Span | None:
        """The relay's publish of a staged event, begun: a span in the event's trace, for
        `published` to end; None while off or for an event that carries no trace."""
        if self.tracer is None:
            return None
        event = carried_by(body)
        if not event.headers:
            return None
        return self.tracer.start_span(
            f"publish {subject}",
            context=_parent(event.headers),
            kind=SpanKind.PRODUCER,
            attributes=_messaging("publish", subject, event),
        )

    async def http_server(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """HTTP middleware: each request (but probes) as a server span named by its route,
        continuing the caller's W3C `traceparent` header if it sent one."""
        if self.tracer is None or request.url.path in UNTRACED_PATHS:
            return await call_next(request)
        with self.tracer.start_as_current_span(
            request.method,
            context=_parent(request.headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "url.scheme": request.url.scheme},
        ) as span:
            response = await call_next(request)
            route = getattr(request.scope.get("route"), "path", None)
            if route is not None:
                span.update_name(f"{request.method} {route}")
                span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_attribute("error.type", str(response.status_code))
                span.set_status(StatusCode.ERROR)
            return response


def published(span: Span | None, error: str | None = None) -> None:
    """End a publish span: acknowledged by the stream, or not (`error`)."""
    if span is None:
        return
    if error is not None:
        span.set_attribute("error.type", error)
        span.set_status(Status(StatusCode.ERROR, error))
    span.end()


@dataclass(frozen=True)
class Carried:
    """What a span needs of an event: its trace context (W3C headers), its id and its type."""

    headers: Mapping[str, str]
    event_id: str | None = None
    event_type: str | None = None

    @classmethod
    def of(cls, event: Envelope[Any]) -> Carried:
        """What a decoded event carries."""
        return cls(event.trace_context, event.id, event.type)


def carried_by(body: bytes) -> Carried:
    """What an event's body carries, read without validating it as an event (a span still
    shows a message no handler could take): the propagator ignores a malformed traceparent,
    and an id or type not of the closed forms is left out, so that no sender writes into a
    span's attributes what they please."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return Carried({})
    if not isinstance(decoded, dict):
        return Carried({})
    headers = {
        name: value
        for name in ("traceparent", "tracestate")
        if isinstance(value := decoded.get(name), str)
    }
    event_id, event_type = decoded.get("id"), decoded.get("type")
    return Carried(
        headers,
        event_id if isinstance(event_id, str) and is_id(event_id) else None,
        event_type if isinstance(event_type, str) and _TYPE.match(event_type) else None,
    )


def _parent(carrier: Mapping[str, str]) -> Any:
    """The context a W3C carrier names: an empty one (a new trace) if it names none."""
    assert W3C is not None  # Wegweiser depends on OpenTelemetry's API
    return W3C.extract(carrier)


def _messaging(operation: str, subject: str, event: Carried) -> dict[str, Any]:
    """The messaging semantic conventions' attributes of one event on NATS."""
    attributes: dict[str, Any] = {
        "messaging.system": "nats",
        "messaging.operation.name": operation,
        "messaging.operation.type": "send" if operation == "publish" else operation,
        "messaging.destination.name": subject,
    }
    if event.event_id is not None:
        attributes["messaging.message.id"] = event.event_id
        attributes["cloudevents.event_id"] = event.event_id
    if event.event_type is not None:
        attributes["cloudevents.event_type"] = event.event_type
    return attributes

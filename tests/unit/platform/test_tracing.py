"""A referral's trace travels in its events (CloudEvents distributed-tracing extension): an
event made in a span carries it, a consumer continues it, events without one still read, a
malformed one is refused with a precise reason; off, nothing is traced and no event carries
a trace context (wegweiser/platform/tracing.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import ValidationError

from schemas import upcasting
from schemas.envelope import Envelope, new_event
from schemas.events import AgencyCapacityUpdated
from services.intake.http import create_app
from wegweiser.platform.consumer import describe
from wegweiser.platform.tracing import Carried, Tracing, carried_by, published
from wegweiser.settings import Settings

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"


def capacity() -> AgencyCapacityUpdated:
    return AgencyCapacityUpdated(
        agency_id="lup-mbe-ludwigslust",
        capacity=3,
        waiting_days=5,
        reported_at=datetime(2026, 12, 5, tzinfo=UTC),
    )


def an_event(**fields: Any) -> Envelope[AgencyCapacityUpdated]:
    return new_event(
        capacity(), source="/wegweiser/agency/lup-mbe-ludwigslust", subject="s", **fields
    )


class Traced:
    """Tracing into an in-memory exporter, and what it exported."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracing = Tracing.with_tracer(provider.get_tracer("test"))
        self.provider = provider

    @property
    def tracer(self) -> Any:
        return self.tracing.tracer

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


@pytest.fixture
def traced() -> Iterator[Traced]:
    found = Traced()
    yield found
    found.provider.shutdown()


def ids(traceparent: str | None) -> tuple[str, str]:
    assert traceparent is not None
    _, trace_id, span_id, _ = traceparent.split("-")
    return trace_id, span_id


def test_an_event_made_in_a_span_carries_it_and_its_consumer_continues_that_trace(traced):
    with traced.tracer.start_as_current_span("POST /requests") as sending:
        sent = an_event()
    context = sending.get_span_context()
    assert ids(sent.traceparent) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    arrived = upcasting.read(sent.model_dump_json(), AgencyCapacityUpdated)  # over the wire
    with traced.tracing.consuming(
        "ww.agency.lup-mbe-ludwigslust.capacity",
        "directory-agency-facts",
        lambda: Carried.of(arrived),
    ) as span:
        caused = an_event(causation=arrived)
    assert span is not None
    process = next(s for s in traced.spans() if s.name.startswith("process"))
    assert process.parent is not None and process.parent.span_id == context.span_id
    assert process.context.trace_id == context.trace_id and process.kind is SpanKind.CONSUMER
    assert ids(caused.traceparent) == (
        f"{context.trace_id:032x}",
        f"{process.context.span_id:016x}",
    )
    assert process.attributes == {
        "messaging.system": "nats",
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
        "messaging.destination.name": "ww.agency.lup-mbe-ludwigslust.capacity",
        "messaging.consumer.group.name": "directory-agency-facts",
        "messaging.message.id": sent.id,
        "cloudevents.event_id": sent.id,
        "cloudevents.event_type": "de.wegweiser.agency.capacity-updated.v1",
    }


def test_the_caller_s_tracestate_travels_with_the_traceparent(traced):
    parent = TraceContextTextMapPropagator().extract(
        {"traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE,rojo=00f0"}
    )
    with traced.tracer.start_as_current_span("work", context=parent):
        event = an_event()
    assert ids(event.traceparent)[0] == TRACE and ids(event.traceparent)[1] != PARENT
    assert event.tracestate == "congo=t61rcWkgMzE,rojo=00f0"
    assert Carried.of(event).headers == {
        "traceparent": event.traceparent,
        "tracestate": "congo=t61rcWkgMzE,rojo=00f0",
    }


def test_an_event_made_outside_any_span_carries_no_trace_context():
    event = an_event()
    assert event.traceparent is None and event.tracestate is None
    assert "traceparent" not in event.model_dump(exclude_none=True)


def test_an_event_of_a_producer_before_tracing_is_read_and_its_handling_starts_a_trace(traced):
    old = json.loads(an_event().model_dump_json())
    assert "traceparent" not in old and "tracestate" not in old  # absent, not null

    event = upcasting.read(json.dumps(old), AgencyCapacityUpdated)
    assert event.traceparent is None and Carried.of(event).headers == {}
    with traced.tracing.consuming("ww.agency.x.capacity", "c", lambda: Carried.of(event)):
        pass
    (span,) = traced.spans()
    assert span.parent is None  # a trace of its own, not whatever was current


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("traceparent", TRACEPARENT.upper(), "traceparent: String should match pattern"),
        ("traceparent", f"00-{TRACE}-{PARENT}", "traceparent: String should match pattern"),
        ("traceparent", f"00-{TRACE}-{PARENT}-1", "traceparent: String should match pattern"),
        ("traceparent", f"00-{'0' * 32}-{PARENT}-01", "its trace-id or parent-id is all zeros"),
        ("traceparent", f"00-{TRACE}-{'0' * 16}-01", "its trace-id or parent-id is all zeros"),
        ("traceparent", f"ff-{TRACE}-{PARENT}-01", "traceparent version ff is invalid"),
        ("traceparent", f"00-{TRACE}-{PARENT}-01-more", "version 00 traceparent has exactly four"),
        ("tracestate", "Congo=t61rcWkgMzE", "tracestate: String should match pattern"),
        ("tracestate", "congo=", "tracestate: String should match pattern"),
    ],
)
def test_a_malformed_trace_context_is_refused_with_a_precise_reason(field, value, reason):
    event = json.loads(an_event().model_dump_json())
    event["traceparent"] = TRACEPARENT
    event[field] = value
    with pytest.raises(ValidationError) as refused:
        upcasting.read(json.dumps(event), AgencyCapacityUpdated)
    assert reason in describe(refused.value)  # the dead letter's reason


def test_a_tracestate_needs_a_traceparent_and_a_later_version_may_add_fields():
    event = json.loads(an_event().model_dump_json())
    event["tracestate"] = "congo=t61rcWkgMzE"
    with pytest.raises(ValidationError, match="tracestate without a traceparent"):
        upcasting.read(json.dumps(event), AgencyCapacityUpdated)
    event["traceparent"] = f"01-{TRACE}-{PARENT}-01-what-comes-later"
    assert upcasting.read(json.dumps(event), AgencyCapacityUpdated).traceparent


def test_the_relay_s_publish_is_a_span_in_the_trace_of_the_event_it_publishes(traced):
    with traced.tracer.start_as_current_span("made"):
        event = an_event()
    made = next(s for s in traced.spans() if s.name == "made")
    span = traced.tracing.publishing("ww.agency.x.capacity", event.model_dump_json().encode())
    published(span)
    failed = traced.tracing.publishing("ww.agency.x.capacity", event.model_dump_json().encode())
    published(failed, "not acknowledged")
    ok, lost = [s for s in traced.spans() if s.name == "publish ww.agency.x.capacity"]
    assert ok.parent is not None and ok.parent.span_id == made.context.span_id
    assert ok.kind is SpanKind.PRODUCER and ok.attributes["messaging.message.id"] == event.id
    assert ok.status.status_code is StatusCode.UNSET
    assert lost.status.status_code is StatusCode.ERROR
    untraced = an_event().model_dump_json().encode()
    assert traced.tracing.publishing("ww.agency.x.capacity", untraced) is None
    assert traced.tracing.publishing("ww.agency.x.capacity", b"not json") is None


def test_what_a_sender_writes_outside_the_closed_forms_never_becomes_an_attribute():
    body = json.dumps(
        {"id": "Zora Canary, 12.3.1990", "type": "Zora Canary", "traceparent": TRACEPARENT}
    ).encode()
    assert carried_by(body) == Carried({"traceparent": TRACEPARENT})
    assert carried_by(b"[1, 2]") == Carried({}) and carried_by(b"\xff") == Carried({})


def test_off_no_span_is_opened_and_no_event_gets_a_trace_context():
    off = Tracing()

    def never() -> Carried:
        raise AssertionError("the event is not even read for its trace while off")

    with off.consuming("ww.agency.x.capacity", "c", never) as span:
        assert span is None
        assert an_event().traceparent is None
    traced_body = json.dumps({"traceparent": TRACEPARENT}).encode()
    assert off.publishing("ww.agency.x.capacity", traced_body) is None


def app_making_an_event(tracing: Tracing) -> FastAPI:
    app = FastAPI()
    app.middleware("http")(tracing.http_server)

    @app.post("/requests/{request_id}/referrals")
    async def send(request_id: str) -> dict[str, str | None]:
        return {"request_id": request_id, "traceparent": an_event().traceparent}

    return app


async def post(app: FastAPI, path: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
        return await http.post(path, headers=headers)


async def test_a_request_is_a_server_span_continuing_the_caller_s_traceparent(traced):
    answer = await post(
        app_making_an_event(traced.tracing), "/requests/r-1/referrals", {"traceparent": TRACEPARENT}
    )
    (span,) = traced.spans()
    assert span.name == "POST /requests/{request_id}/referrals" and span.kind is SpanKind.SERVER
    assert span.parent is not None and f"{span.parent.span_id:016x}" == PARENT
    assert ids(answer.json()["traceparent"]) == (TRACE, f"{span.context.span_id:016x}")
    assert span.attributes["http.route"] == "/requests/{request_id}/referrals"
    assert "r-1" not in json.dumps(dict(span.attributes))  # the route, not the path


async def test_off_a_caller_s_traceparent_goes_no_further():
    answer = await post(
        app_making_an_event(Tracing()), "/requests/r-1/referrals", {"traceparent": TRACEPARENT}
    )
    assert answer.json() == {"request_id": "r-1", "traceparent": None}


async def test_intake_traces_its_routes_but_not_its_probe(traced):
    app = create_app(["intake"], tracing=traced.tracing)  # not started: every route says 503
    refused = await post(app, "/requests", {"traceparent": TRACEPARENT})
    assert refused.status_code == 503
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
        await http.get("/health")
    (span,) = traced.spans()
    assert span.name == "POST /requests" and f"{span.parent.span_id:016x}" == PARENT
    assert span.attributes["http.response.status_code"] == 503
    assert span.status.status_code is StatusCode.ERROR


def test_the_endpoint_must_be_an_http_url():
    assert Settings(otlp_endpoint="http://127.0.0.1:4318").otlp_endpoint
    for wrong in ("127.0.0.1:4318", "grpc://collector:4317", "http://collector:4318?x=1"):
        with pytest.raises(ValidationError, match="otlp_endpoint"):
            Settings(otlp_endpoint=wrong)


IDLE = """
import importlib, sys
from wegweiser import registry
for service in registry.SERVICES:
    importlib.import_module(service.bootstrap)
from wegweiser.platform.tracing import Tracing
tracing = Tracing()
tracing.start(None, "intake")
sdk = ("opentelemetry.sdk", "opentelemetry.exporter")
loaded = sorted(m for m in sys.modules if m.startswith(sdk))
assert not loaded and not tracing.on, loaded
tracing.start("http://127.0.0.1:9", "intake")
assert tracing.on and "opentelemetry.exporter.otlp.proto.http.trace_exporter" in sys.modules
tracing.shutdown()
"""


def test_off_neither_the_sdk_nor_the_exporter_is_imported():
    done = subprocess.run([sys.executable, "-c", IDLE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


WITHOUT_OPENTELEMETRY = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "opentelemetry":
            raise ImportError(name)
sys.meta_path.insert(0, Block())
import json
from datetime import UTC, datetime
from schemas.envelope import Envelope, new_event
from schemas.events import AgencyCapacityUpdated
import services.agency.client
now = datetime.now(UTC)
data = AgencyCapacityUpdated(agency_id="a", capacity=1, waiting_days=1, reported_at=now)
event = new_event(data, source="/wegweiser/agency/a", subject="a")
assert event.traceparent is None
traced = {**json.loads(event.model_dump_json()), "traceparent": "%s"}
assert Envelope[AgencyCapacityUpdated].model_validate(traced).traceparent
"""


def test_the_agency_sdk_works_without_opentelemetry_and_reads_traced_events():
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_OPENTELEMETRY % TRACEPARENT],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr

"""One referral is one trace (issue 22, part 3): the real services export their spans by OTLP
to a receiver this test runs, and the spans of the office's calls, the outboxes, each consumer
and the agency's receipt hang together in one tree."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from schemas import subjects
from schemas.envelope import W3C, new_event
from schemas.events import AgencyAnswer
from schemas.vocabulary import AgencyAction
from services.agency import AgencyClient
from tests.support.system import AGENCY, office_auth, request_body, start_system, stream_events
from wegweiser.platform import grants
from wegweiser.platform.connect import connect
from wegweiser.platform.grants import JS_API_PREFIX
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.tracing import TRACES_PATH
from wegweiser.supervisor import LocalSystem

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Received:
    """One span as the receiver decoded it."""

    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


class Receiver:
    """An OTLP/HTTP trace receiver, as a collector is: it decodes each export
    (`ExportTraceServiceRequest`, protobuf, gzip or not) and keeps the spans."""

    def __init__(self) -> None:
        self.spans: list[Received] = []
        self.refused: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.spans)

    def _take(self, request: ExportTraceServiceRequest) -> None:
        found = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append(
                        Received(
                            service=str(resource.get("service.name")),
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes=_attributes(span.attributes),
                        )
                    )
        with self._lock:
            self.spans += found

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != TRACES_PATH or not self.headers.get("Content-Type", "").startswith(
                    "application/x-protobuf"
                ):
                    receiver.refused.append(f"{self.path} {self.headers.get('Content-Type')}")
                    self.send_error(404)
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver._take(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                pass

        return Handler


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


def _provider(receiver: Receiver, service: str) -> TracerProvider:
    """The test's own side of the trace (the office's software, the agency's), exported to
    the same receiver as the services'."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=receiver.url + TRACES_PATH)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Receiver, LocalSystem]]:
    """The whole system, exporting its spans to a receiver of the test's own."""
    with Receiver() as receiver:
        system = start_system(
            tmp_path_factory.mktemp("traced"),
            WEGWEISER_OTLP_ENDPOINT=receiver.url,
            OTEL_BSP_SCHEDULE_DELAY="100",  # export every 0.1 s, not every 5 s
        )
        try:
            yield receiver, system
        finally:
            system.stop()


async def until_found(
    receiver: Receiver, trace_id: str, wanted: dict[str, tuple[str, str, str | None]]
) -> dict[str, Received]:
    """The spans of the trace named by `wanted` (service, name, message id or None), once
    the receiver has them all; the services export every 0.1 s, so 30 s is plenty."""
    found: dict[str, Received] = {}
    for _ in range(300):
        spans = [s for s in receiver.snapshot() if s.trace_id == trace_id]
        found = {}
        for key, (service, name, message) in wanted.items():
            for s in spans:
                message_id = s.attributes.get("messaging.message.id")
                if (s.service, s.name) == (service, name) and message in (None, message_id):
                    found[key] = s
        if len(found) == len(wanted):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"never exported: {set(wanted) - set(found)}; {receiver.refused}")


async def whole_trace(receiver: Receiver, trace_id: str, within: float = 10.0) -> list[Received]:
    """The trace's spans once each one's parent is among them (a child ends, and is exported,
    before its parent; a span of the trace beyond those `until_found` waited for may still be
    on its way), or as they are after `within` seconds, for the assertions to name the gap."""
    spans: list[Received] = []
    for _ in range(int(within / 0.1)):
        spans = [s for s in receiver.snapshot() if s.trace_id == trace_id]
        ids = {s.span_id for s in spans}
        if all(not s.parent_id or s.parent_id in ids for s in spans):
            break
        await asyncio.sleep(0.1)
    return spans


async def _refer(
    system: LocalSystem, office: TracerProvider, body: dict[str, Any], agency: str
) -> tuple[str, str]:
    """The office's software records the request and refers it to `agency` inside a span of
    its own, passing the trace on to intake; the trace's id and the referral's."""
    async with httpx.AsyncClient(
        base_url=system.settings.intake_url, auth=office_auth(system)
    ) as http:
        with office.get_tracer("test").start_as_current_span("refer a person") as root:
            headers: dict[str, str] = {}
            assert W3C is not None
            W3C.inject(headers)
            recorded = await http.post("/requests", json=body, headers=headers)
            assert recorded.status_code == 201, recorded.text
            sent = await http.post(
                f"/requests/{recorded.json()['request_id']}/referrals",
                json={"agency_id": agency},
                headers=headers,
            )
            assert sent.status_code == 202, sent.text
    return format(root.get_span_context().trace_id, "032x"), str(sent.json()["referral_id"])


async def test_the_spans_of_one_referral_share_one_trace_and_form_a_tree(
    traced: tuple[Receiver, LocalSystem],
) -> None:
    receiver, system = traced
    office, agency_side = _provider(receiver, "test-office"), _provider(receiver, "test-agency")
    try:
        body = request_body(client_name="Zora Canary-7391")
        trace_id, referral_id = await _refer(system, office, body, AGENCY)
        keys = KeyRing(system.settings.keys_path)
        async with await AgencyClient.connect(
            system.nats_url,
            AGENCY,
            keys.agency_private(AGENCY),
            keys.office_public(),
            system.agency_seed(AGENCY),
            office_keys=keys.office_sealing_public(),
            tracer_provider=agency_side,
        ) as agency:

            async def offer() -> Any:
                async for delivery in agency.deliveries():
                    await delivery.ack()
                    if (
                        delivery.kind == "offered"
                        and delivery.event.data.referral_id == referral_id
                    ):
                        return delivery

            received = await asyncio.wait_for(offer(), 30)
        assert received.case is not None and received.error is None  # unsealed on receipt

        (offered,) = [
            e
            for e in await stream_events(system, f"ww.referral.{AGENCY}.offered")
            if e["data"]["referral_id"] == referral_id
        ]
        (requested,) = [
            e
            for e in await stream_events(system, "ww.intake.referral.requested")
            if e["data"]["referral_id"] == referral_id
        ]
        assert offered["traceparent"].split("-")[1] == trace_id == requested["traceparent"][3:35]

        wanted = {
            "office": ("test-office", "refer a person", None),
            "record": ("intake", "POST /requests", None),
            "send": ("intake", "POST /requests/{request_id}/referrals", None),
            "publish requested": (
                "intake",
                "publish ww.intake.referral.requested",
                requested["id"],
            ),
            "referral takes it": (
                "referral",
                "process ww.intake.referral.requested",
                requested["id"],
            ),
            "publish offered": ("referral", f"publish ww.referral.{AGENCY}.offered", offered["id"]),
            "intake projects it": (
                "intake",
                f"process ww.referral.{AGENCY}.offered",
                offered["id"],
            ),
            "audit records it": ("audit", f"process ww.referral.{AGENCY}.offered", offered["id"]),
            "agency receives it": ("test-agency", f"receive ww.referral.{AGENCY}.offered", None),
        }
        span = await until_found(receiver, trace_id, wanted)
        everything = await whole_trace(receiver, trace_id)
        by_id = {s.span_id: s for s in everything}
        assert len(by_id) == len(everything)  # every span once
        roots = [s for s in everything if s.parent_id not in by_id]
        assert roots == [span["office"]] and span["office"].parent_id == ""
        for s in everything:  # each span reaches the root through its parents: a tree
            seen, at = set(), s
            while at.parent_id:
                assert at.span_id not in seen, f"a cycle through {at.name}"
                seen.add(at.span_id)
                at = by_id[at.parent_id]
            assert at is span["office"]

        def parent(key: str) -> Received:
            return by_id[span[key].parent_id]

        assert parent("record") == parent("send") == span["office"]
        assert parent("publish requested") == span["send"]
        assert parent("referral takes it") == span["send"]  # the event's own traceparent
        assert parent("publish offered") == span["referral takes it"]
        assert parent("intake projects it") == span["referral takes it"]
        assert parent("audit records it") == span["referral takes it"]
        assert parent("agency receives it") == span["referral takes it"]
        kinds = {k: s.kind for k, s in span.items()}
        assert kinds["record"] == kinds["send"] == SpanProto.SPAN_KIND_SERVER
        assert (
            kinds["publish requested"] == kinds["publish offered"] == SpanProto.SPAN_KIND_PRODUCER
        )
        assert (
            kinds["referral takes it"]
            == kinds["agency receives it"]
            == SpanProto.SPAN_KIND_CONSUMER
        )
        consumer = span["referral takes it"].attributes
        assert consumer["messaging.system"] == "nats"
        assert consumer["messaging.destination.name"] == "ww.intake.referral.requested"
        assert consumer["messaging.consumer.group.name"] == "referral-intake-commands"
        assert span["audit records it"].attributes["messaging.consumer.group.name"] == "audit-all"
        assert span["send"].attributes["http.response.status_code"] == 202

        exported = json.dumps([s.attributes for s in receiver.snapshot()])
        assert "Canary-7391" not in exported and body["client_reference"] not in exported
    finally:
        office.shutdown()
        agency_side.shutdown()


async def test_an_event_no_handler_can_take_is_dead_lettered_in_the_trace_it_carries(
    traced: tuple[Receiver, LocalSystem],
) -> None:
    """An agency's answer that is no AgencyAnswer (its referral id is not an id) is parked
    by the referral service; the handling and the letter are in the agency's trace."""
    receiver, system = traced
    agency_side = _provider(receiver, "test-agency")
    try:
        with agency_side.get_tracer("test").start_as_current_span("answer") as answering:
            answer = json.loads(
                new_event(
                    AgencyAnswer(
                        referral_id=str(uuid.uuid4()), agency_id=AGENCY, action=AgencyAction.ACCEPT
                    ),
                    source=f"/wegweiser/agency/{AGENCY}",
                    subject=AGENCY,
                ).model_dump_json()
            )
        answer["data"]["referral_id"] = "not an id"
        raw = await connect(
            system.nats_url, "raw", system.agency_seed(AGENCY), grants.inbox_prefix(AGENCY)
        )
        try:
            await raw.jetstream(prefix=JS_API_PREFIX).publish(
                subjects.answer(AGENCY, "accept"), json.dumps(answer).encode()
            )
        finally:
            await raw.close()
        trace_id = format(answering.get_span_context().trace_id, "032x")
        span = await until_found(
            receiver,
            trace_id,
            {"parked": ("referral", f"process ww.answer.{AGENCY}.accept", answer["id"])},
        )
        assert span["parked"].parent_id == format(answering.get_span_context().span_id, "016x")
        (letter,) = [
            e
            for e in await stream_events(system, "ww.deadletter.referral")
            if answer["id"] in e["data"]["payload"]
        ]
        assert "referral_id" in letter["data"]["reason"]
        assert letter["traceparent"].split("-")[1:3] == [trace_id, span["parked"].span_id]
    finally:
        agency_side.shutdown()


MAIL_AGENCY = "oa-rechtshilfe-auslaenderinnen"


async def test_the_gateway_s_notice_to_an_email_agency_is_in_the_referral_s_trace(
    traced: tuple[Receiver, LocalSystem],
) -> None:
    receiver, system = traced
    office = _provider(receiver, "test-office")
    consent = {**request_body()["consent"], "recipients": [{"agency_id": MAIL_AGENCY}]}
    body = request_body(needs=["legal-aid"], consent=consent, client_name="Yara Canary-5512")
    try:
        trace_id, referral_id = await _refer(system, office, body, MAIL_AGENCY)
        (requested,) = [
            e
            for e in await stream_events(system, "ww.intake.referral.requested")
            if e["data"]["referral_id"] == referral_id
        ]
        span = await until_found(
            receiver,
            trace_id,
            {
                "referral takes it": (
                    "referral",
                    "process ww.intake.referral.requested",
                    requested["id"],
                ),
                "gateway tells the agency": (
                    "gateway",
                    f"process ww.referral.{MAIL_AGENCY}.offered",
                    None,
                ),
            },
        )
        notice = span["gateway tells the agency"]
        assert notice.parent_id == span["referral takes it"].span_id
        assert notice.attributes["messaging.consumer.group.name"] == f"agency-{MAIL_AGENCY}"
        assert "Canary-5512" not in json.dumps([s.attributes for s in receiver.snapshot()])
    finally:
        office.shutdown()

"""The FHIR adapter against a real nats-server, the gateway's real database and FHIR app, and
a local HTTPS endpoint for Subscriptions: offers become Tasks the agency alone can read, Task
updates become answers exactly when the lifecycle allows them, and Subscriptions are told
each change. What the endpoint refuses (a token, a search, an update, a Subscription) is
tested in process: tests/http/test_gateway_fhir_api.py."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jwcrypto import jwe, jws
from sqlmodel import select

from schemas import subjects
from schemas.envelope import Payload, new_event
from schemas.events import (
    DeletionConfirmed,
    DeletionRequested,
    ReferralAccepted,
    ReferralCancelled,
    ReferralReceived,
    TransitionRefused,
)
from schemas.vocabulary import ReferralStatus
from services.gateway import webhook
from services.gateway.application import Gateway as Application
from services.gateway.feed import Feed
from services.gateway.fhir import codes, http
from services.gateway.fhir.access import TokenFolder
from services.gateway.fhir.store import TaskRow
from services.gateway.fhir.subscriptions import Notifier
from services.gateway.mail import Mailer
from services.gateway.store import TABLES
from tests.support.gateway import (
    Listed,
    deletion_asked,
    fhir_change,
    fhir_offer,
    issue,
    subscription,
)
from tests.support.sdohcc import problems
from tests.support.waiting import until
from tests.support.webhook_endpoint import Endpoint
from wegweiser import registry
from wegweiser.platform import topology
from wegweiser.platform.connect import connect
from wegweiser.platform.consumer import ConsumerEdge
from wegweiser.platform.db import Database
from wegweiser.platform.inbox import InboxRow
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.outbox import OutboxRow
from wegweiser.platform.retry import Retry

AGENCY, OTHER = "lup-fhir-beratung", "oa-fhir-klinik"
CANARY = "Zora Canary-9911"
BASE = "http://gateway.test/fhir"
FHIR_JSON = {"content-type": "application/fhir+json"}


class Gateway:
    """The gateway's FHIR side as its composition root wires it, on a private broker."""

    def __init__(self, db: Database, js: Any, ring: KeyRing, tokens: dict[str, str]) -> None:
        self.db, self.js, self.ring, self.tokens = db, js, ring, tokens
        self.http: httpx.AsyncClient

    def auth(self, agency: str = AGENCY) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tokens[agency]}"}

    async def publish(self, agency: str, kind: str, data: Payload) -> None:
        event = new_event(data, source="/wegweiser/referral", subject="ref")
        await self.js.publish(
            subjects.referral_event(agency, kind), event.model_dump_json().encode()
        )

    async def offer(self, referral_id: str, agency: str = AGENCY) -> None:
        offered = fhir_offer(self.ring, referral_id, agency, client_name=CANARY)
        await self.publish(agency, "offered", offered)
        await self.task(referral_id, agency)

    async def task(self, referral_id: str, agency: str = AGENCY, status: str | None = None) -> Any:
        """The Task once the feed has it (in `status`, if given)."""
        for _ in range(400):
            got = await self.http.get(f"/{agency}/Task/{referral_id}", headers=self.auth(agency))
            if got.status_code == 200 and (status is None or got.json()["status"] == status):
                return got.json()
            await asyncio.sleep(0.05)
        raise AssertionError(f"no Task {referral_id} ({status}) in time: {got.text}")

    async def outbox(self) -> list[tuple[str, dict[str, Any]]]:
        rows = await self.db.run(lambda s: list(s.exec(select(OutboxRow))))
        return [(r.subject, json.loads(r.body)["data"]) for r in rows]

    async def version(self, referral_id: str) -> int:
        row = await self.db.run(lambda s: s.get(TaskRow, referral_id))
        assert row is not None
        return row.version


@pytest.fixture
async def gateway(tmp_path, nats_server, endpoint: Endpoint) -> AsyncIterator[Gateway]:
    db = Database(
        f"sqlite:///{tmp_path / 'gateway.db'}",
        [*TABLES, OutboxRow, InboxRow],
        registry.service("gateway").revisions,
    )
    db.migrate()
    ring = KeyRing(tmp_path / "keys")
    for agency in (AGENCY, OTHER):
        ring.ensure_agency(agency)
    ring.office_sealing("office-1")
    folder = TokenFolder.under(tmp_path / "keys")
    tokens = {a: folder.issue(a) for a in (AGENCY, OTHER)}
    secrets = webhook.SecretFolder(tmp_path / "keys" / "webhooks")
    nc = await connect(nats_server.url, "gateway-test")
    js = nc.jetstream()
    await topology.ensure_stream(js)
    context = ssl.create_default_context()
    endpoint.ca.configure_trust(context)
    client = httpx.AsyncClient(verify=context, timeout=5)
    notifier = Notifier(
        db.run,
        client,
        secrets.get,
        lambda a: f"{BASE}/{a}",
        give_up_after=1.0,
        retry=Retry(0.05, 0.5),
    )
    listed = {AGENCY: endpoint.url, OTHER: "https://klinik.example/fhir-hooks"}
    mailer = Mailer("wegweiser@county.example", None, 25, tmp_path / "mail", BASE, timedelta(1))
    served = Listed(ring, tokens=folder, notify_to=listed)
    application = Application(db, served, ring, mailer, notifier)
    feeds = [
        asyncio.create_task(
            Feed(
                nc,
                agency,
                partial(application.tell_fhir_agency, agency),
                ConsumerEdge("gateway", db.run, js, max_deliver=3),
            ).run()
        )
        for agency in (AGENCY, OTHER)
    ]
    app = http.create_app(application)
    parts = Gateway(db, js, ring, tokens)
    secrets.issue(AGENCY)
    gateway_app = FastAPI()
    gateway_app.mount("/fhir", app)  # as services/gateway/bootstrap.py mounts it
    transport = httpx.ASGITransport(app=gateway_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as fhir:
        parts.http = fhir
        yield parts
    for feed in feeds:
        feed.cancel()
    await asyncio.gather(*feeds, return_exceptions=True)
    await client.aclose()
    await nc.close()
    db.dispose()


async def test_the_capability_statement_says_what_the_endpoint_does(gateway):
    got = await gateway.http.get(f"/{AGENCY}/metadata", headers=gateway.auth())
    assert got.status_code == 200
    statement = got.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    kinds = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(kinds) == {"Task", "ServiceRequest", "Consent", "Binary", "Subscription"}
    assert {p["name"] for p in kinds["Task"]["searchParam"]} == {
        "status",
        "_lastUpdated",
        "_id",
        "_count",
    }


async def test_an_offer_becomes_a_task_the_agency_finds_by_status_and_last_updated(gateway):
    before = datetime.now(UTC) - timedelta(seconds=1)
    await gateway.offer("ref-1")
    await gateway.offer("ref-2", OTHER)
    task = await gateway.task("ref-1")
    assert task["status"] == "requested" and task["intent"] == "order"
    assert task["focus"]["reference"] == "ServiceRequest/ref-1"
    assert task["owner"]["identifier"] == {"system": codes.AGENCY_ID, "value": AGENCY}
    assert task["input"][0]["valueReference"]["reference"] == "Binary/ref-1"
    assert CANARY not in json.dumps(task)

    async def found(query: str) -> list[str]:
        got = await gateway.http.get(
            f"/{AGENCY}/Task?{query.replace('+', '%2B')}", headers=gateway.auth()
        )
        assert got.status_code == 200, got.text
        bundle = got.json()
        assert bundle["type"] == "searchset" and bundle["total"] == len(bundle.get("entry", []))
        return [e["resource"]["id"] for e in bundle.get("entry", [])]

    after = datetime.now(UTC) + timedelta(hours=1)
    assert await found("") == ["ref-1"]  # never the other agency's
    assert await found("status=requested") == ["ref-1"]
    assert await found("status=accepted,in-progress") == []
    assert await found(f"_lastUpdated=ge{before.isoformat()}") == ["ref-1"]
    assert await found(f"_lastUpdated=gt{after.isoformat()}") == []
    assert await found(f"status=requested&_lastUpdated=lt{after.isoformat()}") == ["ref-1"]
    assert await found("_id=ref-2") == []


async def test_the_agency_reads_its_service_request_consent_and_opens_its_sealed_case(gateway):
    await gateway.offer("ref-1")
    auth = gateway.auth()
    request = (await gateway.http.get(f"/{AGENCY}/ServiceRequest/ref-1", headers=auth)).json()
    assert request["resourceType"] == "ServiceRequest" and request["status"] == "active"
    assert request["supportingInfo"] == [{"reference": "Consent/con-ref-1"}]
    consent = (await gateway.http.get(f"/{AGENCY}/Consent/con-ref-1", headers=auth)).json()
    assert consent["status"] == "active" and consent["provision"]["type"] == "permit"
    task = await gateway.task("ref-1")
    for served in (task, request, consent):  # as served, against the SDOHCC profiles
        assert problems(served) == []
    got = await gateway.http.get(f"/{AGENCY}/Binary/ref-1", headers=auth)
    binary = got.json()
    assert binary["contentType"] == "application/jose"
    compact = base64.b64decode(binary["data"]).decode()
    raw = await gateway.http.get(
        f"/{AGENCY}/Binary/ref-1", headers={**auth, "accept": "application/jose"}
    )
    assert raw.text == compact and raw.headers["content-type"].startswith("application/jose")
    # opened as any JOSE library does: decrypt with the agency's key, verify the office's
    token = jwe.JWE()
    token.deserialize(compact, key=gateway.ring.agency_private(AGENCY))
    signed = jws.JWS()
    signed.deserialize(token.payload.decode())
    signed.verify(gateway.ring.office_public()["office-1"])
    assert json.loads(signed.payload)["client_name"] == CANARY


async def put(gateway: Gateway, task: dict[str, Any], **change: Any) -> httpx.Response:
    body = {**task, **change}
    return await gateway.http.put(
        f"/{AGENCY}/Task/{task['id']}",
        content=json.dumps(body),
        headers={**gateway.auth(), **FHIR_JSON},
    )


async def test_task_updates_become_the_agency_s_answers_as_the_lifecycle_allows(gateway):
    await gateway.offer("ref-1")
    task = await gateway.task("ref-1")
    steps: list[tuple[dict[str, Any], str]] = [
        ({"status": "received"}, "acknowledge"),
        ({"status": "accepted"}, "accept"),
        ({"status": "in-progress"}, "start"),
        (
            {
                "status": "on-hold",
                "statusReason": {
                    "coding": [{"system": codes.REASON, "code": "missing-documents"}],
                    "text": "missing-documents",
                },
            },
            "hold",
        ),
        ({"status": "in-progress", "statusReason": None}, "resume"),
        (
            {
                "status": "completed",
                "output": [
                    {
                        "type": {"coding": [{"system": codes.OUTPUT_TYPE, "code": "outcome"}]},
                        "valueCodeableConcept": {
                            "coding": [{"system": codes.OUTCOME, "code": "provided"}]
                        },
                    }
                ],
            },
            "complete",
        ),
    ]
    for change, action in steps:
        body = {k: v for k, v in {**task, **change}.items() if v is not None}
        got = await gateway.http.put(
            f"/{AGENCY}/Task/ref-1",
            content=json.dumps(body),
            headers={**gateway.auth(), **FHIR_JSON},
        )
        assert got.status_code == 200, got.text
        task = got.json()
        assert task["status"] == change["status"]
        subject, answer = (await gateway.outbox())[-1]
        assert subject == subjects.answer(AGENCY, action)
        assert answer["referral_id"] == "ref-1" and answer["action"] == action
    assert [a["action"] for _, a in await gateway.outbox()] == [a for _, a in steps]
    assert (await gateway.outbox())[3][1]["reason"] == "missing-documents"
    assert (await gateway.outbox())[-1][1]["outcome"] == "provided"
    again = await put(gateway, task)  # the same status again: nothing new
    assert again.status_code == 200 and len(await gateway.outbox()) == len(steps)


async def test_the_agency_s_own_words_travel_sealed_to_the_office(gateway):
    await gateway.offer("ref-1")
    task = await gateway.task("ref-1")
    reason = {
        "coding": [{"system": codes.REASON, "code": "no-capacity"}],
        "text": f"Keine Plätze bis März, {CANARY}",
    }
    got = await put(gateway, task, status="rejected", statusReason=reason)
    assert got.status_code == 200, got.text
    assert got.json()["statusReason"]["text"] == "no-capacity"
    ((_, answer),) = await gateway.outbox()
    assert CANARY not in json.dumps(answer)
    note = answer["comment"]
    assert note["recipient_kid"] == "office-1"
    opened = jwe.JWE()
    opened.deserialize(note["jwe"], key=gateway.ring.office_sealing("office-1"))
    assert CANARY in opened.payload.decode()


def refused_meanwhile(attempted: str) -> TransitionRefused:
    """The referral service's refusal of the agency's answer: the office cancelled first."""
    return TransitionRefused(
        referral_id="ref-1",
        agency_id=AGENCY,
        refused_event_id="evt-answer",
        sender=f"agency:{AGENCY}",
        attempted=attempted,
        current_status=ReferralStatus.CANCELLED,
        code="referral.forbidden-transition",
        message="cancelled meanwhile",
        occurred_at=datetime.now(UTC),
    )


async def test_news_older_than_the_agency_s_last_answer_does_not_undo_it(gateway):
    await gateway.offer("ref-1")
    task = await gateway.task("ref-1")
    for status in ("received", "accepted", "in-progress"):  # quicker than the confirmations
        got = await put(gateway, task, status=status)
        assert got.status_code == 200, got.text
        task = got.json()
    await gateway.publish(
        AGENCY, "received", fhir_change(ReferralReceived, ReferralStatus.RECEIVED, 2)
    )
    await gateway.publish(
        AGENCY, "accepted", fhir_change(ReferralAccepted, ReferralStatus.ACCEPTED, 3)
    )
    await gateway.task("ref-1", status="in-progress")  # in progress since the last answer

    async def confirmed() -> bool:
        return await gateway.version("ref-1") == 6  # offer, three answers, two confirmations

    # the answer must stand once both confirmations were taken in, not merely before
    await until(confirmed, what="both confirmations taken in")
    assert (await gateway.task("ref-1"))["status"] == "in-progress"
    await gateway.publish(
        AGENCY, "cancelled", fhir_change(ReferralCancelled, ReferralStatus.CANCELLED, 4)
    )  # the office withdrew it before the start arrived: the start will be refused
    await gateway.publish(AGENCY, "refused", refused_meanwhile("start"))
    await gateway.task("ref-1", status="cancelled")


async def test_the_referral_service_s_word_is_final(gateway):
    await gateway.offer("ref-1")
    task = await gateway.task("ref-1")
    assert (await put(gateway, task, status="accepted")).status_code == 200
    await gateway.publish(AGENCY, "refused", refused_meanwhile("accept"))
    await gateway.task("ref-1", status="cancelled")


async def withdrawn(gateway: Gateway) -> dict[str, Any]:
    """The referral service asks the agency to delete ref-1 (the consent was withdrawn); once
    the Consent shows it, the fields of that news."""
    fields = deletion_asked()
    await gateway.publish(AGENCY, "deletion-requested", DeletionRequested(**fields))
    for _ in range(200):
        got = await gateway.http.get(f"/{AGENCY}/Consent/con-ref-1", headers=gateway.auth())
        if got.json()["status"] == "inactive":
            break
        await asyncio.sleep(0.05)
    assert got.json()["status"] == "inactive"
    return fields


DELETED = {
    "type": {"coding": [{"system": codes.OUTPUT_TYPE, "code": codes.DELETION_CONFIRMED}]},
    "valueBoolean": True,
}


async def test_the_agency_confirms_a_deletion_once_asked_whatever_its_retries(gateway):
    """(Confirmed before it was asked, or together with a new status: refused, in
    tests/http/test_gateway_fhir_api.py.)"""
    await gateway.offer("ref-1")
    await withdrawn(gateway)
    task = await gateway.task("ref-1")
    for _ in range(2):  # a retry gives the same answer, not a second one
        done = await put(gateway, {**task, "output": [DELETED]})
        assert done.status_code == 200, done.text
    answers = await gateway.outbox()
    assert [(subject, a["action"]) for subject, a in answers] == [
        (subjects.answer(AGENCY, "confirm-deletion"), "confirm-deletion")
    ]
    assert (await gateway.task("ref-1"))["status"] == task["status"]


async def test_a_withdrawn_consent_ends_the_consent_and_a_confirmed_deletion_the_case(gateway):
    await gateway.offer("ref-1")
    fields = await withdrawn(gateway)
    await gateway.publish(AGENCY, "deletion-confirmed", DeletionConfirmed(**fields))
    for _ in range(200):
        got = await gateway.http.get(f"/{AGENCY}/Binary/ref-1", headers=gateway.auth())
        if got.status_code != 200:
            break
        await asyncio.sleep(0.05)
    assert got.status_code == 410 and issue(got)["wegweiser"] == "fhir.deleted"
    assert "input" not in await gateway.task("ref-1")


async def test_a_subscription_is_told_each_change_by_id_only_signed_like_a_webhook(
    gateway, endpoint, tmp_path
):
    await gateway.offer("ref-1")
    made = await gateway.http.post(
        f"/{AGENCY}/Subscription",
        content=json.dumps(subscription(endpoint.url)),
        headers={**gateway.auth(), **FHIR_JSON},
    )
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "active"
    secret = webhook.SecretFolder(tmp_path / "keys" / "webhooks").get(AGENCY)
    assert secret is not None
    ((headers, handshake),) = endpoint.taken()
    webhook.verify(secret, handshake, headers)
    status = json.loads(handshake)["entry"][0]["resource"]["parameter"]
    assert {"name": "type", "valueCode": "handshake"} in status

    accepted = fhir_change(ReferralAccepted, ReferralStatus.ACCEPTED, 3)
    await gateway.publish(AGENCY, "accepted", accepted)
    for _ in range(200):
        if len(endpoint.taken()) == 2:
            break
        await asyncio.sleep(0.05)
    headers, note = endpoint.taken()[1]
    webhook.verify(secret, note, headers)
    bundle = json.loads(note)
    assert bundle["type"] == "history"
    assert bundle["entry"][-1]["fullUrl"] == f"{BASE}/{AGENCY}/Task/ref-1"
    assert "resource" not in bundle["entry"][-1] and CANARY not in note.decode()
    assert (await gateway.task("ref-1"))["status"] == "accepted"

    read = await gateway.http.get(
        made.headers["location"].removeprefix(BASE), headers=gateway.auth()
    )
    assert read.status_code == 200, made.headers["location"]
    assert read.json()["id"] == made.json()["id"]
    ended = await gateway.http.delete(
        f"/{AGENCY}/Subscription/{made.json()['id']}", headers=gateway.auth()
    )
    assert ended.status_code == 204


async def test_an_endpoint_that_never_answers_leaves_the_subscription_in_error(gateway, endpoint):
    endpoint.failures = None
    made = await gateway.http.post(
        f"/{AGENCY}/Subscription",
        content=json.dumps(subscription(endpoint.url)),
        headers={**gateway.auth(), **FHIR_JSON},
    )
    assert made.status_code == 201
    assert made.json()["status"] == "error" and "HTTP 503" in made.json()["error"]

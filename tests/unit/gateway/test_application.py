"""The gateway's use cases on a real SQLite store, without a broker or an HTTP app: an e-mail
agency told of an offer gets a notice whose link opens its case, a portal comment is sealed
to the office that sent the referral, old links and ended sessions are forgotten, and a FHIR
Subscription is active only once its endpoint answered the handshake, then told each change.
What the HTTP apps answer for each refusal is tested in tests/http/test_gateway*_api.py."""

from __future__ import annotations

import email
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.subscription import Subscription
from nats.aio.msg import Msg
from sqlmodel import Session, select

from schemas import subjects
from schemas.events import SealedNote
from services.gateway import links, webhook
from services.gateway.application import (
    CaseDeleted,
    Gateway,
    MalformedCallback,
    NoPortalSession,
    OutOfDateForm,
)
from services.gateway.fhir import codes
from services.gateway.fhir.errors import FhirRefused
from services.gateway.fhir.subscriptions import Notifier
from services.gateway.portal import PortalForm
from services.gateway.store import CaseRow, LinkRow, SessionRow
from tests.support.databases import count
from tests.support.gateway import (
    CANARY,
    FHIR_AGENCY,
    HOOKED,
    MAIL_AGENCY,
    NOTIFY_TO,
    FhirApp,
    GatewayApp,
    Listed,
    application,
)
from wegweiser.platform import sealing
from wegweiser.platform.outbox import OutboxRow
from wegweiser.platform.retry import Retry


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[GatewayApp]:
    made = GatewayApp(tmp_path)
    yield made
    made.db.dispose()


def event(referral_id: str, kind: str, agency: str = MAIL_AGENCY.agency_id, **data: Any) -> Msg:
    """A referral event as the agency's feed hands it on."""
    body = json.dumps(
        {"id": f"evt-{referral_id}-{kind}", "data": {"referral_id": referral_id, **data}}
    ).encode()
    subject = subjects.referral_event(agency, kind)
    return Msg(_client=None, subject=subject, data=body)  # type: ignore[arg-type]


async def session_of(portal: GatewayApp, referral_id: str) -> str:
    return await portal.gateway.open_link(portal.link(referral_id).removeprefix("/portal/"))


async def test_a_told_mail_agency_gets_a_notice_whose_link_opens_its_case(
    portal: GatewayApp, tmp_path: Path
) -> None:
    await portal.gateway.tell_by_mail(MAIL_AGENCY, event("ref-1", "received"))
    (sent,) = (tmp_path / "mail").glob("*.eml")
    notice = email.message_from_bytes(sent.read_bytes())
    assert notice["To"] == MAIL_AGENCY.address and "ref-1" in notice["Subject"]
    token = re.search(r"/portal/(\S+)", sent.read_text())
    assert token is not None and CANARY not in sent.read_text()

    view = await portal.gateway.show_case(await portal.gateway.open_link(token[1]))
    assert (view.referral_id, view.state, view.agency_name) == (
        "ref-1",
        "received",
        MAIL_AGENCY.name,
    )
    assert view.case is None and view.error is None  # news without a case: nothing to open
    with pytest.raises(links.LinkRefused, match="already used"):
        await portal.gateway.open_link(token[1])


async def test_the_case_opens_with_the_key_the_gateway_holds_and_says_why_when_it_cannot(
    portal: GatewayApp,
) -> None:
    portal.offer("ref-2")
    session = await session_of(portal, "ref-2")
    view = await portal.gateway.show_case(session)
    assert view.case is not None and view.case.client_name == CANARY and view.error is None

    unlisted = replace(portal.gateway, agencies=Listed(portal.ring))
    blind = await unlisted.show_case(session)
    assert blind.case is None and blind.error == "the gateway holds no key for this agency"
    assert blind.agency_name == MAIL_AGENCY.agency_id  # no longer listed: its id alone

    portal.tell("ref-2", "deletion-confirmed")
    with pytest.raises(NoPortalSession):  # the deletion ended the session
        await portal.gateway.show_case(session)


async def test_a_portal_comment_is_sealed_to_the_office_that_sent_the_referral(
    portal: GatewayApp,
) -> None:
    portal.ring.office_sealing("office-2")
    portal.offer("ref-3", office="office-2")
    session = await session_of(portal, "ref-3")
    csrf = (await portal.gateway.show_case(session)).csrf
    answer = PortalForm(csrf, "reject", reason="out-of-area", comment="  Try Schwerin ")
    with pytest.raises(OutOfDateForm):
        await portal.gateway.answer_from_portal(session, PortalForm("stale", "accept"))

    taken = await portal.gateway.answer_from_portal(session, answer)

    assert taken.value == "reject"
    (row,) = portal.db.read_sync(lambda s: list(s.exec(select(OutboxRow))))
    note = json.loads(row.body)["data"]["comment"]
    assert note["recipient_kid"] == "office-2" and b"Schwerin" not in row.body
    opened = sealing.open_comment(
        SealedNote.model_validate(note),
        "ref-3",
        key=portal.ring.office_sealing("office-2"),
        kid="office-2",
    )
    assert opened == "Try Schwerin"


async def test_old_links_and_ended_sessions_are_forgotten_each_at_its_time(
    portal: GatewayApp,
) -> None:
    portal.offer("ref-4")
    await session_of(portal, "ref-4")  # the link used, a session open for 30 minutes
    portal.link("ref-4")  # another, unused

    portal.clock.now += timedelta(minutes=31)
    assert await portal.gateway.prune_links() == (0, 1)
    portal.clock.now += timedelta(days=7)  # the links expired, kept a while as used or not
    assert await portal.gateway.prune_links() == (0, 0)
    portal.clock.now += portal.gateway.links_keep
    assert await portal.gateway.prune_links() == (2, 0)
    assert count(portal.db, LinkRow) == count(portal.db, SessionRow) == 0


async def test_a_case_deleted_under_an_open_session_is_told_as_deleted(
    portal: GatewayApp,
) -> None:
    portal.offer("ref-5")
    session = await session_of(portal, "ref-5")

    def deleted_alone(s: Session) -> None:  # its sessions kept, as if one outlived it
        case = s.get(CaseRow, "ref-5")
        assert case is not None
        case.sealed_case, case.deleted_at = None, portal.clock()
        s.add(case)

    portal.db.run_sync(deleted_alone)
    with pytest.raises(CaseDeleted):
        await portal.gateway.show_case(session)


async def test_a_webhook_id_too_long_is_refused_before_the_body_is_read(
    portal: GatewayApp,
) -> None:
    body, headers = portal.signed("w" * 201, {"not": "an answer"})
    with pytest.raises(MalformedCallback, match="webhook-id longer"):
        await portal.gateway.take_callback(HOOKED, body.encode(), headers)
    assert portal.taken() == (0, 0, 0)


# --- FHIR Subscriptions ------------------------------------------------------------------


class Endpoint:
    """An agency's notification endpoint: answers `status`, keeps what it was sent."""

    def __init__(self, status: int = 200) -> None:
        self.status, self.taken = status, list[httpx.Request]()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.taken.append(request)
        return httpx.Response(self.status)


@pytest.fixture
async def fhir(tmp_path: Path) -> AsyncIterator[FhirApp]:
    made = FhirApp(tmp_path)
    yield made
    await made.dispose()


def subscribed(fhir: FhirApp, endpoint: Endpoint, folder: Path) -> tuple[Gateway, str]:
    """The gateway with the agency's webhook secret, its notifications sent to `endpoint`
    and given up after a fifth of a second."""
    secret = webhook.new_secret()
    listed = Listed(fhir.ring, webhooks={FHIR_AGENCY: secret}, notify_to=NOTIFY_TO)
    client = httpx.AsyncClient(transport=httpx.MockTransport(endpoint))
    made = application(fhir.db, listed, folder, client)
    made.notifier = Notifier(
        fhir.db.run, client, listed.secret, made.notifier.base_url, 0.2, Retry(0.01, 0.05)
    )
    return made, secret


def subscription(endpoint: str) -> Subscription:
    return Subscription.model_validate(
        {
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "my referrals",
            "criteria": codes.TOPIC,
            "channel": {"type": "rest-hook", "endpoint": endpoint},
        }
    )


async def test_a_subscription_is_active_once_its_endpoint_answered_and_told_each_change(
    fhir: FhirApp, tmp_path: Path
) -> None:
    endpoint = Endpoint()
    gateway, secret = subscribed(fhir, endpoint, tmp_path)
    with pytest.raises(FhirRefused, match="only to the address"):
        await gateway.subscribe(FHIR_AGENCY, subscription("https://elsewhere.example/hook"))
    fhir.offer("ref-6")

    made = await gateway.subscribe(FHIR_AGENCY, subscription(f"{NOTIFY_TO[FHIR_AGENCY]}/n"))
    await gateway.tell_fhir_agency(
        FHIR_AGENCY, event("ref-6", "accepted", FHIR_AGENCY, status="accepted")
    )
    await gateway.tell_fhir_agency(FHIR_AGENCY, event("ref-7", "accepted", FHIR_AGENCY))

    assert made.status == "active"
    handshake, change = endpoint.taken  # none for ref-7: no Task of it here
    for sent in (handshake, change):
        webhook.verify(secret, sent.content, dict(sent.headers))
    assert json.loads(change.content)["entry"][-1]["fullUrl"].endswith(f"/{FHIR_AGENCY}/Task/ref-6")
    assert (await gateway.task(FHIR_AGENCY, "ref-6")).status == "accepted"


async def test_a_subscription_whose_endpoint_refuses_the_handshake_is_in_error(
    fhir: FhirApp, tmp_path: Path
) -> None:
    gateway, _ = subscribed(fhir, Endpoint(503), tmp_path)
    made = await gateway.subscribe(FHIR_AGENCY, subscription(NOTIFY_TO[FHIR_AGENCY]))
    assert made.status == "error" and made.error is not None and "HTTP 503" in made.error
    assert (await gateway.subscription(FHIR_AGENCY, made.id)).status == "error"

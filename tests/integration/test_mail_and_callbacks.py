"""The e-mail adapter with its portal, and the webhook callback, against a real nats-server,
a real local SMTP server (aiosmtpd) and the gateway's real HTTP app."""

from __future__ import annotations

import asyncio
import email
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message

import httpx
import pytest
from aiosmtpd.controller import Controller

from schemas import subjects
from schemas.vocabulary import AgencyAction
from services.gateway import handlers, http, mail, webhook
from services.gateway.feed import Feed
from services.gateway.store import TABLES
from wegweiser.platform import sealing, topology
from wegweiser.platform.connect import connect
from wegweiser.platform.consumer import ConsumerEdge
from wegweiser.platform.db import Database
from wegweiser.platform.inbox import InboxRow
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.nats_server import free_port
from wegweiser.platform.outbox import OutboxRow, Relay

AGENCY = handlers.MailAgency("oa-kleiner-verein", "Kleiner Verein e.V.", "post@verein.example")
HOOKED = "lup-fallsoftware"
CANARY = "Zora Canary-4711"
PORTAL = "http://portal.test"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd API
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def gateway(tmp_path, nats_server, smtp):
    """The gateway's parts wired as its composition root does, on a private broker and SMTP."""
    inbox, port = smtp
    db = Database(
        f"sqlite:///{tmp_path / 'gateway.db'}", [*TABLES, OutboxRow, InboxRow], service="gateway"
    )
    db.migrate()
    ring = KeyRing(tmp_path / "keys")
    ring.ensure_agency(AGENCY.agency_id)
    secret = webhook.new_secret()
    nc = await connect(nats_server.url, "gateway-test")
    js = nc.jetstream()
    await topology.ensure_stream(js)
    clock = Clock()
    mailer = mail.Mailer("wegweiser@county.example", "127.0.0.1", port, tmp_path / "mail")
    relay = Relay(db.run, js)

    async def handle(msg) -> None:
        await db.run(
            lambda s: handlers.tell_by_mail(
                s, AGENCY, msg.subject, msg.data, clock(), PORTAL, timedelta(days=7)
            )
        )
        await mailer.send_pending(db.run, clock())

    feed = Feed(js, AGENCY.agency_id, handle, ConsumerEdge("gateway", db.run, js, max_deliver=3))
    app = http.create_app(
        db.run,
        webhook_secret=lambda a: secret if a == HOOKED else None,
        mail_agency=lambda a: AGENCY if a == AGENCY.agency_id else None,
        agency_key=lambda a: ring.agency_private(a) if a == AGENCY.agency_id else None,
        signers=ring.office_public,
        now=clock,
    )
    task = asyncio.create_task(feed.run())
    parts = dict(db=db, js=js, ring=ring, inbox=inbox, app=app, clock=clock, relay=relay)
    yield parts | {"secret": secret}
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await nc.close()
    db.dispose()


async def offer(gateway, referral_id: str) -> None:
    ring: KeyRing = gateway["ring"]
    signer = ring.office_signing("office-1")
    case = {"client_name": CANARY, "needs": ["legal-aid"], "note": f"Termin für {CANARY}"}
    jwe = sealing.seal(
        case,
        recipient=ring.agency_private(AGENCY.agency_id),
        recipient_kid=AGENCY.agency_id,
        signer=signer,
        signer_kid="office-1",
    )
    body = {"id": f"evt-{referral_id}", "data": {"referral_id": referral_id, "case": {"jwe": jwe}}}
    await gateway["js"].publish(
        subjects.referral_event(AGENCY.agency_id, "offered"), json.dumps(body).encode()
    )


async def notice_for(inbox: Inbox, count: int = 1) -> Message:
    for _ in range(300):
        if len(inbox.messages) >= count:
            return inbox.messages[count - 1]
        await asyncio.sleep(0.05)
    raise AssertionError("no e-mail arrived")


def link_in(message: Message) -> str:
    body = message.get_payload(decode=True).decode()
    (found,) = set(re.findall(rf"{PORTAL}/portal/[A-Za-z0-9_-]+", body))
    return found.removeprefix(PORTAL)


async def test_the_notice_carries_no_personal_data_and_its_link_works_once(gateway):
    await offer(gateway, "ref-1")
    message = await notice_for(gateway["inbox"])
    raw = message.as_string()
    assert message["To"] == AGENCY.address and "ref-1" in message["Subject"]
    assert CANARY not in raw and "Canary" not in raw and "legal-aid" not in raw
    link = link_in(message)
    transport = httpx.ASGITransport(app=gateway["app"])
    async with httpx.AsyncClient(transport=transport, base_url=PORTAL) as browser:
        opened = await browser.get(link, follow_redirects=True)
        assert opened.status_code == 200
        assert CANARY in opened.text  # unsealed for this agency, in its portal session only
        again = await browser.get(link)
        assert again.status_code == 410 and "already used" in again.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', opened.text).group(1)
        forged = await browser.post("/portal/case", data={"csrf": "x", "action": "accept"})
        assert forged.status_code == 403
        accepted = await browser.post("/portal/case", data={"csrf": csrf, "action": "accept"})
        assert accepted.status_code == 303
    async with httpx.AsyncClient(transport=transport, base_url=PORTAL) as stranger:
        assert (await stranger.get("/portal/case")).status_code == 401  # no session, no case
        assert (await stranger.get("/portal/not-a-token")).status_code == 404
    assert await gateway["relay"].publish_pending() == 1
    sub = await gateway["js"].subscribe(
        subjects.answer(AGENCY.agency_id, "accept"), ordered_consumer=True
    )
    answer = json.loads((await sub.next_msg(timeout=5)).data)["data"]
    assert answer == {
        "referral_id": "ref-1",
        "agency_id": AGENCY.agency_id,
        "action": "accept",
        "reason": None,
    }


async def test_an_expired_link_is_refused(gateway):
    await offer(gateway, "ref-2")
    link = link_in(await notice_for(gateway["inbox"]))
    gateway["clock"].now += timedelta(days=7, seconds=1)
    transport = httpx.ASGITransport(app=gateway["app"])
    async with httpx.AsyncClient(transport=transport, base_url=PORTAL) as browser:
        late = await browser.get(link)
    assert late.status_code == 410 and "expired" in late.text


async def test_a_redelivered_event_sends_no_second_notice(gateway):
    await offer(gateway, "ref-3")
    await notice_for(gateway["inbox"])
    await offer(gateway, "ref-3")  # the same event id again, as a redelivery would bring it
    await offer(gateway, "ref-4")
    second = await notice_for(gateway["inbox"], 2)
    assert "ref-4" in second["Subject"]
    assert len(gateway["inbox"].messages) == 2


async def test_a_webhook_callback_needs_the_agency_signature(gateway):
    transport = httpx.ASGITransport(app=gateway["app"])
    body = json.dumps({"referral_id": "ref-9", "action": "acknowledge"})
    path = f"/webhooks/{HOOKED}/answers"
    async with httpx.AsyncClient(transport=transport, base_url=PORTAL) as agency:
        forged = webhook.signed_headers(webhook.new_secret(), "msg-1", body)
        assert (await agency.post(path, content=body, headers=forged)).status_code == 401
        unsigned = await agency.post(path, content=body)
        assert unsigned.status_code == 401
        other = await agency.post("/webhooks/nobody/answers", content=body, headers=forged)
        assert other.status_code == 404
        assert await gateway["relay"].publish_pending() == 0  # nothing refused got through
        good = webhook.signed_headers(gateway["secret"], "msg-2", body)
        taken = await agency.post(path, content=body, headers=good)
        assert taken.status_code == 202
        bad_body = json.dumps({"referral_id": "ref-9", "action": "dance"})
        wrong = await agency.post(
            path,
            content=bad_body,
            headers=webhook.signed_headers(gateway["secret"], "m3", bad_body),
        )
        assert wrong.status_code == 422
    assert await gateway["relay"].publish_pending() == 1
    sub = await gateway["js"].subscribe(
        subjects.answer(HOOKED, "acknowledge"), ordered_consumer=True
    )
    data = json.loads((await sub.next_msg(timeout=5)).data)["data"]
    assert data["action"] == AgencyAction.ACKNOWLEDGE and data["agency_id"] == HOOKED

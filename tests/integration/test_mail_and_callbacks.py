"""The e-mail adapter with its portal, and the webhook callback, against a real nats-server,
a real local SMTP server (aiosmtpd) and the gateway's real HTTP app: notices without personal
data or tokens at rest, links that open nothing after a deletion, answers that reach the
stream. What the HTTP app refuses (a link used or expired, a forged form, a callback unsigned,
replayed or malformed) is tested in process: tests/http/test_gateway_api.py."""

from __future__ import annotations

import asyncio
import email
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from functools import partial

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlmodel import select

from schemas import subjects
from schemas.envelope import answer_event_id
from schemas.events import SealedNote
from schemas.vocabulary import AgencyAction
from services.gateway import callbacks, handlers, http, links, mail, webhook
from services.gateway.feed import Feed
from services.gateway.store import (
    TABLES,
    AnswerRow,
    CallbackRow,
    CaseRow,
    LinkRow,
    MailRow,
    SessionRow,
)
from tests.support.gateway import Listed, application
from tests.support.system import files_containing
from wegweiser import registry
from wegweiser.platform import keys, sealing, topology
from wegweiser.platform.connect import connect
from wegweiser.platform.consumer import ConsumerEdge
from wegweiser.platform.db import Database
from wegweiser.platform.http_headers import CONTENT_SECURITY_POLICY
from wegweiser.platform.inbox import InboxRow
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.nats_server import free_port
from wegweiser.platform.outbox import OutboxRow, Relay

REVISIONS = registry.service("gateway").revisions

AGENCY = handlers.MailAgency("oa-kleiner-verein", "Kleiner Verein e.V.", "post@verein.example")
HOOKED = "lup-fallsoftware"
CANARY = "Zora Canary-4711"
PORTAL = "http://portal.test"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, _server, _session, envelope) -> str:
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
    db = Database(f"sqlite:///{tmp_path / 'gateway.db'}", [*TABLES, OutboxRow, InboxRow], REVISIONS)
    db.migrate()
    ring = KeyRing(tmp_path / "keys")
    ring.ensure_agency(AGENCY.agency_id)
    ring.office_sealing("office-1")
    secret = webhook.new_secret()
    nc = await connect(nats_server.url, "gateway-test")
    js = nc.jetstream()
    await topology.ensure_stream(js)
    clock = Clock()
    mailer = mail.Mailer(
        "wegweiser@county.example", "127.0.0.1", port, tmp_path / "mail", PORTAL, timedelta(days=7)
    )
    relay = Relay(db.run, js)
    listed = Listed(ring, {HOOKED: secret}, {AGENCY.agency_id: AGENCY})
    notifications = httpx.AsyncClient()  # no FHIR agency here: never used
    gateway = application(db, listed, tmp_path / "mail", notifications, clock, mailer)
    handle = partial(gateway.tell_by_mail, AGENCY)
    feed = Feed(nc, AGENCY.agency_id, handle, ConsumerEdge("gateway", db.run, js, max_deliver=3))
    app = http.create_app(gateway)
    task = asyncio.create_task(feed.run())
    parts = {
        "db": db,
        "js": js,
        "ring": ring,
        "inbox": inbox,
        "app": app,
        "clock": clock,
        "relay": relay,
        "mailer": mailer,
    }
    yield parts | {"secret": secret}
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await notifications.aclose()
    await nc.close()
    db.dispose()


async def offer(gateway, referral_id: str, office: str = "office-1", **more: object) -> None:
    ring: KeyRing = gateway["ring"]
    signer = ring.office_signing(office)
    case = {"client_name": CANARY, "needs": ["legal-aid"], "note": f"Termin für {CANARY}", **more}
    jwe = sealing.seal(
        case,
        recipient=ring.agency_private(AGENCY.agency_id),
        recipient_kid=AGENCY.agency_id,
        signer=signer,
        signer_kid=office,
    )
    data = {"referral_id": referral_id, "office_id": office, "case": {"jwe": jwe}}
    body = {"id": f"evt-{referral_id}", "data": data}
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
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    body = payload.decode()
    (found,) = set(re.findall(rf"{PORTAL}/portal/[A-Za-z0-9_-]+", body))
    return found.removeprefix(PORTAL)


def portal(gateway) -> httpx.AsyncClient:
    """A browser at the gateway's portal, or an agency's software calling back, in process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway["app"]), base_url=PORTAL)


def csrf_in(page: httpx.Response) -> str:
    """The portal form's CSRF token, which every answer must carry back."""
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def test_the_notice_carries_no_personal_data_and_its_link_opens_the_case(gateway):
    """The case opens by the e-mailed link, and the portal's answer reaches the stream."""
    await offer(gateway, "ref-1")
    message = await notice_for(gateway["inbox"])
    raw = message.as_string()
    assert message["To"] == AGENCY.address and "ref-1" in message["Subject"]
    assert CANARY not in raw and "Canary" not in raw and "legal-aid" not in raw
    link = link_in(message)
    async with portal(gateway) as browser:
        opened = await browser.get(link, follow_redirects=True)
        assert opened.status_code == 200
        assert CANARY in opened.text  # unsealed for this agency, in its portal session only
        csrf = csrf_in(opened)
        accepted = await browser.post("/portal/case", data={"csrf": csrf, "action": "accept"})
        assert accepted.status_code == 303
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
        "outcome": None,
        "comment": None,
        "forward_to": None,
    }


async def test_the_portal_shows_the_legal_deadline_the_case_is_under(gateway):
    deadline = {"kind": "asylum-lawsuit-2w", "land": "MV", "ends_on": "2026-12-18"}
    await offer(gateway, "ref-deadline", legal_deadline=deadline)
    link = link_in(await notice_for(gateway["inbox"]))
    async with portal(gateway) as browser:
        opened = await browser.get(link, follow_redirects=True)
    assert opened.status_code == 200
    assert "Rechtliche Frist / legal deadline" in opened.text
    assert "ends 2026-12-18, 24:00" in opened.text and "asylum-lawsuit-2w" in opened.text


async def test_a_redelivered_event_sends_no_second_notice(gateway):
    await offer(gateway, "ref-3")
    await notice_for(gateway["inbox"])
    await offer(gateway, "ref-3")  # the same event id again, as a redelivery would bring it
    await offer(gateway, "ref-4")
    second = await notice_for(gateway["inbox"], 2)
    assert "ref-4" in second["Subject"]
    assert len(gateway["inbox"].messages) == 2


async def test_a_signed_callback_s_answer_is_published(gateway):
    """A callback the gateway takes reaches the stream as the agency's answer."""
    body = json.dumps({"referral_id": "ref-9", "action": "acknowledge", "answer_id": "a-9"})
    path = f"/webhooks/{HOOKED}/answers"
    async with portal(gateway) as agency:
        good = webhook.signed_headers(gateway["secret"], "msg-2", body)
        taken = await agency.post(path, content=body, headers=good)
        assert taken.status_code == 202
    assert await gateway["relay"].publish_pending() == 1
    sub = await gateway["js"].subscribe(
        subjects.answer(HOOKED, "acknowledge"), ordered_consumer=True
    )
    data = json.loads((await sub.next_msg(timeout=5)).data)["data"]
    assert data["action"] == AgencyAction.ACKNOWLEDGE and data["agency_id"] == HOOKED


def signed(gateway, webhook_id: str, answer: dict) -> tuple[str, dict[str, str]]:
    body = json.dumps(answer)
    return body, webhook.signed_headers(gateway["secret"], webhook_id, body)


def taken_rows(gateway) -> tuple[int, int, int]:
    """How many webhook-ids, answer ids and outbox events the gateway holds."""
    return gateway["db"].run_sync(
        lambda s: tuple(len(s.exec(select(t)).all()) for t in (CallbackRow, AnswerRow, OutboxRow))
    )


def test_webhook_ids_are_kept_past_the_tolerance_window_then_pruned(gateway):
    db, start = gateway["db"], datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    answer = callbacks.CallbackAnswer(referral_id="ref-8", action="start", answer_id="s-8")

    def take(webhook_id: str, at: datetime) -> callbacks.Taken:
        return db.run_sync(lambda s: callbacks.take(s, HOOKED, webhook_id, answer, at))

    assert take("w-1", start).first
    with pytest.raises(callbacks.Replayed):
        take("w-1", start + callbacks.REMEMBER_FOR - timedelta(seconds=1))
    later = take("w-2", start + callbacks.REMEMBER_FOR + timedelta(seconds=1))
    assert later == callbacks.Taken(answer_event_id(HOOKED, "s-8"), first=False)
    remembered = db.run_sync(lambda s: [r.webhook_id for r in s.exec(select(CallbackRow))])
    assert remembered == ["w-2"]  # w-1 pruned; had its old signature still held, the
    assert taken_rows(gateway)[2] == 1  # answer id would have absorbed it all the same


async def test_no_portal_token_is_at_rest_once_its_notice_was_sent(gateway, tmp_path):
    await offer(gateway, "ref-10")
    token = link_in(await notice_for(gateway["inbox"])).removeprefix("/portal/")
    gateway["db"].dispose()  # everything on disk, the WAL included
    assert files_containing(tmp_path, token.encode()) == []
    # the search does read the database: the token's hash is there, and the referral
    assert files_containing(tmp_path, links.digest(token).encode()) != []
    assert files_containing(tmp_path, b"ref-10") != []


async def test_the_portal_sends_the_security_headers_of_the_web_app(gateway):
    await offer(gateway, "ref-11")
    link = link_in(await notice_for(gateway["inbox"]))
    async with portal(gateway) as browser:
        case = await browser.get(link, follow_redirects=True)
        css = await browser.get("/static/portal.css")
        nobody = await portal(gateway).get("/portal/case")
    assert case.status_code == 200 and CANARY in case.text and "<style" not in case.text
    for page in (case, nobody):
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert page.headers["cache-control"] == "no-store"
    assert css.status_code == 200 and "cache-control" not in css.headers


async def published(gateway, referral_id: str, kind: str, event_id: str) -> None:
    body = {"id": event_id, "data": {"referral_id": referral_id}}
    await gateway["js"].publish(
        subjects.referral_event(AGENCY.agency_id, kind), json.dumps(body).encode()
    )


async def test_a_confirmed_deletion_leaves_nothing_to_show_at_the_gateway(gateway):
    await offer(gateway, "ref-12")
    opened_link = link_in(await notice_for(gateway["inbox"]))
    await published(gateway, "ref-12", "deletion-requested", "evt-12-del")
    unused_link = link_in(await notice_for(gateway["inbox"], 2))
    async with portal(gateway) as browser:
        before = await browser.get(opened_link, follow_redirects=True)
        assert CANARY in before.text
        await published(gateway, "ref-12", "deletion-confirmed", "evt-12-gone")

        def case():
            return gateway["db"].run_sync(lambda s: s.get(CaseRow, "ref-12"))

        for _ in range(300):
            if case().deleted_at is not None:
                break
            await asyncio.sleep(0.05)
        assert case().sealed_case is None
        after = await browser.get("/portal/case")  # the session it had is over
        answer = await browser.post("/portal/case", data={"csrf": "x", "action": "accept"})
        late = await browser.get(unused_link)
    assert after.status_code == 401 and CANARY not in after.text
    assert answer.status_code == 401
    assert late.status_code == 410 and CANARY not in late.text and "deleted" in late.text
    sessions = gateway["db"].run_sync(lambda s: s.exec(select(SessionRow)).all())
    assert [s for s in sessions if s.referral_id == "ref-12"] == []
    assert len(gateway["inbox"].messages) == 2  # no notice of the deletion it confirmed


async def test_a_notice_not_yet_sent_when_the_case_is_deleted_is_dropped(gateway):
    db, clock = gateway["db"], gateway["clock"]

    def tell(kind: str, event_id: str) -> None:
        body = json.dumps({"id": event_id, "data": {"referral_id": "ref-13"}}).encode()
        subject = subjects.referral_event(AGENCY.agency_id, kind)
        db.run_sync(lambda s: handlers.tell_by_mail(s, AGENCY, subject, body, clock()))

    tell("reminded", "evt-13-rem")
    tell("deletion-confirmed", "evt-13-gone")
    tell("refused", "evt-13-late")  # news after the deletion: nothing to tell
    assert await gateway["mailer"].send_pending(db.run, clock()) == 0
    assert db.run_sync(lambda s: s.exec(select(MailRow)).all()) == []
    assert db.run_sync(lambda s: s.exec(select(LinkRow)).all()) == []
    assert gateway["inbox"].messages == []


def opened_comment(gateway, answer: dict, office: str = "office-1") -> str:
    """The comment of a staged answer, as the office opens it with its own key."""
    ring: KeyRing = gateway["ring"]
    note = SealedNote.model_validate(answer["comment"])
    assert note.recipient_kid == office
    return sealing.open_comment(
        note, answer["referral_id"], key=ring.office_sealing(office), kid=office
    )


def staged_answers(gateway) -> list[dict]:
    rows = gateway["db"].run_sync(lambda s: list(s.exec(select(OutboxRow))))
    return [json.loads(row.body)["data"] for row in rows]


async def called_back(gateway, webhook_id: str, answer: dict) -> dict:
    """The one answer staged once HOOKED's software called back with `answer`, signed (the
    callback must be taken: 202)."""
    body, headers = signed(gateway, webhook_id, answer)
    async with portal(gateway) as agency:
        taken = await agency.post(f"/webhooks/{HOOKED}/answers", content=body, headers=headers)
    assert taken.status_code == 202, taken.text
    [staged] = staged_answers(gateway)
    return staged


async def test_a_callbacks_comment_is_sealed_to_the_office_before_anything_is_written(gateway):
    answer = {
        "referral_id": "ref-9",
        "action": "complete",
        "outcome": "partly-provided",
        "reason": "missing-documents",
        "comment": f"Bring the diploma, {CANARY}",
        "answer_id": "c-9",
    }
    staged = await called_back(gateway, "m-comment", answer)
    assert (staged["outcome"], staged["reason"]) == ("partly-provided", "missing-documents")
    assert opened_comment(gateway, staged) == f"Bring the diploma, {CANARY}"
    gateway["db"].dispose()
    at_rest = b"".join(p.read_bytes() for p in gateway["ring"].dir.parent.glob("*.db*"))
    assert CANARY.encode() not in at_rest


async def test_the_portal_declines_with_a_code_and_a_sealed_comment(gateway):
    await offer(gateway, "ref-10")
    link = link_in(await notice_for(gateway["inbox"]))
    async with portal(gateway) as browser:
        opened = await browser.get(link, follow_redirects=True)
        assert 'name="reason"' in opened.text and 'value="no-capacity"' in opened.text
        form = {"csrf": csrf_in(opened), "action": "reject"}
        done = await browser.post(
            "/portal/case", data={**form, "reason": "out-of-area", "comment": "Try Schwerin"}
        )
        assert done.status_code == 303
    [staged] = staged_answers(gateway)
    assert staged["action"] == "reject" and staged["reason"] == "out-of-area"
    assert opened_comment(gateway, staged) == "Try Schwerin"


async def test_a_callback_forwards_to_the_agency_it_names(gateway):
    answer = {
        "referral_id": "ref-12",
        "action": "forward",
        "reason": "out-of-area",
        "forward_to": "lup-mbe-parchim",
        "answer_id": "f-12",
    }
    staged = await called_back(gateway, "m-forward", answer)
    assert (staged["action"], staged["forward_to"]) == ("forward", "lup-mbe-parchim")


async def test_the_portal_forwards_with_a_reason_and_the_other_agencys_id(gateway):
    await offer(gateway, "ref-13")
    link = link_in(await notice_for(gateway["inbox"]))
    async with portal(gateway) as browser:
        opened = await browser.get(link, follow_redirects=True)
        assert 'name="forward_to"' in opened.text
        form = {"csrf": csrf_in(opened), "action": "forward", "reason": "out-of-area"}
        done = await browser.post("/portal/case", data={**form, "forward_to": "lup-mbe-parchim"})
        assert done.status_code == 303
    [staged] = staged_answers(gateway)
    assert (staged["action"], staged["forward_to"]) == ("forward", "lup-mbe-parchim")


async def test_the_portal_shows_the_offices_comment_and_seals_the_answer_to_that_office(gateway):
    ring: KeyRing = gateway["ring"]
    ring.office_sealing("office-2")  # two offices on file: the answer must find the right one
    await offer(gateway, "ref-11", office="office-2")
    await notice_for(gateway["inbox"])
    agency_public = keys.from_dict(keys.public_dict(ring.agency_private(AGENCY.agency_id)))
    note = sealing.seal_comment(
        f"{CANARY} ist umgezogen",
        "ref-11",
        recipient=agency_public,
        recipient_kid=AGENCY.agency_id,
        signer=ring.office_signing("office-2"),
        signer_kid="office-2",
    )
    data = {"referral_id": "ref-11", "comment": note.model_dump(mode="json")}
    body = {"id": "evt-ref-11-cancelled", "data": data}
    await gateway["js"].publish(
        subjects.referral_event(AGENCY.agency_id, "cancelled"), json.dumps(body).encode()
    )
    message = await notice_for(gateway["inbox"], 2)
    assert CANARY not in message.as_string()  # the notice says only that there is news
    async with portal(gateway) as browser:
        opened = await browser.get(link_in(message), follow_redirects=True)
        assert f"{CANARY} ist umgezogen" in opened.text  # opened for this agency's session
        form = {"csrf": csrf_in(opened), "action": "reject", "reason": "person-declined"}
        done = await browser.post("/portal/case", data={**form, "comment": "Verstanden"})
        assert done.status_code == 303
    [staged] = staged_answers(gateway)
    assert opened_comment(gateway, staged, office="office-2") == "Verstanden"

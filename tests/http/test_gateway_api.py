"""The partner gateway's HTTP app in this process on a real SQLite store: a webhook callback
is taken only signed, once, and well-formed, and the portal opens a case only by a fresh
link, answers only in its session with the form's token; everything refused changes nothing.

What needs the broker or the mail server (a notice sent, an answer published, a deletion
arriving on the feed) stays in tests/integration/test_mail_and_callbacks.py."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from services.gateway import callbacks, webhook
from services.gateway.store import CaseRow, LinkRow, SessionRow
from tests.support.databases import count
from tests.support.gateway import CANARY, HOOKED, GatewayApp
from wegweiser.platform.outbox import OutboxRow

ANSWERS = f"/webhooks/{HOOKED}/answers"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayApp]:
    made = GatewayApp(tmp_path)
    yield made
    made.db.dispose()


# --- webhook callbacks ----------------------------------------------------------------------


async def test_a_webhook_callback_needs_the_agency_signature(gateway: GatewayApp) -> None:
    body = json.dumps({"referral_id": "ref-9", "action": "acknowledge", "answer_id": "a-9"})
    forged = webhook.signed_headers(webhook.new_secret(), "msg-1", body)
    stale = webhook.signed_headers(
        gateway.secret, "msg-1", body, datetime.now(UTC) - timedelta(minutes=10)
    )
    async with gateway.client() as agency:
        refused = await agency.post(ANSWERS, content=body, headers=forged)
        unsigned = await agency.post(ANSWERS, content=body)
        late = await agency.post(ANSWERS, content=body, headers=stale)
        other = await agency.post("/webhooks/nobody/answers", content=body, headers=forged)
        assert refused.status_code == unsigned.status_code == late.status_code == 401
        assert refused.json()["detail"].startswith("bad webhook signature")
        assert other.status_code == 404 and "no webhook agency nobody" in other.text
        assert gateway.taken() == (0, 0, 0)  # nothing refused got through
        good = webhook.signed_headers(gateway.secret, "msg-2", body)
        taken = await agency.post(ANSWERS, content=body, headers=good)
        assert taken.status_code == 202
        bad_body = json.dumps({"referral_id": "ref-9", "action": "dance", "answer_id": "a-10"})
        wrong = await agency.post(
            ANSWERS,
            content=bad_body,
            headers=webhook.signed_headers(gateway.secret, "m3", bad_body),
        )
        assert wrong.status_code == 422
    assert gateway.taken() == (1, 1, 1)


async def test_a_replayed_callback_is_refused_and_changes_nothing(gateway: GatewayApp) -> None:
    hold = {
        "referral_id": "ref-5",
        "action": "hold",
        "reason": "could-not-contact",
        "answer_id": "h-1",
    }
    body, headers = gateway.signed("msg-hold", hold)
    async with gateway.client() as agency:
        first = await agency.post(ANSWERS, content=body, headers=headers)
        assert first.status_code == 202
        before = gateway.taken()
        replayed = await agency.post(ANSWERS, content=body, headers=headers)  # as captured
    assert replayed.status_code == 409
    assert replayed.json() == {
        "detail": "callback.replayed: webhook-id 'msg-hold' was already accepted"
    }
    assert gateway.taken() == before == (1, 1, 1)  # one event in the outbox, to publish


async def test_an_answer_sent_again_under_its_answer_id_counts_once(gateway: GatewayApp) -> None:
    accept = {"referral_id": "ref-6", "action": "accept", "answer_id": "acc-6"}
    async with gateway.client() as agency:

        async def send(webhook_id: str, answer: dict[str, Any]) -> httpx.Response:
            body, headers = gateway.signed(webhook_id, answer)
            return await agency.post(ANSWERS, content=body, headers=headers)

        first = await send("m-1", accept)
        again = await send("m-2", accept)
        clash = await send("m-3", {**accept, "action": "reject", "reason": "no-capacity"})
    assert first.status_code == 202 and again.status_code == 200  # the lost 202, retried
    assert again.json() == first.json()
    assert clash.status_code == 409
    assert clash.json()["detail"].startswith("callback.answer-id-reused: answer_id 'acc-6'")
    assert gateway.taken() == (2, 1, 1)  # m-3 was refused, not taken; one event to publish


async def test_a_callback_without_an_answer_id_is_refused(gateway: GatewayApp) -> None:
    body, headers = gateway.signed("m-no-id", {"referral_id": "ref-7", "action": "start"})
    async with gateway.client() as agency:
        refused = await agency.post(ANSWERS, content=body, headers=headers)
    assert refused.status_code == 422
    assert [e["loc"] for e in refused.json()["detail"]] == [["answer_id"]]
    assert gateway.taken() == (0, 0, 0)


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ({"action": "reject", "reason": "on leave"}, "reason"),
        ({"action": "reject"}, "'reject' needs a reason"),
        ({"action": "hold", "reason": "duplicate"}, "'duplicate' is no reason to hold"),
        ({"action": "complete"}, "'complete' needs an outcome"),
        ({"action": "complete", "outcome": "not-provided"}, "needs a reason"),
        ({"action": "forward", "reason": "out-of-area"}, "'forward' needs the agency to"),
        ({"action": "accept", "forward_to": "lup-mbe-parchim"}, "only 'forward' names an"),
        (
            {"action": "forward", "reason": "out-of-area", "forward_to": "../../etc"},
            "String should match pattern",
        ),
        ({"action": "accept", "surprise": 1}, "Extra inputs are not permitted"),
        ({"action": "accept", "comment": "x" * 2001}, "comment"),
    ],
)
async def test_a_callback_whose_reason_does_not_fit_is_refused_and_nothing_taken(
    gateway: GatewayApp, answer: dict[str, Any], said: str
) -> None:
    body, headers = gateway.signed(
        "m-unfit", {"referral_id": "ref-8", "answer_id": "u-8", **answer}
    )
    async with gateway.client() as agency:
        refused = await agency.post(ANSWERS, content=body, headers=headers)
    assert refused.status_code == 422 and said in refused.text, refused.text
    assert gateway.taken() == (0, 0, 0)


async def test_a_signed_body_that_is_no_json_is_refused(gateway: GatewayApp) -> None:
    body = '{"referral_id": "ref-8", "action": '
    headers = webhook.signed_headers(gateway.secret, "m-broken", body)
    async with gateway.client() as agency:
        refused = await agency.post(ANSWERS, content=body, headers=headers)
    assert refused.status_code == 422 and "json_invalid" in refused.text, refused.text
    assert gateway.taken() == (0, 0, 0)


async def test_a_webhook_id_too_long_to_remember_is_refused(gateway: GatewayApp) -> None:
    answer = {"referral_id": "ref-8", "action": "accept", "answer_id": "l-8"}
    body, headers = gateway.signed("w" * (callbacks.LONGEST_ID + 1), answer)
    _, fits = gateway.signed("w" * callbacks.LONGEST_ID, answer)
    async with gateway.client() as agency:
        refused = await agency.post(ANSWERS, content=body, headers=headers)
        assert gateway.taken() == (0, 0, 0)
        taken = await agency.post(ANSWERS, content=body, headers=fits)
    assert refused.status_code == 422
    assert refused.json() == {"detail": f"webhook-id longer than {callbacks.LONGEST_ID} characters"}
    assert taken.status_code == 202 and gateway.taken() == (1, 1, 1)


async def test_a_comment_for_an_office_without_a_key_on_file_is_refused(
    gateway: GatewayApp,
) -> None:
    answer = {
        "referral_id": "ref-8",
        "action": "accept",
        "comment": f"Termin am Montag, {CANARY}",
        "office": "office-9",
        "answer_id": "k-8",
    }
    body, headers = gateway.signed("m-keyless", answer)
    async with gateway.client() as agency:
        refused = await agency.post(ANSWERS, content=body, headers=headers)
    assert refused.status_code == 422
    assert "no sealing key of office 'office-9'" in refused.json()["detail"]
    assert CANARY not in refused.text
    assert gateway.taken() == (0, 0, 0)


async def test_the_callback_route_takes_post_alone_and_other_paths_are_unknown(
    gateway: GatewayApp,
) -> None:
    async with gateway.client() as agency:
        methods = [await agency.request(m, ANSWERS) for m in ("GET", "PUT", "DELETE", "PATCH")]
        nowhere = await agency.post(f"/webhooks/{HOOKED}/questions", content="{}")
    for refused in methods:
        assert refused.status_code == 405 and refused.headers["allow"] == "POST"
    assert nowhere.status_code == 404
    assert gateway.taken() == (0, 0, 0)


async def test_a_405_names_every_method_of_the_path(gateway: GatewayApp) -> None:
    async with gateway.client() as browser:
        refused = await browser.delete("/portal/case")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, POST"


# --- the portal -----------------------------------------------------------------------------


async def opened(browser: httpx.AsyncClient, link: str) -> str:
    """Open the link's case in `browser`; the form's CSRF token."""
    page = await browser.get(link, follow_redirects=True)
    assert page.status_code == 200 and CANARY in page.text, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def test_a_portal_link_works_once_and_not_when_unknown(gateway: GatewayApp) -> None:
    gateway.offer("ref-1")
    link = gateway.link("ref-1")
    async with gateway.client() as browser:
        await opened(browser, link)
        again = await browser.get(link)
    async with gateway.client() as stranger:
        guessed = await stranger.get("/portal/not-a-token")
    assert again.status_code == 410 and "already used" in again.text
    assert guessed.status_code == 404 and "not known" in guessed.text
    assert count(gateway.db, SessionRow) == 1  # the first opening's alone


async def test_an_expired_link_is_refused(gateway: GatewayApp) -> None:
    gateway.offer("ref-2")
    link = gateway.link("ref-2")
    gateway.clock.now += timedelta(days=7, seconds=1)
    async with gateway.client() as browser:
        late = await browser.get(link)
    assert late.status_code == 410 and "expired" in late.text
    assert count(gateway.db, SessionRow) == 0
    assert [r.used_at for r in gateway.db.read_sync(lambda s: s.exec(select(LinkRow)).all())] == [
        None
    ]


async def test_a_link_to_a_deleted_case_is_refused_without_the_case(gateway: GatewayApp) -> None:
    gateway.offer("ref-3")
    link = gateway.link("ref-3")
    gateway.tell("ref-3", "deletion-confirmed")
    async with gateway.client() as browser:
        late = await browser.get(link)
    assert late.status_code == 410 and "deleted" in late.text and CANARY not in late.text
    assert count(gateway.db, SessionRow) == 0


async def test_the_case_is_shown_and_answered_only_in_an_open_session(
    gateway: GatewayApp,
) -> None:
    gateway.offer("ref-4")
    link = gateway.link("ref-4")
    async with gateway.client() as stranger:
        nobody = await stranger.get("/portal/case")
        blind = await stranger.post("/portal/case", data={"csrf": "x", "action": "accept"})
    async with gateway.client() as browser:
        csrf = await opened(browser, link)
        gateway.clock.now += timedelta(minutes=30, seconds=1)  # the session lasts 30 minutes
        ended = await browser.get("/portal/case")
        late = await browser.post("/portal/case", data={"csrf": csrf, "action": "accept"})
    for refused in (nobody, blind, ended, late):
        assert refused.status_code == 401 and "no open session" in refused.text
        assert CANARY not in refused.text
    assert count(gateway.db, OutboxRow) == 0


async def test_a_case_deleted_while_its_session_is_open_is_gone(gateway: GatewayApp) -> None:
    """A deletion ends the case's sessions (handlers.forget); should one outlive it all the
    same, the page tells that the data are deleted, and shows none."""
    gateway.offer("ref-5")
    link = gateway.link("ref-5")
    async with gateway.client() as browser:
        await opened(browser, link)

        def deleted_alone(session: Any) -> None:
            case = session.get(CaseRow, "ref-5")
            case.sealed_case, case.deleted_at = None, gateway.clock()
            session.add(case)

        gateway.db.run_sync(deleted_alone)
        gone = await browser.get("/portal/case")
    assert gone.status_code == 410 and "gelöscht" in gone.text and CANARY not in gone.text


@pytest.mark.parametrize(
    ("form", "status", "said"),
    [
        ({"csrf": "x", "action": "accept"}, 403, "the form is out of date"),
        ({"action": "reject", "reason": "need-met"}, 422, "no reason to reject"),
        ({"action": "forward", "reason": "out-of-area"}, 422, "needs the agency to forward to"),
        ({"action": "dance"}, 422, "action"),
        ({"action": "accept", "comment": "x" * 2001}, 422, "comment"),
        ({"action": "forward", "reason": "out-of-area", "forward_to": "x" * 65}, 422, "forward_to"),
        ({"action": None}, 422, "action"),
        ({"csrf": None, "action": "accept"}, 422, "csrf"),
    ],
)
async def test_a_portal_answer_the_form_or_the_rules_refuse_is_not_taken(
    gateway: GatewayApp, form: dict[str, str | None], status: int, said: str
) -> None:
    gateway.offer("ref-6")
    async with gateway.client() as browser:
        csrf = await opened(browser, gateway.link("ref-6"))
        sent = {k: v for k, v in ({"csrf": csrf} | form).items() if v is not None}
        refused = await browser.post("/portal/case", data=sent)
    assert refused.status_code == status and said in refused.text, refused.text
    assert count(gateway.db, OutboxRow) == 0


async def test_a_portal_comment_for_an_office_without_a_key_on_file_is_refused(
    gateway: GatewayApp,
) -> None:
    gateway.offer("ref-7", office="office-2")  # its signing key alone on file, none to seal to
    async with gateway.client() as browser:
        csrf = await opened(browser, gateway.link("ref-7"))
        form = {"csrf": csrf, "action": "reject", "reason": "out-of-area"}
        refused = await browser.post("/portal/case", data={**form, "comment": "Try Schwerin"})
        plain = await browser.post("/portal/case", data=form)
    assert refused.status_code == 422 and "no sealing key of office" in refused.text
    assert plain.status_code == 303  # the same answer without a comment is taken
    assert count(gateway.db, OutboxRow) == 1


async def test_a_portal_path_takes_get_alone(gateway: GatewayApp) -> None:
    gateway.offer("ref-8")
    link = gateway.link("ref-8")
    async with gateway.client() as browser:
        refused = [await browser.request(m, link) for m in ("POST", "PUT", "DELETE")]
        still = await browser.get(link)
    for answer in refused:
        assert answer.status_code == 405 and answer.headers["allow"] == "GET"
    assert still.status_code == 303  # not used up by the refused calls

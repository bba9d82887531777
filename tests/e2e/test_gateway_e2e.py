"""Agencies without a NATS client, through the running system: by e-mail (notice, one-time
link, portal, deletion) and by webhook (signed offers, callbacks taken once)."""

from __future__ import annotations

import email
import json
import re
import stat
import uuid
from email import policy
from email.message import Message
from pathlib import Path

import httpx
import pytest

from services.gateway import webhook
from tests.support.cli import wegweiser
from tests.support.system import (
    files_containing,
    office_auth,
    reach_by,
    request_body,
    until_status,
    until_view,
    wait_for,
)

pytestmark = pytest.mark.slow

MAIL_AGENCY = "oa-rechtshilfe-auslaenderinnen"


async def refer(
    office: httpx.AsyncClient, agency: str, need: str, **fields: str
) -> tuple[str, str]:
    """Record a request with consent for exactly this agency and send it there; the referral
    and the consent."""
    consent = {**request_body()["consent"], "recipients": [{"agency_id": agency}]}
    body = request_body(needs=[need], consent=consent, **fields)
    request = (await office.post("/requests", json=body)).json()
    path = f"/requests/{request['request_id']}/referrals"
    sent = await office.post(path, json={"agency_id": agency})
    assert sent.status_code == 202, sent.text
    return str(sent.json()["referral_id"]), str(request["consent_id"])


def notices(system) -> list[tuple[Path, Message]]:
    """The notices written so far to the development mail folder (the agency's mailbox)."""
    folder = system.data_dir / "mail"
    found = sorted(folder.glob("*.eml")) if folder.exists() else []
    return [
        (path, email.message_from_bytes(path.read_bytes(), policy=policy.default)) for path in found
    ]


def link_in(message: Message) -> str:
    (link,) = set(re.findall(r"http://\S+/portal/[A-Za-z0-9_-]+", message_text(message)))
    return link


def message_text(message: Message) -> str:
    return message.get_payload(decode=True).decode()  # type: ignore[union-attr]


async def test_an_email_agency_answers_in_the_portal_and_after_its_deletion_sees_nothing(system):
    async with httpx.AsyncClient(
        base_url=system.settings.intake_url, auth=office_auth(system)
    ) as office:
        referral, consent = await refer(
            office, MAIL_AGENCY, "legal-aid", client_name="Yara Canary-2231"
        )
        await until_status(office, referral, "requested")

        async def mailed() -> list[tuple[Path, Message]]:
            return notices(system)

        ((path, message),) = await wait_for(mailed)
        assert referral in message["Subject"] and "Canary-2231" not in message.as_string()
        link = link_in(message)
        token = link.rsplit("/", 1)[1].encode()
        # the token is in the mailbox alone: the gateway keeps its hash, the mail outbox what
        # link to make
        assert files_containing(system.data_dir, token) == [str(path)]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

        async with httpx.AsyncClient() as agency:
            page = await agency.get(link, follow_redirects=True)
            assert page.status_code == 200 and "Yara Canary-2231" in page.text
            assert page.headers["cache-control"] == "no-store"
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
            found = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert found is not None
            csrf = found.group(1)
            answered = await agency.post(
                str(page.url), data={"csrf": csrf, "action": "accept"}, follow_redirects=True
            )
            assert answered.status_code == 200 and "accept" in answered.text
            assert (await agency.get(link)).status_code == 410
        view = await until_status(office, referral, "accepted")
        assert [t["kind"] for t in view["trail"]][:2] == ["requested-by-office", "offered"]

        # the person withdraws the consent; the agency confirms the deletion in the portal
        withdrawn = await office.post(f"/consents/{consent}/withdraw")
        assert withdrawn.status_code == 200, withdrawn.text

        async def asked_to_delete() -> Message | None:
            asked = [m for _, m in notices(system) if "Bitte Daten löschen" in m["Subject"]]
            return asked[0] if asked else None

        deletion_link = link_in(await wait_for(asked_to_delete))
        async with httpx.AsyncClient() as agency:
            page = await agency.get(deletion_link, follow_redirects=True)
            assert "Yara Canary-2231" in page.text  # what it is asked to delete
            found = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert found is not None
            csrf = found.group(1)
            await agency.post(str(page.url), data={"csrf": csrf, "action": "confirm-deletion"})

            async def forgotten() -> httpx.Response | None:
                shown = await agency.get(str(page.url))
                return shown if shown.status_code != 200 else None

            after = await wait_for(forgotten)  # the gateway forgot the case and the session
            assert after.status_code == 401 and "Canary" not in after.text
        # the confirmation travels from the gateway through the referral service to intake
        await until_view(office, referral, status="cancelled", deletion="deletion-confirmed")
        async with httpx.AsyncClient() as stranger:  # a link mailed before still opens nothing
            unused = {link_in(m) for _, m in notices(system)} - {link, deletion_link}
            assert unused  # the notices of the acceptance and the cancellation
            for old_link in unused:
                late = await stranger.get(old_link)
                assert late.status_code == 410 and "deleted" in late.text
                assert "Canary" not in late.text


WEBHOOK_AGENCY = "lup-iq-anerkennung"


async def test_a_webhook_agency_gets_signed_offers_and_answers_through_the_callback(
    system_factory, endpoint, tmp_path
):
    ca = tmp_path / "ca.pem"
    endpoint.ca.cert_pem.write_to_path(str(ca))
    system = system_factory(
        WEGWEISER_GATEWAY_REFRESH_EVERY="0.5", WEGWEISER_WEBHOOK_CA_FILE=str(ca)
    )
    reach_by(system, WEBHOOK_AGENCY, "webhook", endpoint.url, tmp_path)
    issued, err = wegweiser(system, "agency", "credentials", WEBHOOK_AGENCY).communicate(timeout=60)
    found = re.search(r"(whsec_\S+)", issued)
    assert found is not None
    secret = found.group(1)
    found = re.search(r"answers go to: (\S+)", issued)
    assert found is not None
    callback = found.group(1)
    assert callback.startswith(system.settings.gateway_url)

    async with httpx.AsyncClient(
        base_url=system.settings.intake_url, auth=office_auth(system)
    ) as office:
        referral, _ = await refer(office, WEBHOOK_AGENCY, "recognition")

        async def offered():
            return [(h, b) for h, b in endpoint.taken() if referral.encode() in b]

        ((headers, delivered),) = await wait_for(offered, timeout=60)
        webhook.verify(secret, delivered, headers)  # as the agency's software checks it
        offer = json.loads(delivered)
        assert offer["type"].startswith("de.wegweiser.referral.offered")
        assert "Canary" not in delivered.decode() and offer["data"]["case"]["jwe"]

        answer = json.dumps(
            {"referral_id": referral, "action": "acknowledge", "answer_id": "ack-1"}
        )
        async with httpx.AsyncClient() as agency:
            forged = webhook.signed_headers(webhook.new_secret(), "a-1", answer)
            assert (await agency.post(callback, content=answer, headers=forged)).status_code == 401
            signed = webhook.signed_headers(secret, "a-2", answer)
            assert (await agency.post(callback, content=answer, headers=signed)).status_code == 202
            replayed = await agency.post(callback, content=answer, headers=signed)
            assert replayed.status_code == 409, replayed.text
            assert replayed.json()["detail"].startswith("callback.replayed")
        await until_status(office, referral, "received")

        # revoked: within the gateway's next look at the directory, its answers are refused
        revoked, err = wegweiser(system, "agency", "revoke", WEBHOOK_AGENCY).communicate(timeout=60)
        assert "revoked" in revoked, err
        accept = json.dumps({"referral_id": referral, "action": "accept", "answer_id": "acc-1"})

        async def refused() -> bool:
            headers = webhook.signed_headers(secret, f"a-{uuid.uuid4()}", accept)  # a new try
            async with httpx.AsyncClient() as agency:
                answered = await agency.post(callback, content=accept, headers=headers)
            assert answered.status_code in (200, 202, 401, 404), answered.text
            return answered.status_code in (401, 404)

        await wait_for(refused, timeout=30)

"""An agency with e-mail only, through the running system: notice, one-time link, portal."""

from __future__ import annotations

import email
import json
import re

import httpx
import pytest

from services.directory.sample import SAMPLE_PATH
from services.gateway import webhook
from tests.e2e.conftest import office_auth, request_body, until_status, wait_for
from tests.e2e.test_cli_e2e import wegweiser

pytestmark = pytest.mark.slow

MAIL_AGENCY = "oa-rechtshilfe-auslaenderinnen"


async def refer(office: httpx.AsyncClient, agency: str, need: str, **fields: str) -> str:
    """Record a request with consent for exactly this agency and send it there; the referral."""
    consent = {**request_body()["consent"], "recipients": [{"agency_id": agency}]}
    body = request_body(needs=[need], consent=consent, **fields)
    request = (await office.post("/requests", json=body)).json()
    path = f"/requests/{request['request_id']}/referrals"
    sent = await office.post(path, json={"agency_id": agency})
    assert sent.status_code == 202, sent.text
    return str(sent.json()["referral_id"])


async def test_an_email_agency_gets_a_notice_opens_it_once_and_accepts_in_the_portal(system):
    async with httpx.AsyncClient(
        base_url=system.settings.intake_url, auth=office_auth(system)
    ) as office:
        referral = await refer(office, MAIL_AGENCY, "legal-aid", client_name="Yara Canary-2231")
        await until_status(office, referral, "requested")

        mail_dir = system.data_dir / "mail"

        async def notice():
            found = sorted(mail_dir.glob("*.eml")) if mail_dir.exists() else []
            return found[0] if found else None

        message = email.message_from_bytes((await wait_for(notice)).read_bytes())
        text = message.get_payload(decode=True).decode()
        assert referral in message["Subject"] and "Canary-2231" not in message.as_string()
        (link,) = set(re.findall(r"http://\S+/portal/[A-Za-z0-9_-]+", text))

        async with httpx.AsyncClient() as agency:
            page = await agency.get(link, follow_redirects=True)
            assert page.status_code == 200 and "Yara Canary-2231" in page.text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            answered = await agency.post(
                str(page.url), data={"csrf": csrf, "action": "accept"}, follow_redirects=True
            )
            assert answered.status_code == 200 and "accept" in answered.text
            assert (await agency.get(link)).status_code == 410
        view = await until_status(office, referral, "accepted")
        assert [t["kind"] for t in view["trail"]][:2] == ["requested-by-office", "offered"]


WEBHOOK_AGENCY = "lup-iq-anerkennung"


async def test_a_webhook_agency_gets_signed_offers_and_answers_through_the_callback(
    system_factory, endpoint, tmp_path
):
    ca = tmp_path / "ca.pem"
    endpoint.ca.cert_pem.write_to_path(str(ca))
    system = system_factory(
        WEGWEISER_GATEWAY_REFRESH_EVERY="0.5", WEGWEISER_WEBHOOK_CA_FILE=str(ca)
    )
    directory = json.loads(SAMPLE_PATH.read_text(encoding="utf-8"))
    for service in directory["services"]:
        if service["wegweiser"]["agency_id"] == WEBHOOK_AGENCY:
            service["wegweiser"]["referral"] = {"adapter": "webhook", "address": endpoint.url}
    changed = tmp_path / "directory.json"
    changed.write_text(json.dumps(directory, ensure_ascii=False), encoding="utf-8")
    imported, err = wegweiser(system, "directory", "import", str(changed)).communicate(timeout=60)
    assert "0 created, 1 updated" in imported, err
    issued, err = wegweiser(system, "agency", "credentials", WEBHOOK_AGENCY).communicate(timeout=60)
    secret = re.search(r"(whsec_\S+)", issued).group(1)
    callback = re.search(r"answers go to: (\S+)", issued).group(1)
    assert callback.startswith(system.settings.gateway_url)

    async with httpx.AsyncClient(
        base_url=system.settings.intake_url, auth=office_auth(system)
    ) as office:
        referral = await refer(office, WEBHOOK_AGENCY, "recognition")

        async def offered():
            return [(h, b) for h, b in endpoint.taken() if referral.encode() in b]

        ((headers, delivered),) = await wait_for(offered, timeout=60)
        webhook.verify(secret, delivered, headers)  # as the agency's software checks it
        offer = json.loads(delivered)
        assert offer["type"].startswith("de.wegweiser.referral.offered")
        assert "Canary" not in delivered.decode() and offer["data"]["case"]["jwe"]

        answer = json.dumps({"referral_id": referral, "action": "acknowledge"})
        async with httpx.AsyncClient() as agency:
            forged = webhook.signed_headers(webhook.new_secret(), "a-1", answer)
            assert (await agency.post(callback, content=answer, headers=forged)).status_code == 401
            signed = webhook.signed_headers(secret, "a-2", answer)
            assert (await agency.post(callback, content=answer, headers=signed)).status_code == 202
        await until_status(office, referral, "received")

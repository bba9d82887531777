"""An agency with e-mail only, through the running system: notice, one-time link, portal."""

from __future__ import annotations

import email
import re

import httpx
import pytest

from tests.e2e.conftest import request_body, until_status, wait_for

pytestmark = pytest.mark.slow

MAIL_AGENCY = "oa-rechtshilfe-auslaenderinnen"


async def test_an_email_agency_gets_a_notice_opens_it_once_and_accepts_in_the_portal(system):
    body = request_body(
        needs=["legal-aid"],
        client_name="Yara Canary-2231",
        consent={
            **request_body()["consent"],
            "recipients": [{"agency_id": MAIL_AGENCY}],
        },
    )
    async with httpx.AsyncClient(base_url=system.settings.intake_url) as office:
        request = (await office.post("/requests", json=body)).json()
        sent = await office.post(
            f"/requests/{request['request_id']}/referrals", json={"agency_id": MAIL_AGENCY}
        )
        assert sent.status_code == 202, sent.text
        referral = sent.json()["referral_id"]
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

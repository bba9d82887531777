"""The request page under a legal deadline: the counsellor sees the deadline, and once its
alert has come with no agency accepting, a warning to send to another agency. Intake and the
web app in this process."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from services.web.accounts import Role
from tests.support.web import WebApp
from wegweiser.demo import sample_request

OFFICE = "lup-integration-office"
WARNING = "noch keine Stelle hat angenommen"
AGENCY = "lup-mbe-ludwigslust"


async def under_deadline(office: httpx.AsyncClient, days_left: int) -> str:
    ends_on = datetime.now(ZoneInfo("Europe/Berlin")).date() + timedelta(days=days_left)
    body = sample_request(
        client_reference=f"frist-{days_left}",
        legal_deadline={"kind": "objection-1m", "land": "MV", "ends_on": ends_on.isoformat()},
    )
    recorded = await office.post("/requests", json=body)
    assert recorded.status_code == 201, recorded.text
    return str(recorded.json()["request_id"])


async def next_to_try(office: httpx.AsyncClient, request_id: str) -> list[str]:
    found = await office.get(f"/requests/{request_id}/suggestions")
    assert found.status_code == 200, found.text
    return list(found.json()["next_to_try"])


async def test_the_page_shows_the_deadline_and_warns_once_it_is_close_and_nobody_accepted(
    web: WebApp, office: httpx.AsyncClient
) -> None:
    counsellor = web.signed_in("berater", Role.COUNSELLOR, OFFICE)
    try:
        far = await counsellor.http.get(f"/office/requests/{await under_deadline(office, 40)}")
        assert far.status_code == 200
        assert "Rechtliche Frist" in far.text and "Widerspruch: 1 Monat" in far.text
        assert WARNING not in far.text
        near_id = await under_deadline(office, 0)
        near = await counsellor.http.get(f"/office/requests/{near_id}")
        assert WARNING in near.text
        offered = await next_to_try(office, near_id)
        assert AGENCY in offered and len(offered) <= 3
        banner = near.text.split('id="needs-another-agency"')[1].split("</div>")[0]
        assert banner.count("Jetzt senden an") == len(offered)  # one action for each
        assert f'name="agency_id" value="{AGENCY}"' in banner
        sent = await office.post(f"/requests/{near_id}/referrals", json={"agency_id": AGENCY})
        assert sent.status_code == 202, sent.text
        assert AGENCY not in await next_to_try(office, near_id)  # asked once, not offered again
        ends = datetime.now(ZoneInfo("Europe/Berlin")).date().isoformat()
        listed = await counsellor.http.get("/office/referrals")
        assert f"Frist {ends}" in listed.text
    finally:
        await counsellor.http.aclose()

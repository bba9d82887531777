"""Language as a bridge (issue 18, part 5): a Farsi-only speaker who needs migration
counselling in Ludwigslust is offered the best agencies together with the county's
interpreting pool, and the counsellor sends both with one tick; an interpreter the consent does
not cover is shown with the reason and not sent. Intake and the web app in this process, the
directory's own handlers answering from the sample directory."""

from __future__ import annotations

import httpx

from services.web.accounts import Role
from tests.support.web import WebApp
from wegweiser.demo import sample_request

OFFICE = "lup-integration-office"
MBE, POOL = "lup-mbe-ludwigslust", "lup-sprachmittlerpool"


async def farsi_only(office: httpx.AsyncClient, *kinds: str) -> str:
    body = sample_request(client_reference="farsi-1", languages=["fa"])
    body["consent"]["recipients"] = [{"kind": kind} for kind in kinds]
    recorded = await office.post("/requests", json=body)
    assert recorded.status_code == 201, recorded.text
    return str(recorded.json()["request_id"])


async def test_no_agency_speaks_farsi_so_the_best_come_with_the_interpreting_pool(
    office: httpx.AsyncClient,
) -> None:
    request_id = await farsi_only(office, "migration-counselling", "interpreting")
    found = (await office.get(f"/requests/{request_id}/suggestions")).json()
    assert found["suggestions"] == []
    first = found["bridges"][0]
    assert first["candidate"]["agency"]["agency_id"] == MBE and first["sendable"]
    assert first["interpreter"]["candidate"]["agency"]["agency_id"] == POOL
    assert first["interpreter"]["sendable"] and first["interpreter"]["consent_covers"]
    [bridged] = [r for r in first["candidate"]["reasons"] if r["code"] == "language.bridged"]
    assert bridged["facts"]["interpreter"] == POOL and bridged["facts"]["languages"] == ["fa"]


async def test_an_interpreter_the_consent_does_not_cover_is_shown_with_the_reason(
    web: WebApp, office: httpx.AsyncClient
) -> None:
    request_id = await farsi_only(office, "migration-counselling")
    found = (await office.get(f"/requests/{request_id}/suggestions")).json()
    interpreter = found["bridges"][0]["interpreter"]
    assert not interpreter["sendable"] and not interpreter["consent_covers"]
    assert interpreter["not_sendable"]["code"] == "consent.not-covered"
    counsellor = web.signed_in("berater", Role.COUNSELLOR, OFFICE)
    page = (await counsellor.http.get(f"/office/requests/{request_id}")).text
    assert f'value="{MBE}"' in page and f"{MBE}+{POOL}" not in page  # the agency alone
    assert "nicht von der Einwilligung gedeckt" in page
    await counsellor.http.aclose()


async def test_one_tick_sends_the_agency_and_its_interpreter(
    web: WebApp, office: httpx.AsyncClient
) -> None:
    request_id = await farsi_only(office, "migration-counselling", "interpreting")
    counsellor = web.signed_in("berater", Role.COUNSELLOR, OFFICE)
    page = await counsellor.http.get(f"/office/requests/{request_id}")
    assert page.status_code == 200
    assert f'value="{MBE}+{POOL}"' in page.text and "Mit Sprachmittlung" in page.text
    assert (
        "Kulturmittlerpool" in page.text and "dolmetscht Persisch (Farsi) und Deutsch" in page.text
    )
    sent = await counsellor.post(
        f"/office/requests/{request_id}/referrals", agency_id=f"{MBE}+{POOL}"
    )
    assert sent.status_code == 303, sent.text
    referrals = (await office.get(f"/requests/{request_id}/referrals")).json()
    assert sorted(r["agency_id"] for r in referrals) == [MBE, POOL]
    again = await counsellor.http.get(f"/office/requests/{request_id}")
    assert f'value="{MBE}+{POOL}"' not in again.text  # both sent: nothing left to tick
    await counsellor.http.aclose()

"""The person's own page (issue 18, part 4): intake's API for it and the web app's pages, both
in this process on real SQLite stores. The person sees what was shared with whom and where each
referral stands, in their language; withdraws (as the office's withdrawal does, audited as
theirs); takes their data away; and nobody without their token learns anything: unknown,
replaced, erased and malformed tokens are answered alike, guesses are throttled, the token
rests only as a hash, and an office's credential is no key to a person's page nor the
reverse."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from schemas import subjects
from schemas.envelope import new_event
from schemas.events import ReferralAccepted, ReferralForwarded
from schemas.vocabulary import ReasonCode, ReferralStatus
from services.intake import retention
from services.intake.store import PersonLink
from services.web.accounts import Role
from services.web.clients import IntakeClient
from tests.support.intake import IntakeApp
from tests.support.web import Browser, WebApp
from wegweiser.demo import sample_request

OFFICE, OTHER_OFFICE = "lup-integration-office", "oa-integration-office"
AGENCY = "lup-mbe-ludwigslust"


@pytest.fixture
async def anyone(intake: IntakeApp) -> AsyncIterator[httpx.AsyncClient]:
    async with intake.client() as client:
        yield client


@pytest.fixture
async def person_browser(web: WebApp) -> AsyncIterator[httpx.AsyncClient]:
    async with web.anonymous() as browser:
        yield browser


async def a_request(office: httpx.AsyncClient, reference: str = "client-7") -> dict[str, str]:
    """A request with its consent, sent to one agency which accepted it."""
    recorded = await office.post("/requests", json=sample_request(client_reference=reference))
    assert recorded.status_code == 201, recorded.text
    ids = recorded.json()
    sent = await office.post(f"/requests/{ids['request_id']}/referrals", json={"agency_id": AGENCY})
    assert sent.status_code == 202, sent.text
    return {**ids, "referral_id": sent.json()["referral_id"]}


def accept(intake: IntakeApp, ids: dict[str, str]) -> None:
    accepted = ReferralAccepted(
        referral_id=ids["referral_id"],
        request_id=ids["request_id"],
        agency_id=AGENCY,
        status=ReferralStatus.ACCEPTED,
        version=2,
        occurred_at=datetime.now(UTC),
    )
    event = new_event(accepted, source="/wegweiser/referral", subject=ids["referral_id"])
    intake.project(subjects.referral_event(AGENCY, "accepted"), event)


async def link(office: httpx.AsyncClient, consent_id: str, language: str = "uk") -> str:
    issued = await office.post(f"/consents/{consent_id}/person-link", json={"language": language})
    assert issued.status_code == 201, issued.text
    return str(issued.json()["token"])


def as_person(token: str) -> dict[str, str]:
    return {"X-Person-Token": token}


# --- intake's API ----------------------------------------------------------------------------


async def test_the_person_sees_what_went_to_whom_and_where_it_stands(
    intake: IntakeApp, office: httpx.AsyncClient, anyone: httpx.AsyncClient
) -> None:
    ids = await a_request(office)
    accept(intake, ids)
    token = await link(office, ids["consent_id"])
    page = await anyone.get("/person", headers=as_person(token))
    assert page.status_code == 200, page.text
    found = page.json()
    assert found["consent_id"] == ids["consent_id"] and found["language"] == "uk"
    assert found["withdrawn_at"] is None
    [recipient] = found["recipients"]
    assert recipient["kind"] == "migration-counselling" and "contact" in recipient["categories"]
    [referral] = found["referrals"]
    assert referral["agency_id"] == AGENCY and referral["status"] == "accepted"
    assert "client-7" not in page.text and "+49" not in page.text  # no personal data on it


async def test_every_wrong_token_gets_the_same_answer(
    intake: IntakeApp, office: httpx.AsyncClient, anyone: httpx.AsyncClient
) -> None:
    ids = await a_request(office)
    replaced = await link(office, ids["consent_id"])
    live = await link(office, ids["consent_id"])  # a new receipt: the earlier link is dead
    erased_ids = await a_request(office, "client-8")
    erased = await link(office, erased_ids["consent_id"])
    intake.db.run_sync(
        lambda s: retention.erase(
            s, vault=intake.offices[OFFICE].vault, request_id=erased_ids["request_id"]
        )
    )
    answers = []
    for wrong in [replaced, erased, live[:-1] + ("A" if live[-1] != "A" else "B"), "x", "!" * 300]:
        for path in ("/person", "/person/data"):
            response = await anyone.get(path, headers=as_person(wrong))
            answers.append((response.status_code, response.json()["code"]))
        response = await anyone.post("/person/withdraw", headers=as_person(wrong))
        answers.append((response.status_code, response.json()["code"]))
    assert set(answers) == {(404, "person.unknown-link")}
    assert (await anyone.get("/person")).status_code == 401
    assert (await anyone.get("/person", headers=as_person(live))).status_code == 200
    detail = (await office.get(f"/requests/{ids['request_id']}")).json()
    assert detail["consent_withdrawn_at"] is None  # no wrong token withdrew anything


async def test_a_new_link_is_an_event_for_the_audit_without_its_token(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    ids = await a_request(office)
    first = await link(office, ids["consent_id"])
    second = await link(office, ids["consent_id"])
    issued = intake.staged_events(subjects.PERSON_LINK_ISSUED)
    assert [e["data"]["consent_id"] for e in issued] == [ids["consent_id"]] * 2
    assert {e["data"]["office_id"] for e in issued} == {OFFICE}
    assert first not in str(issued) and second not in str(issued)


async def test_the_token_rests_only_as_its_hash(
    intake: IntakeApp, office: httpx.AsyncClient, tmp_path: Path
) -> None:
    ids = await a_request(office)
    token = await link(office, ids["consent_id"])
    intake.db.dispose()  # everything written to the files
    stored = b"".join(p.read_bytes() for p in (tmp_path / "intake").rglob("*") if p.is_file())
    assert token.encode() not in stored
    assert hashlib.sha256(token.encode()).hexdigest().encode() in stored


async def test_a_persons_token_is_no_office_credential_and_an_office_token_opens_no_page(
    office: httpx.AsyncClient, anyone: httpx.AsyncClient
) -> None:
    ids = await a_request(office)
    token = await link(office, ids["consent_id"])
    as_bearer = {"Authorization": f"Bearer {token}"}
    assert (
        await anyone.get(f"/requests/{ids['request_id']}", headers=as_bearer)
    ).status_code == 401
    office_token = office.headers["Authorization"].removeprefix("Bearer ")
    refused = await anyone.get("/person", headers=as_person(office_token))
    assert refused.status_code == 404


async def test_another_office_issues_no_link_to_this_offices_consent(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    ids = await a_request(office)
    async with intake.client(OTHER_OFFICE) as other:
        response = await other.post(
            f"/consents/{ids['consent_id']}/person-link", json={"language": "de"}
        )
    assert response.status_code == 403
    assert intake.count(PersonLink) == 0


async def test_an_unsupported_language_is_refused_naming_the_supported_ones(
    office: httpx.AsyncClient,
) -> None:
    ids = await a_request(office)
    response = await office.post(
        f"/consents/{ids['consent_id']}/person-link", json={"language": "xx"}
    )
    assert response.status_code == 422
    assert "'ti'" in response.text and "'de-x-ls'" in response.text


async def test_the_person_withdraws_once_as_the_office_would_and_it_is_recorded_as_theirs(
    intake: IntakeApp, office: httpx.AsyncClient, anyone: httpx.AsyncClient
) -> None:
    ids = await a_request(office)
    token = await link(office, ids["consent_id"])
    first = await anyone.post("/person/withdraw", headers=as_person(token))
    again = await anyone.post("/person/withdraw", headers=as_person(token))
    assert first.status_code == again.status_code == 200
    assert first.json()["withdrawn_at"] == again.json()["withdrawn_at"] is not None
    [withdrawn] = intake.staged_events(subjects.CONSENT_WITHDRAWN)  # once, not twice
    assert withdrawn["type"] == "de.wegweiser.intake.consent.withdrawn.v2"
    assert withdrawn["data"]["withdrawn_by"] == "person"
    detail = (await office.get(f"/requests/{ids['request_id']}")).json()
    assert detail["consent_withdrawn_at"] is not None and detail["erased"]
    # the page still shows what happened, with no personal data left to show
    page = await anyone.get("/person", headers=as_person(token))
    assert page.status_code == 200 and page.json()["withdrawn_at"] is not None


async def test_download_my_data_holds_the_persons_data_and_nothing_of_anyone_else(
    intake: IntakeApp, office: httpx.AsyncClient, anyone: httpx.AsyncClient
) -> None:
    mine = await a_request(office, "client-mine")
    theirs = await a_request(office, "client-theirs")
    accept(intake, theirs)
    token = await link(office, mine["consent_id"])
    data = await anyone.get("/person/data", headers=as_person(token))
    assert data.status_code == 200, data.text
    found = data.json()
    assert found["request"]["client_reference"] == "client-mine"
    assert found["request"]["contact"]["phone"] == "+49 3874 000000"
    assert found["consent"]["consentReceiptID"] == mine["consent_id"]
    assert [r["referral_id"] for r in found["referrals"]] == [mine["referral_id"]]
    for other in ("client-theirs", theirs["request_id"], theirs["referral_id"]):
        assert other not in data.text


# --- the web app's pages ---------------------------------------------------------------------


async def test_the_person_sees_a_forward_as_a_pass_to_another_agency_in_their_language(
    intake: IntakeApp, office: httpx.AsyncClient, person_browser: httpx.AsyncClient
) -> None:
    ids = await a_request(office)
    forwarded = ReferralForwarded(
        referral_id=ids["referral_id"],
        request_id=ids["request_id"],
        agency_id=AGENCY,
        status=ReferralStatus.FORWARDED,
        version=3,
        occurred_at=datetime.now(UTC),
        reason=ReasonCode.OUT_OF_AREA,
        forward_to="lup-mbe-parchim",
        forwarded_to="ref-next",
    )
    event = new_event(forwarded, source="/wegweiser/referral", subject=ids["referral_id"])
    intake.project(subjects.referral_event(AGENCY, "forwarded"), event)
    token = await link(office, ids["consent_id"], "tr")
    page = await person_browser.get(f"/p/{token}")
    assert page.status_code == 200, page.text
    assert "başka bir kuruma iletildi" in page.text and "forwarded" not in page.text


async def test_the_page_speaks_the_persons_language_and_is_kept_from_search_engines(
    intake: IntakeApp, office: httpx.AsyncClient, person_browser: httpx.AsyncClient
) -> None:
    ids = await a_request(office)
    accept(intake, ids)
    token = await link(office, ids["consent_id"], "fa")
    page = await person_browser.get(f"/p/{token}")
    assert page.status_code == 200, page.text
    assert '<html lang="fa" dir="rtl">' in page.text
    assert "رضایت" in page.text and "accepted" not in page.text  # a state in words, no code
    assert page.headers["x-robots-tag"].startswith("noindex")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    ukrainian = await person_browser.get(f"/p/{token}?language=uk")
    assert '<html lang="uk" dir="ltr">' in ukrainian.text and "згод" in ukrainian.text
    unknown = await person_browser.get(f"/p/{token}?language=xx")
    assert unknown.status_code == 422 and "Kurmancî" in unknown.text and "(xx)" in unknown.text
    robots = await person_browser.get("/robots.txt")
    assert robots.text == "User-agent: *\nDisallow: /\n"


async def test_a_wrong_link_gets_one_page_and_repeated_guesses_wait(
    office: httpx.AsyncClient, person_browser: httpx.AsyncClient
) -> None:
    ids = await a_request(office)
    token = await link(office, ids["consent_id"])
    bodies = set()
    for guess in range(10):
        wrong = await person_browser.get(f"/p/guess-{guess}")
        assert wrong.status_code == 404
        bodies.add(wrong.text)
    assert len(bodies) == 1
    throttled = await person_browser.get(f"/p/{token}")  # even the right one waits now
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1


async def test_the_person_withdraws_on_the_page_after_confirming_and_the_office_sees_it(
    intake: IntakeApp,
    web: WebApp,
    office: httpx.AsyncClient,
    person_browser: httpx.AsyncClient,
) -> None:
    ids = await a_request(office)
    token = await link(office, ids["consent_id"], "uk")
    confirm = await person_browser.get(f"/p/{token}/withdraw")
    assert confirm.status_code == 200 and 'method="post"' in confirm.text
    assert (await office.get(f"/requests/{ids['request_id']}")).json()[
        "consent_withdrawn_at"
    ] is None
    foreign = await person_browser.post(
        f"/p/{token}/withdraw", headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    cross_site = await person_browser.post(
        f"/p/{token}/withdraw", headers={"Sec-Fetch-Site": "cross-site", "Origin": "null"}
    )
    assert cross_site.status_code == 403
    assert (await office.get(f"/requests/{ids['request_id']}")).json()[
        "consent_withdrawn_at"
    ] is None
    done = await person_browser.post(f"/p/{token}/withdraw?language=uk")
    assert done.status_code == 303 and done.headers["location"] == f"/p/{token}?language=uk"
    page = await person_browser.get(done.headers["location"])
    assert "відклик" in page.text.lower() and "/withdraw" not in page.text
    counsellor: Browser = web.signed_in("berater", Role.COUNSELLOR, OFFICE)
    seen = await counsellor.http.get(f"/office/requests/{ids['request_id']}")
    assert seen.status_code == 200
    assert intake.staged_events(subjects.CONSENT_WITHDRAWN)[0]["data"]["withdrawn_by"] == "person"


async def test_my_data_page_says_everything_in_words_and_the_file_is_json(
    office: httpx.AsyncClient, person_browser: httpx.AsyncClient
) -> None:
    ids = await a_request(office)
    token = await link(office, ids["consent_id"], "de")
    page = await person_browser.get(f"/p/{token}/data")
    assert page.status_code == 200
    assert "Migrationsberatung" in page.text and "Aufenthaltserlaubnis" in page.text
    for code in ("migration-counselling", "residence-permit", ">sms<"):
        assert code not in page.text
    assert "+49 3874 000000" in page.text
    assert "Ludwigslust (<bdi" in page.text  # the place by name, with its key
    file = await person_browser.get(f"/p/{token}/data.json")
    assert file.headers["content-disposition"].startswith("attachment")
    assert file.json()["request"]["client_reference"] == "client-7"


async def test_the_counsellor_prints_the_receipt_with_the_link_and_its_qr_code(
    web: WebApp, office: httpx.AsyncClient, person_browser: httpx.AsyncClient
) -> None:
    ids = await a_request(office)
    counsellor = web.signed_in("berater", Role.COUNSELLOR, OFFICE)
    unknown = await counsellor.http.get(f"/office/consents/{ids['consent_id']}/receipt?language=xx")
    assert unknown.status_code == 422 and "Tigrinya" not in unknown.text and "ትግርኛ" in unknown.text
    plain = await counsellor.http.get(f"/office/consents/{ids['consent_id']}/receipt?language=ar")
    assert plain.status_code == 200 and "<svg" not in plain.text
    assert 'lang="ar" dir="rtl"' in plain.text and 'lang="de" dir="ltr"' in plain.text
    printed = await counsellor.post(f"/office/consents/{ids['consent_id']}/receipt", language="ar")
    assert printed.status_code == 200, printed.text
    assert printed.text.count("<svg") == 2 and "Ihre eigene Seite" in printed.text  # ar, de
    [token] = set(re.findall(r"/p/([A-Za-z0-9_-]{20,})", printed.text))
    page = await person_browser.get(f"/p/{token}")
    assert page.status_code == 200 and '<html lang="ar" dir="rtl">' in page.text
    forged = await counsellor.http.post(
        f"/office/consents/{ids['consent_id']}/receipt", data={"language": "ar"}
    )
    assert forged.status_code == 403  # no CSRF token: no new link
    assert (await person_browser.get(f"/p/{token}")).status_code == 200


async def test_a_malformed_link_or_an_unreachable_intake_gets_the_persons_own_page(
    intake: IntakeApp, web: WebApp, office: httpx.AsyncClient, person_browser: httpx.AsyncClient
) -> None:
    unknown = await person_browser.get("/p/" + "A" * 22)
    malformed = await person_browser.get("/p/%C3%A4bc")  # not even ASCII: never sent on
    assert unknown.status_code == malformed.status_code == 404
    assert malformed.text == unknown.text
    ids = await a_request(office)
    token = await link(office, ids["consent_id"], "ar")
    web.web.intake = IntakeClient("http://127.0.0.1:9", intake.add_client(OFFICE))
    down = await person_browser.get(f"/p/{token}?language=ar")
    assert down.status_code == 503 and 'dir="rtl"' in down.text
    assert "127.0.0.1" not in down.text and down.headers["x-robots-tag"].startswith("noindex")

"""Intake's HTTP API in this process on a real SQLite store, with the real directory's answers:
bad input gets a precise error and changes nothing, and every door checks who knocks (no
token, a forged one, another office's, a revoked client, a foreign Host or Origin).

What needs the processes (the directory gone, poison events, the command line) stays in
tests/e2e."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlmodel import select

from schemas import subjects
from schemas.envelope import new_event
from schemas.events import ReferralAccepted
from schemas.vocabulary import ReferralStatus
from services.consent import texts
from services.intake import access
from services.intake.store import ConsentRow, ReferralView, RequestRow
from tests.support.intake import HOST, IntakeApp
from wegweiser.demo import sample_request
from wegweiser.platform.outbox import OutboxRow

OFFICE, OTHER_OFFICE = "lup-integration-office", "oa-integration-office"
AGENCY = "lup-mbe-ludwigslust"
PARCHIM = "lup-mbe-parchim"
PUBLIC = {"/health", "/token", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"}
PERSON = {"/person", "/person/withdraw", "/person/data"}
"""The person's page: a person's link token, never an office's (tests/http/test_person_page.py)."""


def request_body(**overrides: object) -> dict:
    return sample_request(**{"client_reference": "client-42", **overrides})


@pytest.fixture
def intake(tmp_path: Path) -> Iterator[IntakeApp]:
    made = IntakeApp(tmp_path, origins=frozenset({"https://web.example"}))
    yield made
    made.dispose()


@pytest.fixture
async def mine(office: httpx.AsyncClient) -> dict[str, str]:
    """A request, consent and referral of the office."""
    request = (await office.post("/requests", json=request_body())).json()
    sent = await office.post(
        f"/requests/{request['request_id']}/referrals", json={"agency_id": AGENCY}
    )
    assert sent.status_code == 202, sent.text
    plan = await office.post(
        f"/requests/{request['request_id']}/plans", json={"agency_ids": [AGENCY, PARCHIM]}
    )
    assert plan.status_code == 202, plan.text
    return {
        "request_id": request["request_id"],
        "consent_id": request["consent_id"],
        "referral_id": sent.json()["referral_id"],
        "plan_id": plan.json()["plan_id"],
    }


def routes(intake: IntakeApp, ids: dict[str, str]) -> list[tuple[str, str]]:
    """Every (method, path) of the API but the public ones, with the office's ids."""
    out = []
    for path, methods in intake.app.openapi()["paths"].items():
        if path in PUBLIC | PERSON:
            continue
        concrete = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
        out += [(method.upper(), concrete) for method in methods]
    assert len(out) >= 10, out
    return out


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"consent": None}, "consent"),
        ({"municipality": "1307609"}, "municipality"),
        ({"needs": ["astrology"]}, "needs.0"),
        ({"age": -1}, "age"),
        ({"surprise": 1}, "surprise"),
        ({"municipality": "99999999"}, "municipality"),  # no Land 99
        ({"municipality": "00000000"}, "municipality"),
        ({"municipality": "13099999"}, "municipality the directory's gazetteer knows no"),
        ({"postcode": "00000", "municipality": None}, "postcode"),
        ({"consent": {"given_at": "2099-01-01T10:00:00+01:00"}}, "consent.given_at"),
        (
            {"consent": {"expires_at": "1990-01-01T10:00:00+01:00"}},
            "consent.expires_at Value error, a consent must expire after it was given",
        ),
        (
            {"consent": {"recipients": [{"kind": "migration-counselling"}, {"agency_id": "nope"}]}},
            "consent.recipients.1.agency_id the directory knows no agency 'nope'",
        ),
        (
            {"municipality": None, "postcode": None},
            "give the person's municipality (AGS) or postcode",
        ),
    ],
)
async def test_a_malformed_request_gets_422_naming_the_field_and_nothing_is_stored(
    intake: IntakeApp, office: httpx.AsyncClient, change: dict, field: str
) -> None:
    consent_change = change.get("consent")
    body = request_body(**{k: v for k, v in change.items() if k != "consent"})
    if "consent" in change and consent_change is None:
        del body["consent"]
    elif consent_change is not None:
        body["consent"] |= consent_change
    response = await office.post("/requests", json=body)
    broken_json = await office.post(
        "/requests", content=b'{"needs": [', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422 and problem["code"] in (
        "request.invalid",
        "request.inadmissible",
    )
    named = [".".join(map(str, e["loc"][1:])) + " " + e["msg"] for e in problem["errors"]]
    assert any(field in n for n in named), named
    assert broken_json.status_code == 422 and "json_invalid" in broken_json.text
    assert intake.count(RequestRow) == intake.count(ConsentRow) == intake.count(OutboxRow) == 0


@pytest.mark.parametrize(
    ("place", "codes"),
    [
        ({"municipality": "13076090", "postcode": "19288"}, []),  # Ludwigslust, its postcode
        ({"municipality": None, "postcode": "19288"}, []),
        ({"municipality": "13076090", "postcode": "19999"}, ["place.unknown-postcode"]),
        ({"municipality": "13076090", "postcode": "19370"}, ["place.postcode-elsewhere"]),
    ],
)
async def test_a_place_the_directory_cannot_be_sure_of_is_recorded_with_a_warning(
    office: httpx.AsyncClient, place: dict, codes: list[str]
) -> None:
    recorded = await office.post("/requests", json=request_body(**place))
    assert recorded.status_code == 201, recorded.text
    warnings = recorded.json()["warnings"]
    assert [w["code"] for w in warnings] == codes
    assert all(w["field"] == "postcode" and w["detail"] for w in warnings)


async def test_referrals_to_unknown_or_uncovered_agencies_are_refused_and_nothing_is_sent(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    expired = request_body()
    expired["consent"]["given_at"] = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    expired["consent"]["expires_at"] = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    request = (await office.post("/requests", json=request_body())).json()
    old = (await office.post("/requests", json=expired)).json()
    send = f"/requests/{request['request_id']}/referrals"
    unknown = await office.post(send, json={"agency_id": "no-such-agency"})
    uncovered = await office.post(send, json={"agency_id": "lup-jobcenter"})
    lapsed = await office.post(
        f"/requests/{old['request_id']}/referrals", json={"agency_id": AGENCY}
    )
    missing = await office.post("/requests/req-nope/referrals", json={"agency_id": AGENCY})
    no_referral = await office.get("/referrals/ref-nope")
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "agency.unknown"
    assert "unknown agency 'no-such-agency'" in unknown.json()["detail"]
    assert uncovered.status_code == 422
    assert uncovered.json()["code"] == "consent.not-covered"
    assert uncovered.json()["detail"].startswith("consent con-")
    assert "does not cover agency lup-jobcenter (kind jobcenter)" in uncovered.json()["detail"]
    assert lapsed.status_code == 422 and "expired at" in lapsed.json()["detail"]
    assert lapsed.json()["code"] == "consent.expired"
    assert missing.status_code == 404 and no_referral.status_code == 404
    assert intake.count(ReferralView) == 0
    assert intake.staged("ww.intake.referral.requested") == 0


async def test_a_referral_sent_twice_to_the_same_agency_is_one_referral(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    request = (await office.post("/requests", json=request_body())).json()
    send = f"/requests/{request['request_id']}/referrals"
    first = await office.post(send, json={"agency_id": AGENCY})
    second = await office.post(send, json={"agency_id": AGENCY})
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["referral_id"] == second.json()["referral_id"]
    assert intake.staged("ww.intake.referral.requested") == 1


async def test_suggestions_come_from_the_directory_with_what_the_consent_covers(
    office: httpx.AsyncClient,
) -> None:
    request = (await office.post("/requests", json=request_body())).json()
    found = (await office.get(f"/requests/{request['request_id']}/suggestions")).json()
    covered = {
        s["candidate"]["agency"]["agency_id"] for s in found["suggestions"] if s["consent_covers"]
    }
    sendable = {
        s["candidate"]["agency"]["agency_id"] for s in found["suggestions"] if s["sendable"]
    }
    assert AGENCY in covered and AGENCY in sendable
    assert found["excluded"], "agencies ruled out are listed with their reasons"


async def test_every_suggestion_marked_sendable_is_sent_and_every_other_refused_with_its_code(
    tmp_path: Path,
) -> None:
    """Suggestions and sending apply one rule: a sendable suggestion is never refused, and
    one that is not says why with the very code sending refuses it with."""
    keyless = IntakeApp(tmp_path / "keyless", without_keys=frozenset({AGENCY}))
    body = request_body(needs=["migration-counselling", "psychosocial", "legal-aid"])
    kinds = ["migration-counselling", "psychosocial", "legal-aid"]
    body["consent"]["recipients"] = [{"kind": kind} for kind in kinds]
    try:
        async with keyless.client(OFFICE) as office:
            request = (await office.post("/requests", json=body)).json()
            found = await office.get(f"/requests/{request['request_id']}/suggestions")
            suggestions = found.json()["suggestions"]
            codes = set()
            for s in suggestions:
                agency_id = s["candidate"]["agency"]["agency_id"]
                sent = await office.post(
                    f"/requests/{request['request_id']}/referrals", json={"agency_id": agency_id}
                )
                if s["sendable"]:
                    assert s["not_sendable"] is None
                    assert sent.status_code in (200, 202), (agency_id, sent.text)
                else:
                    code = s["not_sendable"]["code"]
                    codes.add(code)
                    assert sent.status_code == 422, (agency_id, sent.text)
                    assert sent.json()["code"] == code, sent.text
        assert any(s["sendable"] for s in suggestions)
        # the psychosocial agencies need explicit consent; the MBE has no key on file; the
        # office's own counselling agency is not named by the consent
        assert {"consent.not-explicit", "agency.no-key", "consent.not-covered"} <= codes
        sent_ids = {s["candidate"]["agency"]["agency_id"] for s in suggestions if s["sendable"]}
        assert keyless.count(ReferralView) == len(sent_ids)
    finally:
        keyless.dispose()


async def test_a_double_clicked_cancel_asks_once_and_answers_both_clicks_alike(
    intake: IntakeApp, office: httpx.AsyncClient, mine: dict[str, str]
) -> None:
    cancel = f"/referrals/{mine['referral_id']}/cancel"
    first = await office.post(cancel, json={"reason": "need-met"})
    second = await office.post(cancel, json={"reason": "need-met"})
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["referral_id"] == second.json()["referral_id"]
    assert second.json()["problem"] is None
    assert intake.staged("ww.intake.referral.cancellation-requested") == 1
    trail = (await office.get(f"/referrals/{mine['referral_id']}")).json()["trail"]
    assert [t["kind"] for t in trail] == ["requested-by-office", "cancellation-requested"]


CONTACT = {
    "phone": "+49 3874 123456",
    "email": "nadia@example.org",
    "preferred_channel": "sms",
    "reachable": "weekdays after 3 pm",
    "interpreter_needed": True,
}
RESIDENCE = {"status": "residence-permit", "legal_basis": "§ 25 Abs. 2 AufenthG"}


async def test_contact_and_residence_reach_only_an_agency_the_consent_releases_them_to(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    body = request_body(contact=CONTACT, residence=RESIDENCE, needs=["migration-counselling"])
    categories = ["client-reference", "needs", "contact", "residence-status"]
    body["consent"]["recipients"] = [
        {"agency_id": AGENCY, "data_categories": categories},  # this one may reach the person
        {"kind": "migration-counselling", "data_categories": ["client-reference", "needs"]},
    ]
    body["consent"]["data_categories"] = categories
    request = (await office.post("/requests", json=body)).json()
    detail = (await office.get(f"/requests/{request['request_id']}")).json()
    assert detail["contact"]["phone"] == CONTACT["phone"]
    assert detail["residence"] == RESIDENCE | {"valid_until": None}
    for agency in (AGENCY, "lup-mbe-parchim"):
        sent = await office.post(
            f"/requests/{request['request_id']}/referrals", json={"agency_id": agency}
        )
        assert sent.status_code == 202, sent.text
    (released,) = intake.opened_cases(AGENCY)
    assert released["contact"] == CONTACT
    assert released["residence"] == RESIDENCE
    assert {"contact", "residence-status"} <= set(released["released_categories"])
    (withheld,) = intake.opened_cases("lup-mbe-parchim")
    assert "contact" not in withheld and "residence" not in withheld
    # at rest, intake holds them only inside the person's sealed record
    rows = intake.db.read_sync(lambda s: [r.personal for r in s.exec(select(RequestRow))])
    assert all(b"nadia@example.org" not in bytes(r) for r in rows)


@pytest.mark.parametrize(
    ("contact", "said"),
    [
        ({"preferred_channel": "email", "phone": "+49 3874 1"}, "the preferred channel email"),
        ({"reachable": "mornings"}, "give a phone number, e-mail or postal address"),
        ({"phone": "call me"}, "contact.phone"),
        ({"email": "nadia-at-example"}, "contact.email"),
    ],
)
async def test_contact_details_that_reach_nobody_are_refused(
    intake: IntakeApp, office: httpx.AsyncClient, contact: dict, said: str
) -> None:
    refused = await office.post("/requests", json=request_body(contact=contact))
    assert refused.status_code == 422
    named = [".".join(map(str, e["loc"][1:])) + " " + e["msg"] for e in refused.json()["errors"]]
    assert any(said in n for n in named), named
    assert intake.count(RequestRow) == 0


async def test_every_time_the_api_shows_carries_its_zone(
    office: httpx.AsyncClient, mine: dict[str, str]
) -> None:
    answers = [
        (await office.get(f"/requests/{mine['request_id']}")).json(),
        (await office.get(f"/referrals/{mine['referral_id']}")).json(),
        (await office.get("/referrals")).json(),
        (await office.post(f"/consents/{mine['consent_id']}/withdraw")).json(),
    ]
    times = re.findall(r'"\d{4}-\d\d-\d\dT[^"]+"', json.dumps(answers))
    assert len(times) >= 6, times
    for time in times:
        assert datetime.fromisoformat(time.strip('"').replace("Z", "+00:00")).tzinfo, time


async def test_every_status_the_api_answers_is_documented_and_every_error_is_a_problem(
    intake: IntakeApp, office: httpx.AsyncClient, mine: dict[str, str]
) -> None:
    """What the routes answer, right and wrong, against what the OpenAPI document says."""
    request, referral, consent = mine["request_id"], mine["referral_id"], mine["consent_id"]
    calls: list[tuple[str, str, str, object]] = [
        ("POST", "/requests", "/requests", request_body(client_reference="client-43")),
        ("POST", "/requests", "/requests", {"needs": []}),
        ("POST", "/requests", "/requests", request_body(municipality="13099999")),
        ("GET", "/requests/{request_id}", f"/requests/{request}", None),
        ("GET", "/requests/{request_id}", "/requests/req-nope", None),
        ("GET", "/requests/{request_id}/suggestions", f"/requests/{request}/suggestions", None),
        ("POST", "/requests/{request_id}/referrals", f"/requests/{request}/referrals",
         {"agency_id": AGENCY}),
        ("POST", "/requests/{request_id}/referrals", f"/requests/{request}/referrals",
         {"agency_id": "lup-jobcenter"}),
        ("GET", "/referrals", "/referrals?limit=0", None),
        ("GET", "/referrals/{referral_id}", "/referrals/ref-nope", None),
        ("POST", "/referrals/{referral_id}/cancel", f"/referrals/{referral}/cancel",
         {"reason": "x"}),
        ("POST", "/referrals/{referral_id}/cancel", f"/referrals/{referral}/cancel",
         {"reason": "need-met"}),
        ("GET", "/consents/{consent_id}/receipt", f"/consents/{consent}/receipt", None),
        ("GET", "/consents/{consent_id}/receipt", f"/consents/{consent}/receipt?language=xx",
         None),
        ("POST", "/consents/{consent_id}/withdraw", f"/consents/{consent}/withdraw", None),
        ("GET", "/requests/{request_id}/suggestions", f"/requests/{request}/suggestions",
         None),  # the person's data is erased: 410
    ]  # fmt: skip
    paths = intake.app.openapi()["paths"]
    seen = set()
    for method, template, path, body in calls:
        answer = await office.request(method, path, json=body)
        seen.add(answer.status_code)
        documented = paths[template][method.lower()]["responses"]
        assert str(answer.status_code) in documented, (method, path, answer.status_code)
        if answer.status_code >= 400:
            assert answer.headers["content-type"] == "application/problem+json", path
            problem = answer.json()
            assert problem["status"] == answer.status_code and problem["code"], problem
            assert problem["title"] and problem["detail"], problem
    assert {200, 201, 202, 404, 410, 422} <= seen, seen


# --- who may call ------------------------------------------------------------------------


async def test_every_route_but_health_and_token_refuses_a_call_without_a_valid_token(
    intake: IntakeApp, mine: dict[str, str]
) -> None:
    forged = "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.AAAA"
    async with intake.client() as anyone:
        for method, path in routes(intake, mine):
            for headers in [{}, {"Authorization": forged}, {"X-Wegweiser-Office": OTHER_OFFICE}]:
                response = await anyone.request(method, path, headers=headers, json={})
                assert response.status_code == 401, (method, path, headers, response.text)
                assert response.headers["www-authenticate"].startswith("Bearer")
        assert (await anyone.get("/health")).json() == {"status": "ok"}


async def test_another_offices_token_reads_and_changes_none_of_this_offices_cases(
    intake: IntakeApp, office: httpx.AsyncClient, mine: dict[str, str]
) -> None:
    async with intake.client(OTHER_OFFICE) as other:
        for method, path in routes(intake, mine):
            if path in ("/requests", "/referrals"):
                continue  # the other office's own collection: its own, not ours
            body = (
                {"agency_id": AGENCY}
                if path.endswith("/referrals")
                else {"agency_ids": [AGENCY, PARCHIM]}
                if path.endswith("/plans")
                else {"language": "fa"}
                if path.endswith("/person-link")
                else {"reason": "other"}
            )
            response = await other.request(method, path, json=body)
            assert response.status_code == 403, (method, path, response.text)
        listed = (await other.get("/referrals")).json()
        assert mine["referral_id"] not in [r["referral_id"] for r in listed]
    detail = (await office.get(f"/requests/{mine['request_id']}")).json()
    assert detail["consent_withdrawn_at"] is None and not detail["erased"] and detail["needs"]
    referral = (await office.get(f"/referrals/{mine['referral_id']}")).json()
    assert referral["status"] != "cancelled"
    assert len((await office.get(f"/requests/{mine['request_id']}/referrals")).json()) == 2
    plan = (await office.get(f"/plans/{mine['plan_id']}")).json()
    assert plan["state"] == "open" and len(plan["referrals"]) == 2


async def test_a_token_is_granted_only_as_oauth_client_credentials_say(intake: IntakeApp) -> None:
    credential = intake.add_client(OFFICE)
    grant = {"grant_type": "client_credentials"}
    basic = (credential.client_id, credential.client_secret)
    async with intake.client() as anyone:
        issued = await anyone.post("/token", data=grant, auth=basic)
        assert issued.status_code == 200 and issued.headers["cache-control"] == "no-store"
        assert issued.json()["scope"] == f"office:{OFFICE}" and issued.json()["expires_in"] > 0
        other = await anyone.post(
            "/token", data={**grant, "scope": f"office:{OTHER_OFFICE}"}, auth=basic
        )
        assert other.status_code == 400 and other.json()["error"] == "invalid_scope"
        wrong = await anyone.post("/token", data=grant, auth=(credential.client_id, "x"))
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        implicit = await anyone.post("/token", data={"grant_type": "password"}, auth=basic)
        assert implicit.status_code == 400
        assert implicit.json()["error"] == "unsupported_grant_type"
        unauthenticated = await anyone.post("/token", data=grant)
        assert unauthenticated.status_code == 401


async def test_a_revoked_clients_token_and_secret_are_refused(intake: IntakeApp) -> None:
    credential = intake.add_client(OFFICE)
    grant, basic = (
        {"grant_type": "client_credentials"},
        (credential.client_id, credential.client_secret),
    )
    async with intake.client() as anyone:
        token = (await anyone.post("/token", data=grant, auth=basic)).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        created = await anyone.post("/requests", json=request_body(), headers=bearer)
        assert created.status_code == 201, created.text
        intake.db.run_sync(lambda s: access.revoke(s, credential.client_id))
        path = f"/requests/{created.json()['request_id']}"
        assert (await anyone.get(path, headers=bearer)).status_code == 401
        again = await anyone.post("/token", data=grant, auth=basic)
        assert again.status_code == 401 and "revoked" in again.json()["error_description"]


async def test_a_foreign_host_or_a_browser_page_of_another_origin_is_refused(
    office: httpx.AsyncClient, mine: dict[str, str]
) -> None:
    rebound = await office.get(f"/requests/{mine['request_id']}", headers={"Host": "evil.example"})
    assert rebound.status_code == 400
    withdraw = await office.post(
        f"/consents/{mine['consent_id']}/withdraw", headers={"Origin": "https://evil.example"}
    )
    assert withdraw.status_code == 403
    allowed = await office.get(
        f"/requests/{mine['request_id']}", headers={"Origin": "https://web.example"}
    )
    assert allowed.status_code == 200 and allowed.json()["consent_withdrawn_at"] is None
    assert HOST in str(office.base_url)


async def test_an_erased_request_is_gone_before_any_agency_is_asked(
    office: httpx.AsyncClient,
) -> None:
    request = (await office.post("/requests", json=request_body())).json()
    withdrawn = await office.post(f"/consents/{request['consent_id']}/withdraw")
    assert withdrawn.status_code == 200 and withdrawn.json()["person_data_erased"] is True
    send = f"/requests/{request['request_id']}/referrals"
    for agency in (AGENCY, "no-such-agency"):  # erased first: no directory answer matters
        gone = await office.post(send, json={"agency_id": agency})
        assert gone.status_code == 410 and "erased" in gone.text, gone.text


async def test_the_receipt_comes_in_every_language_the_person_may_read_and_no_other(
    office: httpx.AsyncClient, mine: dict[str, str]
) -> None:
    receipt = f"/consents/{mine['consent_id']}/receipt"
    farsi = await office.get(receipt, params={"language": "fa"})
    assert farsi.status_code == 200 and farsi.text.startswith("رضایت شما – رسید")
    assert "Ihre Einwilligung – Quittung" in farsi.text  # the binding German after it
    refused = await office.get(receipt, params={"language": "xx"})
    assert refused.status_code == 422
    said = json.dumps(refused.json())
    assert all(f"'{code}'" in said for code in ("de", "ar", "ckb", "kmr", "ti", "so")), said


async def test_the_consent_record_keeps_the_fingerprint_of_the_text_the_person_read(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    body = request_body()
    body["consent"] |= {"text_version": texts.CONSENT_TEXT_VERSION, "text_language": "fa"}
    made = (await office.post("/requests", json=body)).json()
    shown = "\n\n".join(texts.consent_text(texts.PersonLanguage.FA))
    receipt = await office.get(f"/consents/{made['consent_id']}/receipt?format=json")
    assert receipt.json()["consentTextSha256"] == hashlib.sha256(shown.encode()).hexdigest()
    [recorded] = intake.staged_events("ww.intake.consent.recorded")
    assert recorded["type"] == "de.wegweiser.intake.consent.recorded.v3"
    assert recorded["data"]["terms"]["text_sha256"] == receipt.json()["consentTextSha256"]
    own_text = request_body()
    own_text["consent"] |= {"text_version": "office-2025", "text_language": "fa"}
    other = (await office.post("/requests", json=own_text)).json()
    theirs = await office.get(f"/consents/{other['consent_id']}/receipt?format=json")
    assert theirs.json()["consentTextSha256"] is None  # not Wegweiser's text: no fingerprint


async def test_the_receipt_names_an_agency_the_consent_names_by_id(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    body = request_body()
    body["consent"]["recipients"] = [{"agency_id": AGENCY}]
    made = (await office.post("/requests", json=body)).json()
    card = await intake.intake.directory.lookup(AGENCY)
    assert card is not None
    text = (await office.get(f"/consents/{made['consent_id']}/receipt")).text
    assert f"Stelle {card.name}:" in text and AGENCY not in text


async def test_a_request_under_a_legal_deadline_sends_its_day_and_seals_its_kind(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    """The deadline's day and Land go to the referral service, which counts the offer's clock
    back from it; its kind, which tells of the asylum decision, travels only in the case
    sealed to an agency the consent releases `residence-status` to."""
    ends_on = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    deadline = {"kind": "other", "land": "MV", "ends_on": ends_on}
    body = request_body(legal_deadline=deadline, needs=["migration-counselling"])
    categories = ["client-reference", "needs", "residence-status"]
    body["consent"]["recipients"] = [
        {"agency_id": AGENCY, "data_categories": categories},
        {"kind": "migration-counselling", "data_categories": ["client-reference", "needs"]},
    ]
    body["consent"]["data_categories"] = categories
    recorded = await office.post("/requests", json=body)
    assert recorded.status_code == 201, recorded.text
    request_id = recorded.json()["request_id"]
    detail = (await office.get(f"/requests/{request_id}")).json()
    assert detail["legal_deadline"] == deadline | {"delivered_on": None}
    for agency in (AGENCY, "lup-mbe-parchim"):
        sent = await office.post(f"/requests/{request_id}/referrals", json={"agency_id": agency})
        assert sent.status_code == 202, sent.text
    listed = (await office.get(f"/requests/{request_id}/referrals")).json()
    assert [r["legal_deadline_ends_on"] for r in listed] == [ends_on, ends_on]
    asked = intake.staged_events(subjects.REFERRAL_REQUESTED)
    assert [e["data"]["deadline"] for e in asked] == [{"ends_on": ends_on, "land": "MV"}] * 2
    assert all("other" not in json.dumps(e["data"]["consent"]) for e in asked)
    (released,) = intake.opened_cases(AGENCY)
    assert released["legal_deadline"] == deadline  # sealed without its empty fields
    (withheld,) = intake.opened_cases("lup-mbe-parchim")
    assert withheld.get("legal_deadline") is None


@pytest.mark.parametrize(
    ("deadline", "code"),
    [
        ({"kind": "asylum-lawsuit-2w", "land": "MV", "delivered_on": "2999-01-04"},
         "legal-deadline.delivered-in-future"),
        ({"kind": "other", "land": "MV", "ends_on": "2020-01-06"}, "legal-deadline.passed"),
        ({"kind": "asylum-lawsuit-1w", "land": "MV", "delivered_on": "2020-01-06"},
         "legal-deadline.passed"),
        ({"kind": "other", "land": "MV"}, "legal-deadline.date-missing"),
        ({"kind": "asylum-lawsuit-2w", "land": "DE"}, "string_pattern_mismatch"),
        ({"kind": "asylum-lawsuit-3w", "land": "MV"}, "enum"),
    ],
)  # fmt: skip
async def test_a_legal_deadline_that_cannot_be_is_refused_and_nothing_is_stored(
    intake: IntakeApp, office: httpx.AsyncClient, deadline: dict, code: str
) -> None:
    refused = await office.post("/requests", json=request_body(legal_deadline=deadline))
    assert refused.status_code == 422, refused.text
    errors = refused.json()["errors"]
    assert any(e["type"] == code and "legal_deadline" in e["loc"] for e in errors), errors
    assert intake.count(RequestRow) == 0


async def test_a_request_near_its_legal_deadline_that_no_agency_accepted_needs_another_agency(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    """Days are left only if the office acts: once the alert has come (3 working days before
    the deadline) and no agency has accepted, the request says so; an acceptance ends it."""
    today = datetime.now(ZoneInfo("Europe/Berlin")).date()  # the day the deadline runs in
    far = today + timedelta(days=60)

    async def recorded(ends_on: date) -> str:
        deadline = {"kind": "other", "land": "MV", "ends_on": ends_on.isoformat()}
        made = await office.post("/requests", json=request_body(legal_deadline=deadline))
        assert made.status_code == 201, made.text
        return str(made.json()["request_id"])

    async def needs_another(request_id: str) -> bool:
        return bool((await office.get(f"/requests/{request_id}")).json()["needs_another_agency"])

    assert not await needs_another(await recorded(far))
    near = await recorded(today)  # the deadline ends tonight: the alert came days ago
    assert await needs_another(near)
    sent = await office.post(f"/requests/{near}/referrals", json={"agency_id": AGENCY})
    assert sent.status_code == 202, sent.text
    assert await needs_another(near), "an offer is not an acceptance"
    accepted = ReferralAccepted(
        referral_id=sent.json()["referral_id"],
        request_id=near,
        agency_id=AGENCY,
        status=ReferralStatus.ACCEPTED,
        version=2,
        occurred_at=datetime.now(UTC),
    )
    event = new_event(accepted, source="/wegweiser/referral", subject=accepted.referral_id)
    intake.project(subjects.referral_event(AGENCY, "accepted"), event)
    assert not await needs_another(near)

"""The web app's use cases without HTTP in front: the application object over the real intake
(its app in this process, on SQLite, asking the sample directory) and the web app's own
database; the audit API as a hand-written fake of its answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas import subjects
from schemas.envelope import new_event
from schemas.events import ReferralRejected
from schemas.vocabulary import ReasonCode, ReferralStatus
from services.intake.store import PlanRow, ReferralView
from services.web import accounts
from services.web.accounts import Role, SessionPolicy
from services.web.application import (
    LinkThrottled,
    NoSuchLink,
    PersonFound,
    WebApplication,
)
from services.web.clients import AuditClient
from tests.support.intake import OFFICE, IntakeApp
from tests.support.web import WebApp
from wegweiser.demo import sample_request

LUDWIGSLUST, PARCHIM = "lup-mbe-ludwigslust", "lup-mbe-parchim"


@pytest.fixture
def web(tmp_path: Path, intake: IntakeApp) -> Iterator[WebApplication]:
    folder = tmp_path / "web"
    folder.mkdir()
    made = WebApp(folder, intake=intake)
    yield made.application
    made.db.dispose()


async def recorded(app: WebApplication) -> str:
    done = await app.record_request(OFFICE, sample_request(client_reference="app-1"))
    return done.request_id


def rejected(intake: IntakeApp, referral: dict[str, Any]) -> None:
    """The agency's rejection of `referral`, as intake hears it from the stream."""
    event = ReferralRejected(
        referral_id=referral["referral_id"],
        request_id=referral["request_id"],
        agency_id=referral["agency_id"],
        status=ReferralStatus.REJECTED,
        version=2,
        occurred_at=datetime.now(UTC),
        reason=ReasonCode.NO_CAPACITY,
    )
    intake.project(
        subjects.referral_event(referral["agency_id"], "rejected"),
        new_event(event, source="/wegweiser/referral", subject=referral["referral_id"]),
    )


async def test_an_agency_that_ended_its_referral_may_be_offered_again_one_still_open_not(
    intake: IntakeApp, web: WebApplication
) -> None:
    request_id = await recorded(web)
    assert await web.send(OFFICE, request_id, [LUDWIGSLUST]) == 1
    assert await web.send(OFFICE, request_id, [PARCHIM]) == 1
    first = next(r for r in await web.referrals(OFFICE) if r["agency_id"] == LUDWIGSLUST)
    rejected(intake, first)
    page = await web.request_page(OFFICE, request_id)
    assert {r["agency_id"] for r in page.referrals} == {LUDWIGSLUST, PARCHIM}
    assert page.already == {PARCHIM}
    assert page.suggestions  # the consent stands: the directory was asked
    offered = {s["candidate"]["agency"]["agency_id"] for s in page.suggestions}
    assert all(agency in offered for agency, _name in page.next_to_try)


async def test_a_request_whose_consent_was_withdrawn_gets_no_suggestions(
    web: WebApplication,
) -> None:
    request_id = await recorded(web)
    page = await web.request_page(OFFICE, request_id)
    assert await web.withdraw_consent(OFFICE, page.detail["consent_id"]) == request_id
    after = await web.request_page(OFFICE, request_id)
    assert after.detail["consent_withdrawn_at"]
    assert after.suggestions == after.excluded == []
    assert after.next_to_try == [] and after.bridges == []


async def test_several_agencies_go_as_one_plan_and_none_sends_nothing(
    intake: IntakeApp, web: WebApplication
) -> None:
    request_id = await recorded(web)
    assert await web.send(OFFICE, request_id, []) == 0
    assert intake.count(ReferralView) == 0
    assert await web.send(OFFICE, request_id, [LUDWIGSLUST, PARCHIM]) == 2
    assert intake.count(PlanRow) == 1 and intake.count(ReferralView) == 2


async def test_a_plan_is_not_cancelled_without_a_reason_but_its_request_is_named(
    intake: IntakeApp, web: WebApplication
) -> None:
    request_id = await recorded(web)
    await web.send(OFFICE, request_id, [LUDWIGSLUST, PARCHIM])
    [plan] = (await web.request_page(OFFICE, request_id)).plans
    unsaid = await web.cancel_plan(OFFICE, plan["plan_id"], None)
    assert (unsaid.request_id, unsaid.cancelled) == (request_id, False)
    assert intake.staged_events(subjects.CANCELLATION_REQUESTED) == []
    said = await web.cancel_plan(OFFICE, plan["plan_id"], "other")
    assert (said.request_id, said.cancelled) == (request_id, True)
    assert len(intake.staged_events(subjects.CANCELLATION_REQUESTED)) == 2


async def test_a_referral_is_not_cancelled_without_a_reason_and_comes_back_to_ask(
    intake: IntakeApp, web: WebApplication
) -> None:
    request_id = await recorded(web)
    await web.send(OFFICE, request_id, [LUDWIGSLUST])
    [referral] = await web.referrals(OFFICE)
    missing = await web.cancel_referral(OFFICE, referral["referral_id"], None, "no matter")
    assert missing is not None and missing.referral["referral_id"] == referral["referral_id"]
    assert intake.staged_events(subjects.CANCELLATION_REQUESTED) == []
    assert await web.cancel_referral(OFFICE, referral["referral_id"], "other", None) is None
    assert len(intake.staged_events(subjects.CANCELLATION_REQUESTED)) == 1


async def test_a_receipt_gets_a_link_under_the_base_only_when_asked(web: WebApplication) -> None:
    request_id = await recorded(web)
    consent_id = (await web.request_page(OFFICE, request_id)).detail["consent_id"]
    plain = await web.receipt(OFFICE, consent_id, "de")
    assert plain.link is None and plain.document["parts"]
    linked = await web.receipt(OFFICE, consent_id, "ar", link_base="https://web.example")
    assert linked.link is not None and linked.link.startswith("https://web.example/p/")
    token = linked.link.rsplit("/", 1)[1]
    opened = await web.person_page(token, "10.0.0.1")
    assert isinstance(opened, PersonFound) and opened.found["language"] == "ar"


async def test_wrong_person_links_make_the_address_wait_even_for_a_right_one(
    web: WebApplication,
) -> None:
    request_id = await recorded(web)
    consent_id = (await web.request_page(OFFICE, request_id)).detail["consent_id"]
    found = await web.receipt(OFFICE, consent_id, "de", link_base="https://web.example")
    assert found.link is not None
    token = found.link.rsplit("/", 1)[1]
    assert isinstance(await web.person_page("not a token", "10.0.0.9"), NoSuchLink)
    for guess in range(9):  # ten wrong ones in all
        assert isinstance(await web.person_page(f"{guess:0>22}", "10.0.0.9"), NoSuchLink)
    waiting = await web.person_page(token, "10.0.0.9")
    assert isinstance(waiting, LinkThrottled) and waiting.retry_after > timedelta(0)
    assert isinstance(await web.person_data(token, "10.0.0.10"), PersonFound)  # another address


async def test_sessions_whose_browsers_never_came_back_are_forgotten(
    web: WebApplication,
) -> None:
    now = datetime.now(UTC)
    web.policy = SessionPolicy(idle=timedelta(minutes=30), lifetime=timedelta(hours=10))

    def two_sessions(session: Any) -> list[str]:
        user = accounts.add_user(
            session, "berater", "a long enough password", Role.COUNSELLOR, OFFICE
        )
        return [accounts.open_session(session, user, now - timedelta(hours=1)),
                accounts.open_session(session, user, now)]  # fmt: skip

    old, fresh = await web.run(two_sessions)
    web.now = lambda: now
    assert await web.forget_ended_sessions() == 1
    assert await web.signed_in(old) is None
    assert (signed := await web.signed_in(fresh)) is not None and signed.username == "berater"
    assert await web.forget_ended_sessions() == 0


class FakeAudit:
    """The audit API's answers to the ombudsperson, as a hand-written table by path."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[httpx.URL] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(request.url)
        return httpx.Response(200, content=json.dumps(self.answers[request.url.path]))

    def client(self) -> AuditClient:
        return AuditClient("http://audit.test", "token", httpx.MockTransport(self))


async def test_the_audit_overview_shows_the_newest_offer_first_and_counts_the_anomalies(
    web: WebApplication,
) -> None:
    fake = FakeAudit(
        {
            "/referrals": [
                {"referral_id": "ref-a", "offered_at": "2026-01-02T10:00:00Z"},
                {"referral_id": "ref-b", "offered_at": None},
                {"referral_id": "ref-c", "offered_at": "2026-03-01T08:00:00Z"},
            ],
            "/overdue": [{"referral_id": "ref-a"}],
            "/anomalies": {"late": [{"referral_id": "ref-a"}], "gaps": [{}, {}], "other": []},
        }
    )
    web.audit = fake.client()
    found = await web.audit_overview(agency=LUDWIGSLUST)
    assert [r["referral_id"] for r in found.referrals] == ["ref-c", "ref-a", "ref-b"]
    assert found.overdue == [{"referral_id": "ref-a"}] and found.anomaly_count == 3
    assert fake.asked[0].params == httpx.QueryParams({"agency": LUDWIGSLUST})  # no empty state
    await web.audit.close()


async def test_a_metadata_page_comes_with_the_years_figures_by_table_name(
    web: WebApplication,
) -> None:
    tables = [{"name": "answer-times", "rows": []}, {"name": "withdrawals", "rows": [1]}]
    fake = FakeAudit({"/withdrawals": [{"n": 1}], "/report": {"current": {"tables": tables}}})
    web.audit = fake.client()
    found = await web.withdrawals()
    assert found.rows == [{"n": 1}]
    assert found.figures == {"answer-times": tables[0], "withdrawals": tables[1]}
    [report] = [url for url in fake.asked if url.path == "/report"]
    assert report.params["from"].endswith("-01-01")
    await web.audit.close()

"""Referrals that belong together (issue 20, part 4): an office sends a request to several
agencies as one plan, all or none; the plan shows its referrals' state together, and
cancelling it withdraws those still open. Intake in this process."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from schemas import subjects
from schemas.envelope import new_event
from schemas.events import ReferralAccepted, ReferralRejected
from schemas.vocabulary import ReasonCode, ReferralStatus
from services.intake.store import PlanRow, ReferralView
from services.web.accounts import Role
from tests.support.intake import IntakeApp
from tests.support.web import WebApp
from wegweiser.demo import sample_request

LUDWIGSLUST, PARCHIM = "lup-mbe-ludwigslust", "lup-mbe-parchim"
OFFICE = "lup-integration-office"
JOBCENTER = "lup-jobcenter"  # not a kind the sample consent names


async def recorded(office: httpx.AsyncClient) -> str:
    made = await office.post("/requests", json=sample_request(client_reference="plan-1"))
    assert made.status_code == 201, made.text
    return str(made.json()["request_id"])


async def planned(office: httpx.AsyncClient) -> dict:
    """A request of the office sent to both migration counselling agencies as one plan."""
    request_id = await recorded(office)
    sent = await office.post(
        f"/requests/{request_id}/plans", json={"agency_ids": [LUDWIGSLUST, PARCHIM]}
    )
    assert sent.status_code == 202, sent.text
    return dict(sent.json())


def project(intake: IntakeApp, referral: dict, change: type, status: ReferralStatus, **said):
    event = change(
        referral_id=referral["referral_id"],
        request_id=referral["request_id"],
        agency_id=referral["agency_id"],
        status=status,
        version=2,
        occurred_at=datetime.now(UTC),
        **said,
    )
    intake.project(
        subjects.referral_event(referral["agency_id"], status.value),
        new_event(event, source="/wegweiser/referral", subject=referral["referral_id"]),
    )


async def test_a_plan_goes_to_every_agency_at_once_and_shows_their_state_together(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    request_id = await recorded(office)
    sent = await office.post(
        f"/requests/{request_id}/plans", json={"agency_ids": [LUDWIGSLUST, PARCHIM]}
    )
    assert sent.status_code == 202, sent.text
    plan = sent.json()
    assert plan["state"] == "open"
    assert {r["agency_id"] for r in plan["referrals"]} == {LUDWIGSLUST, PARCHIM}
    assert len(intake.staged_events(subjects.REFERRAL_REQUESTED)) == 2
    first, _ = plan["referrals"]
    project(intake, first, ReferralAccepted, ReferralStatus.ACCEPTED)
    assert (await office.get(f"/plans/{plan['plan_id']}")).json()["state"] == "under-way"
    [listed] = (await office.get(f"/requests/{request_id}/plans")).json()
    assert listed["plan_id"] == plan["plan_id"] and listed["state"] == "under-way"


@pytest.mark.parametrize(
    ("agencies", "status", "code"),
    [
        ([LUDWIGSLUST, JOBCENTER], 422, "consent.not-covered"),
        ([LUDWIGSLUST, "nobody-here"], 422, "agency.unknown"),
        ([LUDWIGSLUST], 422, "too_short"),
        ([LUDWIGSLUST, LUDWIGSLUST], 422, "value_error"),
    ],
)
async def test_a_plan_that_cannot_go_to_every_agency_goes_to_none(
    intake: IntakeApp, office: httpx.AsyncClient, agencies: list[str], status: int, code: str
) -> None:
    request_id = await recorded(office)
    refused = await office.post(f"/requests/{request_id}/plans", json={"agency_ids": agencies})
    assert refused.status_code == status, refused.text
    problem = refused.json()
    assert problem.get("code") == code or any(e["type"] == code for e in problem.get("errors", []))
    assert intake.count(ReferralView) == 0 and intake.count(PlanRow) == 0
    assert intake.staged_events(subjects.REFERRAL_REQUESTED) == []


async def test_cancelling_a_plan_withdraws_its_open_referrals_and_leaves_the_ended(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    plan = await planned(office)
    first, second = plan["referrals"]
    project(intake, first, ReferralRejected, ReferralStatus.REJECTED, reason=ReasonCode.NO_CAPACITY)
    cancelled = await office.post(f"/plans/{plan['plan_id']}/cancel", json={"reason": "other"})
    assert cancelled.status_code == 202, cancelled.text
    asked = intake.staged_events(subjects.CANCELLATION_REQUESTED)
    assert [e["data"]["referral_id"] for e in asked] == [second["referral_id"]]
    again = await office.post(f"/plans/{plan['plan_id']}/cancel", json={"reason": "other"})
    assert again.status_code == 202
    assert len(intake.staged_events(subjects.CANCELLATION_REQUESTED)) == 1  # asked once


async def test_a_plan_cannot_be_cancelled_without_a_reason_that_fits(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    plan = await planned(office)
    refused = await office.post(f"/plans/{plan['plan_id']}/cancel", json={"reason": "completed"})
    assert refused.status_code == 422, refused.text
    assert intake.staged_events(subjects.CANCELLATION_REQUESTED) == []


async def test_the_counsellor_sends_two_agencies_as_one_plan_and_withdraws_it_in_the_web_app(
    intake: IntakeApp, office: httpx.AsyncClient, web: WebApp
) -> None:
    request_id = await recorded(office)
    counsellor = web.signed_in("berater", Role.COUNSELLOR, OFFICE)
    try:
        sent = await counsellor.http.post(
            f"/office/requests/{request_id}/referrals",
            data={"csrf": counsellor.csrf, "agency_id": [LUDWIGSLUST, PARCHIM]},
        )
        assert sent.status_code == 303, sent.text
        [plan] = (await office.get(f"/requests/{request_id}/plans")).json()
        assert {r["agency_id"] for r in plan["referrals"]} == {LUDWIGSLUST, PARCHIM}
        page = (await counsellor.http.get(f"/office/requests/{request_id}")).text
        assert "Zusammen gesendet an" in page and f'data-plan="{plan["plan_id"]}"' in page

        cancel = f"/office/plans/{plan['plan_id']}/cancel"
        unsaid = await counsellor.post(cancel)
        assert unsaid.status_code == 303
        shown = (await counsellor.http.get(unsaid.headers["location"])).text
        assert 'aria-invalid="true"' in shown  # the reason is asked for at its field
        forged = await counsellor.http.post(cancel, data={"csrf": "x", "reason": "other"})
        assert forged.status_code == 403
        assert intake.staged_events(subjects.CANCELLATION_REQUESTED) == []

        withdrawn = await counsellor.post(cancel, reason="other")
        assert withdrawn.status_code == 303
        asked = intake.staged_events(subjects.CANCELLATION_REQUESTED)
        assert len(asked) == 2
    finally:
        await counsellor.http.aclose()


async def test_a_counsellor_cannot_withdraw_another_offices_plan(
    intake: IntakeApp, web: WebApp
) -> None:
    async with intake.client("oa-integration-office") as theirs:
        body = sample_request(client_reference="oa-plan-1", municipality="09780139")
        request_id = (await theirs.post("/requests", json=body)).json()["request_id"]
        agencies = {"agency_ids": ["oa-mbe-immenstadt", "oa-mbe-sonthofen"]}
        plan = await theirs.post(f"/requests/{request_id}/plans", json=agencies)
        assert plan.status_code == 202, plan.text
    counsellor = web.signed_in("berater", Role.COUNSELLOR, OFFICE)
    try:
        cancel = f"/office/plans/{plan.json()['plan_id']}/cancel"
        refused = await counsellor.post(cancel, reason="other")
        assert refused.status_code == 403, refused.text
    finally:
        await counsellor.http.aclose()
    assert intake.staged_events(subjects.CANCELLATION_REQUESTED) == []


async def test_only_a_counsellor_signed_in_reaches_the_plan_withdrawal(
    intake: IntakeApp, office: httpx.AsyncClient, web: WebApp
) -> None:
    plan = await planned(office)
    cancel = f"/office/plans/{plan['plan_id']}/cancel"
    async with web.anonymous() as anonymous:
        nobody = await anonymous.post(cancel, data={"reason": "other"})
    assert nobody.status_code == 303  # to sign in first
    assert nobody.headers["location"].startswith("/login?next=")
    ombudsperson = web.signed_in("ombud", Role.OMBUDSPERSON)
    try:
        refused = await ombudsperson.post(cancel, reason="other")
        assert refused.status_code == 403, refused.text
    finally:
        await ombudsperson.http.aclose()
    assert intake.staged_events(subjects.CANCELLATION_REQUESTED) == []

"""Forwarding decided by intake (services/intake/forwarding.py), with the referral service's
events handed in as its consumer would: a forward whose referral ended meanwhile is refused,
not sealed to the other agency; what the forwarding agency may not learn, it is not told.
Intake and the directory's answers in this process."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from schemas import subjects
from schemas.envelope import new_event
from schemas.events import ReferralForwardRequested, ReferralRejected
from schemas.vocabulary import ReasonCode, ReferralStatus
from tests.support.intake import IntakeApp
from wegweiser.demo import sample_request

FIRST, OTHER = "lup-mbe-ludwigslust", "lup-mbe-parchim"


async def sent(office: httpx.AsyncClient, agency: str = FIRST, reference: str = "fw-1") -> dict:
    made = await office.post("/requests", json=sample_request(client_reference=reference))
    assert made.status_code == 201, made.text
    referral = await office.post(
        f"/requests/{made.json()['request_id']}/referrals", json={"agency_id": agency}
    )
    assert referral.status_code == 202, referral.text
    return dict(referral.json())


def asked_to_forward(intake: IntakeApp, referral: dict, to: str, version: int = 2) -> None:
    wish = ReferralForwardRequested(
        referral_id=referral["referral_id"],
        request_id=referral["request_id"],
        agency_id=FIRST,
        status=ReferralStatus.REQUESTED,
        version=version,
        occurred_at=datetime.now(UTC),
        reason=ReasonCode.OUT_OF_AREA,
        forward_to=to,
    )
    answer = new_event(wish, source="/wegweiser/agency/x", subject=referral["referral_id"])
    event = new_event(
        wish, source="/wegweiser/referral", subject=referral["referral_id"], causation=answer
    )
    intake.project(subjects.referral_event(FIRST, "forward-requested"), event)


async def test_a_forward_whose_referral_ended_meanwhile_is_refused_and_nothing_is_sealed(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    first = await sent(office)
    asked_to_forward(intake, first, OTHER)
    rejected = ReferralRejected(
        referral_id=first["referral_id"],
        request_id=first["request_id"],
        agency_id=FIRST,
        status=ReferralStatus.REJECTED,
        version=3,
        occurred_at=datetime.now(UTC),
        reason=ReasonCode.NO_CAPACITY,
    )
    intake.project(
        subjects.referral_event(FIRST, "rejected"),
        new_event(rejected, source="/wegweiser/referral", subject=first["referral_id"]),
    )
    assert await intake.intake.forward_pending() == 1
    [refusal] = intake.staged_events(subjects.FORWARD_REFUSED)
    assert refusal["data"]["code"] == "forward.origin-closed"
    assert intake.opened_cases(OTHER) == []  # nothing sealed to the other agency
    view = (await office.get(f"/referrals/{first['referral_id']}")).json()
    assert view["forwarded_to"] is None and "can no longer be forwarded" in view["problem"]


async def test_the_forwarding_agency_is_not_told_the_other_already_has_the_person(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    first = await sent(office)
    request_id = first["request_id"]
    also = await office.post(f"/requests/{request_id}/referrals", json={"agency_id": OTHER})
    assert also.status_code == 202, also.text
    asked_to_forward(intake, first, OTHER)
    assert await intake.intake.forward_pending() == 1
    [refusal] = intake.staged_events(subjects.FORWARD_REFUSED)
    assert refusal["data"]["code"] == "forward.not-possible"  # to the agency: no detail
    assert OTHER not in refusal["data"]["message"]
    view = (await office.get(f"/referrals/{first['referral_id']}")).json()
    assert "already has an open referral" in view["problem"]  # the office learns why

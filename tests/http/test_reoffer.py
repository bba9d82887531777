"""Automatic re-offer (issue 20, part 2): a request under a legal deadline whose consent names
a kind of agency may let intake offer the next fitting agency of that kind when the office is
alerted that nobody accepted. The alert comes as the referral service sends it (an urgent
`escalated`, whose timing the referral domain's tests advance); intake in this process."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlmodel import select

from schemas import subjects, upcasting
from schemas.envelope import new_event
from schemas.events import ReferralAccepted, ReferralEscalated, ReferralRequested
from schemas.vocabulary import ReferralStatus
from services.intake.store import ReofferRow
from services.referral import handlers, store
from tests.support.databases import service_database
from tests.support.intake import IntakeApp
from wegweiser.demo import sample_request
from wegweiser.platform.consumer import Delivery
from wegweiser.platform.outbox import OutboxRow

FIRST, NEXT = "oa-mbe-immenstadt", "oa-mbe-sonthofen"
"""Both migration counselling in Oberallgäu, both serving Blaichach: the first suggested, the
other next (the sample consent names that kind)."""


def body(
    auto_reoffer: bool = True, deadline: bool = True, days: int = 2, **consent: object
) -> dict:
    ends_on = datetime.now(ZoneInfo("Europe/Berlin")).date() + timedelta(days=days)
    made = sample_request(
        client_reference="frist-auto",
        auto_reoffer=auto_reoffer,
        municipality="09780115",
        languages=["ru", "de"],
    )
    if deadline:
        made["legal_deadline"] = {"kind": "objection-1m", "land": "BY", "ends_on": str(ends_on)}
    made["consent"] |= consent
    return made


async def sent(office: httpx.AsyncClient, made: dict) -> dict:
    recorded = await office.post("/requests", json=made)
    assert recorded.status_code == 201, recorded.text
    request_id = recorded.json()["request_id"]
    referral = await office.post(f"/requests/{request_id}/referrals", json={"agency_id": FIRST})
    assert referral.status_code == 202, referral.text
    return dict(referral.json())


def alert(intake: IntakeApp, referral: dict, urgent: bool = True, event_id: str | None = None):
    escalated = ReferralEscalated(
        referral_id=referral["referral_id"],
        request_id=referral["request_id"],
        agency_id=referral["agency_id"],
        status=ReferralStatus.REQUESTED,
        version=2,
        occurred_at=datetime.now(UTC),
        urgent=urgent,
    )
    event = new_event(escalated, source="/wegweiser/referral", subject=referral["referral_id"])
    if event_id:
        event = event.model_copy(update={"id": event_id})
    intake.project(subjects.referral_event(referral["agency_id"], "escalated"), event)


async def agencies_sent(office: httpx.AsyncClient, request_id: str) -> list[str]:
    found = (await office.get(f"/requests/{request_id}/referrals")).json()
    return [r["agency_id"] for r in found]


async def test_an_urgent_alert_offers_the_next_agency_of_the_kind_once_and_says_so(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    first = await sent(office, body())
    alert(intake, first, event_id="0b6a7c1e-8c1d-4a51-9d53-2f0e4b7a9c10")
    assert await intake.intake.reoffer_pending() == 1
    alert(intake, first, event_id="0b6a7c1e-8c1d-4a51-9d53-2f0e4b7a9c11")  # alerted again
    assert await intake.intake.reoffer_pending() == 1  # decided: intake re-offers once
    assert await agencies_sent(office, first["request_id"]) == [FIRST, NEXT]
    listed = (await office.get(f"/requests/{first['request_id']}/referrals")).json()
    [second] = [r for r in listed if r["agency_id"] == NEXT]
    detail = (await office.get(f"/referrals/{second['referral_id']}")).json()
    assert detail["trail"][0]["kind"] == "requested-automatically"
    alerted = (await office.get(f"/referrals/{first['referral_id']}")).json()
    assert "re-offered-automatically" in [t["kind"] for t in alerted["trail"]]
    assert alerted["status"] == "requested"  # it stays for its agency to answer
    assert alerted["problem"] is None
    assert [case["client_reference"] for case in intake.opened_cases(NEXT)] == ["frist-auto"]
    states = sorted(
        r.state for r in intake.db.read_sync(lambda s: list(s.exec(select(ReofferRow))))
    )
    assert states == ["not-again", "sent"]
    assert await intake.intake.reoffer_pending() == 0  # nothing pending: nothing twice


async def test_nothing_is_re_offered_without_leave_before_an_urgent_alert_or_after_acceptance(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    without_leave = await sent(office, body(auto_reoffer=False))
    alert(intake, without_leave)
    ordinary = await sent(office, body())
    alert(intake, ordinary, urgent=False)
    accepted = await sent(office, body())
    change = ReferralAccepted(
        referral_id=accepted["referral_id"],
        request_id=accepted["request_id"],
        agency_id=FIRST,
        status=ReferralStatus.ACCEPTED,
        version=3,
        occurred_at=datetime.now(UTC),
    )
    intake.project(
        subjects.referral_event(FIRST, "accepted"),
        new_event(change, source="/wegweiser/referral", subject=accepted["referral_id"]),
    )
    alert(intake, accepted)
    assert await intake.intake.reoffer_pending() == 1  # the accepted one's alert: not needed
    for referral in (without_leave, ordinary, accepted):
        assert await agencies_sent(office, referral["request_id"]) == [FIRST]


async def test_a_consent_naming_the_agency_alone_leaves_the_next_one_to_the_office(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    named = body(recipients=[{"agency_id": FIRST}, {"kind": "legal-aid"}])
    first = await sent(office, named)
    alert(intake, first)
    assert await intake.intake.reoffer_pending() == 1
    assert await agencies_sent(office, first["request_id"]) == [FIRST]


@pytest.mark.parametrize(
    ("made", "code"),
    [
        (body(deadline=False), "auto-reoffer.no-deadline"),
        (body(recipients=[{"agency_id": FIRST}]), "auto-reoffer.no-kind"),
    ],
)
async def test_automatic_re_offer_where_it_cannot_apply_is_refused(
    intake: IntakeApp, office: httpx.AsyncClient, made: dict, code: str
) -> None:
    before = intake.rows()
    refused = await office.post("/requests", json=made)
    assert refused.status_code == 422, refused.text
    assert [e["type"] for e in refused.json()["errors"]] == [code]
    assert intake.rows() == before


async def test_with_time_advanced_to_the_alert_the_referral_service_alerts_and_intake_re_offers(
    intake: IntakeApp, office: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The whole path with both services' real handlers and stores: the referral service
    offers under the deadline's clock, its clock is advanced to the alert, and the urgent
    escalation it stages is what intake re-offers on."""
    first = await sent(office, body(days=8))  # the margin comes before the 7-day escalation
    referral_db = service_database("referral", f"sqlite:///{tmp_path / 'referral.db'}")
    referral_db.migrate()
    [asked] = intake.staged_events(subjects.REFERRAL_REQUESTED)
    command = upcasting.read(json.dumps(asked), ReferralRequested)
    now = datetime.now(UTC)
    referral_db.run_sync(
        lambda s: handlers.open_referral(
            handlers.Context(clock=lambda: now), s, Delivery(command, subjects.REFERRAL_REQUESTED)
        )
    )
    clock = referral_db.read_sync(lambda s: store.load(s, first["referral_id"]).clock)
    assert clock is not None and clock.escalate_at > now  # counted back from the deadline
    referral_db.run_sync(
        lambda s: handlers.check_deadlines(
            handlers.Context(clock=lambda: clock.escalate_at - timedelta(seconds=1)),
            s,
            referral_id=first["referral_id"],
        )
    )  # a moment before the alert: reminded at most, nothing urgent
    before = referral_db.read_sync(lambda s: list(s.exec(select(OutboxRow))))
    assert not [row for row in before if row.subject.endswith(".escalated")]
    advanced = handlers.Context(clock=lambda: clock.escalate_at)
    referral_db.run_sync(
        lambda s: handlers.check_deadlines(advanced, s, referral_id=first["referral_id"])
    )
    staged = referral_db.read_sync(lambda s: list(s.exec(select(OutboxRow))))
    [escalated] = [row for row in staged if row.subject.endswith(".escalated")]
    alert_event = upcasting.read(escalated.body, ReferralEscalated)
    assert alert_event.data.urgent
    intake.project(escalated.subject, alert_event)
    assert await intake.intake.reoffer_pending() == 1
    assert await agencies_sent(office, first["request_id"]) == [FIRST, NEXT]
    referral_db.dispose()


async def test_when_no_further_agency_of_the_kind_fits_the_office_is_told(
    intake: IntakeApp, office: httpx.AsyncClient
) -> None:
    made = body()
    made |= {"municipality": "13076090", "languages": ["ar", "de"]}  # one MBE serves it
    made["legal_deadline"]["land"] = "MV"
    recorded = await office.post("/requests", json=made)
    assert recorded.status_code == 201, recorded.text
    request_id = recorded.json()["request_id"]
    only = "lup-mbe-ludwigslust"
    first = await office.post(f"/requests/{request_id}/referrals", json={"agency_id": only})
    assert first.status_code == 202, first.text
    alert(intake, dict(first.json()))
    assert await intake.intake.reoffer_pending() == 1
    assert await agencies_sent(office, request_id) == [only]
    alerted = (await office.get(f"/referrals/{first.json()['referral_id']}")).json()
    assert "no further agency of this kind fits" in alerted["problem"]

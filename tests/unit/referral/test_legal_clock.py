"""An offer under a legal deadline: its clock is counted back from the deadline and kept with
the referral, and its reminder, escalation and expiry come when that clock says.

The expected moments are worked out by hand (MV, November 2026: no public holiday between
the 2nd and the 13th; Berlin is UTC+1 then): sent Monday 2 November 10:00 Berlin, the
deadline ends with Friday 13 November. Acknowledge within 4 working hours: 14:00 Berlin.
Alerted with 3 working days left (13, 12, 11): Wednesday 11 November 08:00. Expired at the
end of working time on the deadline day, 16:00. Reminded halfway in working time from the
offer to the alert: 54 working hours (6 on the 2nd, 8 on each of the 3rd to 10th but the
weekend), half is 27: Thursday 5 November 13:00."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, select

from schemas.envelope import new_event
from schemas.events import (
    DeadlineDate,
    Recipient,
    ReferralRequested,
)
from schemas.vocabulary import AgencyKind, DeadlineKind
from services.referral import handlers, store
from services.referral.domain import Clock, DeadlinePolicy, Referral
from services.referral.legal_deadline import (
    LegalClockPolicy,
    LegalDeadline,
    alert_at,
    needs_another_agency,
)
from services.referral.store import ReferralRow
from tests.support.referrals import referral_requested
from wegweiser.platform.consumer import Delivery
from wegweiser.platform.db import Database
from wegweiser.platform.outbox import OutboxRow

SENT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ACK_DUE = datetime(2026, 11, 2, 13, 0, tzinfo=UTC)
REMIND = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
ESCALATE = datetime(2026, 11, 11, 7, 0, tzinfo=UTC)
EXPIRE = datetime(2026, 11, 13, 15, 0, tzinfo=UTC)
LONG = DeadlinePolicy(timedelta(days=30), timedelta(days=60), timedelta(days=90))
"""An ordinary clock far behind the legal one, so that the legal one decides alone."""


def test_an_offer_with_its_own_clock_is_reminded_escalated_and_expired_when_it_says() -> None:
    referral = Referral("r1", "q1", "agency-a", "office-1", "c1")
    referral.offer(SENT, Clock(REMIND, ESCALATE, EXPIRE, urgent=True))
    assert referral.next_deadline(LONG) == REMIND
    referral.check_deadlines(REMIND - timedelta(seconds=1), LONG)
    assert [c.kind for c in referral.changes] == ["offered"]
    referral.check_deadlines(REMIND, LONG)
    assert referral.next_deadline(LONG) == ESCALATE
    referral.check_deadlines(EXPIRE, LONG)
    assert [c.kind for c in referral.changes] == ["offered", "reminded", "escalated", "expired"]
    assert [c.urgent for c in referral.changes] == [False, False, True, False]  # the alert
    assert referral.next_deadline(LONG) is None


def test_an_escalation_the_ordinary_clock_places_before_the_margin_is_no_urgent_alert() -> None:
    referral = Referral("r1", "q1", "agency-a", "office-1", "c1")
    referral.offer(SENT, Clock(REMIND, ESCALATE, EXPIRE, urgent=False))
    referral.check_deadlines(ESCALATE, LONG)
    assert [(c.kind, c.urgent) for c in referral.changes][-1] == ("escalated", False)


def test_an_escalation_on_the_ordinary_clock_is_no_urgent_alert() -> None:
    referral = Referral("r1", "q1", "agency-a", "office-1", "c1")
    referral.offer(SENT)
    referral.check_deadlines(SENT + LONG.escalate_after, LONG)
    assert [(c.kind, c.urgent) for c in referral.changes][-1] == ("escalated", False)


@pytest.fixture
def db(tmp_path) -> Database:
    database = Database(
        f"sqlite:///{tmp_path / 'referral.db'}",
        [ReferralRow, OutboxRow, store.WithdrawnConsent, store.DeletionRow],
    )
    database.migrate()
    return database


def requested(deadline: DeadlineDate | None) -> ReferralRequested:
    return referral_requested(
        "ref-legal",
        "agency-a",
        given_at=SENT,
        kind=AgencyKind.LEGAL_AID,
        recipient=Recipient(agency_id="agency-a"),
        request_id="req-legal",
        consent_id="con-legal",
        deadline=deadline,
    )


def offer_through_the_handler(db: Database, command: ReferralRequested) -> dict[str, object]:
    """Run the referral service's handler; the offered event it staged."""
    ctx = handlers.Context(policy=LONG, clock=lambda: SENT)
    event = new_event(command, source="/wegweiser/intake", subject=command.referral_id)

    def run(session: Session) -> dict[str, object]:
        handlers.open_referral(ctx, session, Delivery(event, "ww.intake.referral.requested"))
        [row] = session.exec(select(OutboxRow)).all()
        return dict(json.loads(row.body)["data"])

    return db.run_sync(run)


def test_an_offer_under_a_legal_deadline_keeps_the_clock_counted_back_from_it(db) -> None:
    offered = offer_through_the_handler(
        db, requested(DeadlineDate(ends_on=date(2026, 11, 13), land="MV"))
    )
    assert datetime.fromisoformat(str(offered["acknowledge_by"])) == ACK_DUE
    kept = db.run_sync(lambda s: store.load(s, "ref-legal"))
    assert kept.clock == Clock(REMIND, ESCALATE, EXPIRE, urgent=True)  # at the margin
    assert db.run_sync(lambda s: store.due(s, REMIND - timedelta(seconds=1))) == []
    assert db.run_sync(lambda s: store.due(s, REMIND)) == ["ref-legal"]


def test_an_offer_without_a_legal_deadline_keeps_the_ordinary_clock(db) -> None:
    offered = offer_through_the_handler(db, requested(None))
    assert datetime.fromisoformat(str(offered["acknowledge_by"])) == SENT + timedelta(days=30)
    kept = db.run_sync(lambda s: store.load(s, "ref-legal"))
    assert kept.clock is None and kept.next_deadline(LONG) == SENT + timedelta(days=30)


def test_a_deadline_passed_before_the_offer_leaves_the_ordinary_clock(db) -> None:
    offered = offer_through_the_handler(
        db, requested(DeadlineDate(ends_on=date(2026, 11, 1), land="MV"))
    )
    assert datetime.fromisoformat(str(offered["acknowledge_by"])) == SENT + timedelta(days=30)
    assert db.run_sync(lambda s: store.load(s, "ref-legal")).clock is None


def test_the_office_is_alerted_from_the_third_working_day_before_until_the_deadline_ends() -> None:
    deadline = LegalDeadline(DeadlineKind.OTHER, "MV", date(2026, 11, 13))
    policy = LegalClockPolicy()
    assert alert_at(deadline, policy) == ESCALATE
    before, after, past = ESCALATE - timedelta(seconds=1), ESCALATE, deadline.ends_at
    assert not needs_another_agency(deadline, policy, before, accepted=False)
    assert needs_another_agency(deadline, policy, after, accepted=False)
    assert not needs_another_agency(deadline, policy, after, accepted=True)
    assert not needs_another_agency(deadline, policy, past, accepted=False)


def test_an_offer_sent_after_the_alert_is_escalated_at_once_without_a_reminder() -> None:
    referral = Referral("r1", "q1", "agency-a", "office-1", "c1")
    referral.offer(SENT, Clock(SENT, SENT, EXPIRE))  # as count_back places it: urgent at once
    referral.check_deadlines(SENT, LONG)
    assert [c.kind for c in referral.changes] == ["offered", "escalated"]
    assert referral.next_deadline(LONG) == EXPIRE

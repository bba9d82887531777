"""The referral service's use cases as the bootstrap wires them, on a real store and no
broker: the timers' deadline check, the census the metrics show, forgetting old verdicts and
the verdict an agency asks for."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from schemas.envelope import new_event
from schemas.events import ConsentWithdrawn
from schemas.queries import AskVerdict
from schemas.vocabulary import ReferralStatus, WithdrawnBy
from services.referral import store
from services.referral.application import Referrals
from services.referral.domain import DeadlinePolicy
from services.referral.handlers import Context
from tests.support.databases import migrated
from tests.support.referrals import delivered, referral_requested
from wegweiser.platform.consumer import Delivery
from wegweiser.platform.db import Database
from wegweiser.platform.outbox import OutboxRow

SENT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
POLICY = DeadlinePolicy(timedelta(days=3), timedelta(days=7), timedelta(days=14))
REFERRAL, AGENCY = "ref-77777777777777777777777777777777", "agency-a"
CONSENT, REQUEST = "con-11111111111111111111111111111111", "req-22222222222222222222222222222222"
ANSWER = "0f2b7c1e-3d4a-4b5c-8d9e-1a2b3c4d5e6f"


class Now:
    """The use cases' clock, moved by the test."""

    def __init__(self) -> None:
        self.at = SENT

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def now() -> Now:
    return Now()


@pytest.fixture
def db(tmp_path) -> Iterator[Database]:
    with migrated("referral", f"sqlite:///{tmp_path / 'referral.db'}") as database:
        yield database


@pytest.fixture
def referrals(db: Database, now: Now) -> Referrals:
    referrals = Referrals(db, Context(policy=POLICY, clock=now), verdicts_keep=timedelta(days=30))
    db.run_sync(
        lambda s: referrals.open(s, delivered(referral_requested(REFERRAL, AGENCY, given_at=SENT)))
    )
    return referrals


def staged_kinds(db: Database) -> list[str]:
    rows = db.read_sync(lambda s: s.exec(select(OutboxRow).order_by(col(OutboxRow.seq))).all())
    return [row.subject.rsplit(".", 1)[-1] for row in rows]


async def test_the_deadline_check_records_each_step_once_when_it_is_due(
    referrals: Referrals, db: Database, now: Now
) -> None:
    assert await referrals.check_deadlines() == 0
    now.at = SENT + POLICY.remind_after
    assert await referrals.check_deadlines() == 1
    assert await referrals.check_deadlines() == 0  # the reminder is not sent twice
    now.at = SENT + POLICY.expire_after
    assert await referrals.check_deadlines() == 2  # escalated, then expired
    assert staged_kinds(db) == ["offered", "reminded", "escalated", "expired"]
    assert db.read_sync(lambda s: store.load(s, REFERRAL)).status is ReferralStatus.CANCELLED


async def test_a_deletion_the_agency_does_not_confirm_is_reminded_then_escalated_once_each(
    referrals: Referrals, db: Database, now: Now
) -> None:
    withdrawn = ConsentWithdrawn(
        consent_id=CONSENT,
        request_id=REQUEST,
        office_id="office-1",
        withdrawn_at=SENT,
        withdrawn_by=WithdrawnBy.OFFICE,
    )
    event = new_event(withdrawn, source="/wegweiser/intake", subject=CONSENT)
    db.run_sync(lambda s: referrals.withdraw_consent(s, Delivery(event, "s")))
    policy = referrals.ctx.deletion
    now.at = SENT + policy.confirm_within
    await referrals.check_deadlines()
    await referrals.check_deadlines()  # nothing new is due: nothing twice
    now.at = SENT + policy.escalate_after
    await referrals.check_deadlines()
    kinds = staged_kinds(db)
    assert [k for k in kinds if k.startswith("deletion")] == [
        "deletion-requested", "deletion-reminded", "deletion-escalated"
    ]  # fmt: skip
    assert (await referrals.census()).late_deletions == 1


async def test_the_census_counts_states_and_offers_past_their_first_step(
    referrals: Referrals, now: Now
) -> None:
    before = await referrals.census()
    assert before.states == {"requested": 1} and before.late_offers == 0
    now.at = SENT + POLICY.remind_after
    await referrals.check_deadlines()
    after = await referrals.census()
    assert after.states == {"requested": 1} and after.late_offers == 1
    assert after.late_deletions == 0


async def test_verdicts_are_forgotten_once_older_than_kept_and_unknown_then(
    referrals: Referrals, db: Database, now: Now
) -> None:
    db.run_sync(
        lambda s: store.record_verdict(s, ANSWER, AGENCY, REFERRAL, "taken", SENT, "received")
    )
    ask = AskVerdict(answer_id=ANSWER)
    subject = f"ww.verdict.{AGENCY}"
    found = db.read_sync(lambda s: Referrals.verdict(s, ask, subject))
    assert found.state == "taken" and found.referral_id == REFERRAL
    assert found.status is ReferralStatus.RECEIVED
    other = db.read_sync(lambda s: Referrals.verdict(s, ask, "ww.verdict.agency-b"))
    assert other.state == "unknown"  # another agency's answer is not the asker's business

    now.at = SENT + timedelta(days=30)
    assert await referrals.forget_old_verdicts() == 0
    now.at = SENT + timedelta(days=30, seconds=1)
    assert await referrals.forget_old_verdicts() == 1
    assert db.read_sync(lambda s: Referrals.verdict(s, ask, subject)).state == "unknown"

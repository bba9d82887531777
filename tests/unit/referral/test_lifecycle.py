"""The referral state machine: every allowed and every forbidden transition."""

from datetime import UTC, datetime, timedelta

import pytest

from schemas.vocabulary import AgencyAction, ReferralStatus
from services.referral.domain import (
    RULES,
    Actor,
    DeadlinePolicy,
    ForbiddenTransition,
    NotTheRecipient,
    ReasonRequired,
    Referral,
    UnknownAction,
    WrongActor,
)

S = ReferralStatus
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

EXPECTED = {
    # (action, from) -> to ; everything not listed is forbidden
    ("offer", S.DRAFT): S.REQUESTED,
    ("acknowledge", S.REQUESTED): S.RECEIVED,
    ("accept", S.REQUESTED): S.ACCEPTED,
    ("accept", S.RECEIVED): S.ACCEPTED,
    ("reject", S.REQUESTED): S.REJECTED,
    ("reject", S.RECEIVED): S.REJECTED,
    ("start", S.ACCEPTED): S.IN_PROGRESS,
    ("hold", S.ACCEPTED): S.ON_HOLD,
    ("hold", S.IN_PROGRESS): S.ON_HOLD,
    ("resume", S.ON_HOLD): S.IN_PROGRESS,
    ("complete", S.ACCEPTED): S.COMPLETED,
    ("complete", S.IN_PROGRESS): S.COMPLETED,
    ("complete", S.ON_HOLD): S.COMPLETED,
    ("fail", S.ACCEPTED): S.FAILED,
    ("fail", S.IN_PROGRESS): S.FAILED,
    ("fail", S.ON_HOLD): S.FAILED,
    **{("cancel", s): S.CANCELLED for s in (S.DRAFT, S.REQUESTED, S.RECEIVED, S.ACCEPTED)},
    ("cancel", S.IN_PROGRESS): S.CANCELLED,
    ("cancel", S.ON_HOLD): S.CANCELLED,
    ("expire", S.REQUESTED): S.CANCELLED,
}
ALL_PAIRS = [(a, s) for a in RULES for s in S]


def referral_in(status: ReferralStatus) -> Referral:
    return Referral("r1", "q1", "agency-a", "office-1", "c1", status=status, offered_at=NOW)


def act(referral: Referral, action: str, reason: str | None = "a reason") -> None:
    rule = RULES[action]
    if rule.actor is Actor.AGENCY:
        referral.answer(action, "agency-a", NOW, reason)
    elif action == "offer":
        referral.offer(NOW)
    elif action == "cancel":
        referral.cancel(reason, NOW)
    else:
        referral._apply(action, Actor.SYSTEM, NOW, reason)


def test_the_transition_table_is_exactly_the_documented_one():
    allowed = {(a, s): RULES[a].target for a, s in ALL_PAIRS if s in RULES[a].sources}
    assert allowed == EXPECTED


@pytest.mark.parametrize(("action", "source"), [p for p in ALL_PAIRS if p in EXPECTED])
def test_an_allowed_transition_moves_the_referral_and_records_one_change(action, source):
    referral = referral_in(source)
    act(referral, action)
    assert referral.status is EXPECTED[(action, source)]
    assert referral.version == 1
    [change] = referral.changes
    assert change.kind == RULES[action].change and change.status is referral.status


@pytest.mark.parametrize(("action", "source"), [p for p in ALL_PAIRS if p not in EXPECTED])
def test_a_forbidden_transition_is_refused_and_changes_nothing(action, source):
    referral = referral_in(source)
    with pytest.raises(ForbiddenTransition, match=f"is {source}"):
        act(referral, action)
    assert referral.status is source and referral.changes == [] and referral.version == 0


@pytest.mark.parametrize("action", ["reject", "hold", "fail", "cancel"])
@pytest.mark.parametrize("reason", [None, "", "   "])
def test_actions_that_need_a_reason_are_refused_without_one(action, reason):
    source = next(iter(sorted(RULES[action].sources)))
    referral = referral_in(source)
    with pytest.raises(ReasonRequired):
        act(referral, action, reason)
    assert referral.status is source and referral.changes == []


def test_an_agency_cannot_answer_a_referral_offered_to_another_agency():
    referral = referral_in(S.REQUESTED)
    with pytest.raises(NotTheRecipient, match="agency-b never received referral r1"):
        referral.answer(AgencyAction.ACCEPT, "agency-b", NOW, None)
    assert referral.status is S.REQUESTED


def test_an_agency_cannot_cancel_and_the_office_cannot_accept():
    referral = referral_in(S.REQUESTED)
    with pytest.raises(WrongActor):
        referral.answer("cancel", "agency-a", NOW, "no")
    with pytest.raises(WrongActor):
        referral._apply("accept", Actor.OFFICE, NOW, None)
    with pytest.raises(UnknownAction):
        referral.answer("forward", "agency-a", NOW, None)


def test_a_full_life_records_every_change_in_order():
    referral = referral_in(S.DRAFT)
    for action in ("offer", "acknowledge", "accept", "start", "hold", "resume", "complete"):
        act(referral, action)
    assert [c.kind for c in referral.changes] == [
        "offered",
        "received",
        "accepted",
        "started",
        "put-on-hold",
        "resumed",
        "completed",
    ]
    assert [c.version for c in referral.changes] == list(range(1, 8))


POLICY = DeadlinePolicy(timedelta(hours=24), timedelta(hours=48), timedelta(days=7))


def test_an_unacknowledged_offer_is_reminded_then_escalated_then_expired():
    referral = referral_in(S.DRAFT)
    referral.offer(NOW)
    referral.check_deadlines(NOW + timedelta(hours=23), POLICY)
    assert [c.kind for c in referral.changes] == ["offered"]
    assert referral.next_deadline(POLICY) == NOW + timedelta(hours=24)
    referral.check_deadlines(NOW + timedelta(hours=25), POLICY)
    referral.check_deadlines(NOW + timedelta(hours=26), POLICY)
    referral.check_deadlines(NOW + timedelta(hours=49), POLICY)
    waiting = referral.status  # a local: mypy would keep `referral.status` narrowed past the call
    assert waiting is S.REQUESTED
    referral.check_deadlines(NOW + timedelta(days=8), POLICY)
    assert [c.kind for c in referral.changes] == ["offered", "reminded", "escalated", "expired"]
    assert referral.status is S.CANCELLED and referral.next_deadline(POLICY) is None
    assert "not acknowledged within 7 days" in (referral.changes[-1].reason or "")


def test_a_late_check_records_each_missed_step_once():
    referral = referral_in(S.DRAFT)
    referral.offer(NOW)
    referral.check_deadlines(NOW + timedelta(days=30), POLICY)
    referral.check_deadlines(NOW + timedelta(days=31), POLICY)
    assert [c.kind for c in referral.changes] == ["offered", "reminded", "escalated", "expired"]


def test_an_acknowledged_offer_has_no_more_deadlines():
    referral = referral_in(S.DRAFT)
    referral.offer(NOW)
    referral.check_deadlines(NOW + timedelta(hours=25), POLICY)
    referral.answer("acknowledge", "agency-a", NOW + timedelta(hours=30), None)
    referral.check_deadlines(NOW + timedelta(days=30), POLICY)
    assert referral.status is S.RECEIVED and referral.next_deadline(POLICY) is None
    assert [c.kind for c in referral.changes] == ["offered", "reminded", "received"]

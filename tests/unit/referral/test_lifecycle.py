"""The referral state machine: every allowed and every forbidden transition."""

from datetime import UTC, datetime, timedelta

import pytest

from schemas.events import SealedNote
from schemas.vocabulary import REASONS_FOR, AgencyAction, Outcome, ReasonCode, ReferralStatus
from services.referral.domain import (
    RULES,
    Actor,
    CommentMisaddressed,
    DeadlinePolicy,
    ForbiddenTransition,
    ForwardTargetUnfit,
    NotTheRecipient,
    ReasonRefused,
    Referral,
    Said,
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
    **{("forward", s): S.FORWARDED for s in (S.REQUESTED, S.RECEIVED, S.ACCEPTED)},
    ("forward", S.IN_PROGRESS): S.FORWARDED,
}
ALL_PAIRS = [(a, s) for a in RULES for s in S]


def referral_in(status: ReferralStatus) -> Referral:
    return Referral("r1", "q1", "agency-a", "office-1", "c1", status=status, offered_at=NOW)


def fitting(action: str) -> Said:
    """What the action must say to be taken: a fitting reason where one is needed, an
    outcome on completion."""
    if action == AgencyAction.COMPLETE:
        return Said(outcome=Outcome.PROVIDED)
    if action == "forward":
        return Said(sorted(REASONS_FOR[action])[0], forward_to="agency-b")
    if action in ("reject", "hold", "fail", "cancel", "expire"):
        return Said(sorted(REASONS_FOR[action])[0])
    return Said()


def act(referral: Referral, action: str, said: Said | None = None) -> None:
    said = fitting(action) if said is None else said
    rule = RULES[action]
    if action == "forward":  # made once intake sent the new referral (forward_tests below)
        referral.forward("r2", said, NOW)
    elif rule.actor is Actor.AGENCY:
        referral.answer(action, "agency-a", NOW, said)
    elif action == "offer":
        referral.offer(NOW)
    elif action == "cancel":
        referral.cancel(said, NOW)
    else:
        referral._apply(action, Actor.SYSTEM, NOW, said)


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
def test_actions_that_need_a_reason_are_refused_without_one(action):
    source = next(iter(sorted(RULES[action].sources)))
    referral = referral_in(source)
    with pytest.raises(ReasonRefused, match="needs a reason") as refused:
        act(referral, action, Said())
    assert refused.value.code == "referral.reason-required"
    assert referral.status is source and referral.changes == []


REASONED = ["reject", "hold", "fail", "cancel"]


@pytest.mark.parametrize("action", REASONED)
@pytest.mark.parametrize("code", list(ReasonCode))
def test_a_reason_code_is_taken_exactly_for_the_actions_it_fits(action, code):
    source = next(iter(sorted(RULES[action].sources)))
    referral = referral_in(source)
    if code in REASONS_FOR[action]:
        act(referral, action, Said(code))
        assert referral.changes[-1].reason is code
    else:
        with pytest.raises(ReasonRefused, match="is no reason to") as refused:
            act(referral, action, Said(code))
        assert refused.value.code == "referral.reason-unfit" and referral.changes == []


FORWARDABLE = sorted(RULES["forward"].sources)


@pytest.mark.parametrize("source", FORWARDABLE)
def test_an_agency_asks_to_forward_and_the_referral_stays_as_it_is_until_it_is_sent(source):
    referral = referral_in(source)
    referral.answer("forward", "agency-a", NOW, Said(ReasonCode.OUT_OF_AREA, forward_to="agency-b"))
    [asked] = referral.changes
    assert (asked.kind, asked.status, asked.forward_to) == ("forward-requested", source, "agency-b")
    assert referral.status is source and referral.version == 1
    referral.forward("r2", Said(ReasonCode.OUT_OF_AREA, forward_to="agency-b"), NOW)
    done = referral.changes[-1]
    assert (done.kind, done.status, done.forwarded_to) == ("forwarded", S.FORWARDED, "r2")
    assert done.reason is ReasonCode.OUT_OF_AREA and referral.version == 2


@pytest.mark.parametrize(
    ("said", "match"),
    [
        (Said(ReasonCode.NO_CAPACITY), "needs the agency to forward to"),
        (Said(ReasonCode.NO_CAPACITY, forward_to="agency-a"), "to its own agency"),
    ],
)
def test_a_forward_needs_another_agency_to_go_to(said, match):
    referral = referral_in(S.RECEIVED)
    with pytest.raises(ForwardTargetUnfit, match=match) as refused:
        referral.answer("forward", "agency-a", NOW, said)
    assert refused.value.code == "referral.forward-target" and referral.changes == []


def test_only_a_forward_names_an_agency():
    referral = referral_in(S.REQUESTED)
    with pytest.raises(ForwardTargetUnfit, match="only 'forward' names an agency"):
        referral.answer("accept", "agency-a", NOW, Said(forward_to="agency-b"))
    assert referral.status is S.REQUESTED and referral.changes == []


@pytest.mark.parametrize("source", sorted(set(S) - set(FORWARDABLE)))
def test_a_closed_or_paused_referral_is_not_forwarded(source):
    referral = referral_in(source)
    with pytest.raises(ForbiddenTransition, match=f"is {source}"):
        referral.answer("forward", "agency-a", NOW, fitting("forward"))
    assert referral.changes == []


@pytest.mark.parametrize("code", list(ReasonCode))
def test_a_forward_takes_only_the_reasons_that_say_why_another_agency_fits_better(code):
    referral = referral_in(S.ACCEPTED)
    said = Said(code, forward_to="agency-b")
    if code in REASONS_FOR["forward"]:
        referral.answer("forward", "agency-a", NOW, said)
        assert referral.changes[-1].reason is code
    else:
        with pytest.raises(ReasonRefused):
            referral.answer("forward", "agency-a", NOW, said)
        assert referral.changes == []
    with pytest.raises(ReasonRefused, match="needs a reason"):
        referral.answer("forward", "agency-a", NOW, Said(forward_to="agency-b"))


def test_another_agency_cannot_forward_a_referral_it_never_received():
    referral = referral_in(S.RECEIVED)
    with pytest.raises(NotTheRecipient):
        referral.answer("forward", "agency-b", NOW, Said(ReasonCode.OTHER, forward_to="agency-c"))


def test_the_office_cannot_claim_a_withdrawn_consent_but_a_withdrawal_cancels_with_it():
    referral = referral_in(S.ACCEPTED)
    with pytest.raises(ReasonRefused):
        referral.cancel(Said(ReasonCode.CONSENT_WITHDRAWN), NOW)
    referral.withdraw_consent(NOW)
    assert referral.status is S.CANCELLED
    assert referral.changes[-1].reason is ReasonCode.CONSENT_WITHDRAWN


@pytest.mark.parametrize(
    ("said", "code"),
    [
        (Said(), "referral.outcome-required"),
        (Said(outcome=Outcome.NOT_PROVIDED), "referral.reason-required"),
        (Said(outcome=Outcome.PARTLY_PROVIDED), "referral.reason-required"),
        (Said(ReasonCode.OTHER, Outcome.PROVIDED), "referral.reason-unfit"),
        (Said(ReasonCode.DUPLICATE, Outcome.NOT_PROVIDED), "referral.reason-unfit"),
    ],
)
def test_a_completion_says_its_outcome_and_why_not_all_was_provided(said, code):
    referral = referral_in(S.IN_PROGRESS)
    with pytest.raises(ReasonRefused) as refused:
        act(referral, "complete", said)
    assert refused.value.code == code and referral.status is S.IN_PROGRESS


def test_a_completion_records_its_outcome_and_reason():
    referral = referral_in(S.IN_PROGRESS)
    act(referral, "complete", Said(ReasonCode.MISSING_DOCUMENTS, Outcome.PARTLY_PROVIDED))
    change = referral.changes[-1]
    assert (change.outcome, change.reason) == (
        Outcome.PARTLY_PROVIDED,
        ReasonCode.MISSING_DOCUMENTS,
    )


def test_only_a_completion_has_an_outcome():
    referral = referral_in(S.REQUESTED)
    with pytest.raises(ReasonRefused) as refused:
        act(referral, "accept", Said(outcome=Outcome.PROVIDED))
    assert refused.value.code == "referral.outcome-unfit"


def note(to: str) -> SealedNote:
    return SealedNote(jwe="x" * 40, recipient_kid=to)


def test_a_comment_goes_to_the_other_side_of_the_referral_only():
    referral = referral_in(S.REQUESTED)
    with pytest.raises(CommentMisaddressed, match="only 'office-1' reads it"):
        act(referral, "reject", Said(ReasonCode.NO_CAPACITY, comment=note("office-2")))
    with pytest.raises(CommentMisaddressed):  # the agency's own comment, sealed to itself
        act(referral, "reject", Said(ReasonCode.NO_CAPACITY, comment=note("agency-a")))
    act(referral, "reject", Said(ReasonCode.NO_CAPACITY, comment=note("office-1")))
    assert referral.changes[-1].comment == note("office-1")
    office = referral_in(S.ACCEPTED)
    with pytest.raises(CommentMisaddressed):
        office.cancel(Said(ReasonCode.NEED_MET, comment=note("office-1")), NOW)
    office.cancel(Said(ReasonCode.NEED_MET, comment=note("agency-a")), NOW)
    assert office.changes[-1].comment == note("agency-a")


def test_an_agency_cannot_answer_a_referral_offered_to_another_agency():
    referral = referral_in(S.REQUESTED)
    with pytest.raises(NotTheRecipient, match="agency-b never received referral r1"):
        referral.answer(AgencyAction.ACCEPT, "agency-b", NOW, Said())
    assert referral.status is S.REQUESTED


def test_an_agency_cannot_cancel_and_the_office_cannot_accept():
    referral = referral_in(S.REQUESTED)
    with pytest.raises(WrongActor):
        referral.answer("cancel", "agency-a", NOW, Said(ReasonCode.OTHER))
    with pytest.raises(WrongActor):
        referral._apply("accept", Actor.OFFICE, NOW, Said())
    with pytest.raises(UnknownAction):
        referral.answer("pass-on", "agency-a", NOW, Said())


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
    assert referral.changes[-1].reason is ReasonCode.NOT_ACKNOWLEDGED


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
    referral.answer("acknowledge", "agency-a", NOW + timedelta(hours=30), Said())
    referral.check_deadlines(NOW + timedelta(days=30), POLICY)
    assert referral.status is S.RECEIVED and referral.next_deadline(POLICY) is None
    assert [c.kind for c in referral.changes] == ["offered", "reminded", "received"]

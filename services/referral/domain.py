"""The referral lifecycle as a pure state machine (FHIR Task states, see DOMAIN.md).

Allowed transitions are data (`RULES`); a forbidden one raises a named error; every
transition records a past-tense `Change` in `referral.changes` for the service layer to publish.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from schemas.events import SealedNote
from schemas.vocabulary import (
    OVERDUE_KINDS,
    AgencyAction,
    Outcome,
    OverdueKind,
    ReasonCode,
    ReferralStatus,
    reason_problem,
)

S = ReferralStatus
OPEN = frozenset({S.REQUESTED, S.RECEIVED, S.ACCEPTED, S.IN_PROGRESS, S.ON_HOLD})


class Actor(StrEnum):
    """Who may trigger a transition."""

    OFFICE = "office"
    AGENCY = "agency"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Rule:
    """One allowed transition: from which states, to which, by whom, recording what."""

    sources: frozenset[ReferralStatus]
    target: ReferralStatus
    actor: Actor
    change: str


RULES: dict[str, Rule] = {
    "offer": Rule(frozenset({S.DRAFT}), S.REQUESTED, Actor.OFFICE, "offered"),
    AgencyAction.ACKNOWLEDGE: Rule(frozenset({S.REQUESTED}), S.RECEIVED, Actor.AGENCY, "received"),
    AgencyAction.ACCEPT: Rule(
        frozenset({S.REQUESTED, S.RECEIVED}), S.ACCEPTED, Actor.AGENCY, "accepted"
    ),
    AgencyAction.REJECT: Rule(
        frozenset({S.REQUESTED, S.RECEIVED}), S.REJECTED, Actor.AGENCY, "rejected"
    ),
    AgencyAction.START: Rule(frozenset({S.ACCEPTED}), S.IN_PROGRESS, Actor.AGENCY, "started"),
    AgencyAction.HOLD: Rule(
        frozenset({S.ACCEPTED, S.IN_PROGRESS}), S.ON_HOLD, Actor.AGENCY, "put-on-hold"
    ),
    AgencyAction.RESUME: Rule(frozenset({S.ON_HOLD}), S.IN_PROGRESS, Actor.AGENCY, "resumed"),
    AgencyAction.COMPLETE: Rule(
        frozenset({S.ACCEPTED, S.IN_PROGRESS, S.ON_HOLD}), S.COMPLETED, Actor.AGENCY, "completed"
    ),
    AgencyAction.FAIL: Rule(
        frozenset({S.ACCEPTED, S.IN_PROGRESS, S.ON_HOLD}), S.FAILED, Actor.AGENCY, "failed"
    ),
    AgencyAction.FORWARD: Rule(
        frozenset({S.REQUESTED, S.RECEIVED, S.ACCEPTED, S.IN_PROGRESS}),
        S.FORWARDED,
        Actor.AGENCY,
        "forwarded",
    ),
    "cancel": Rule(OPEN | {S.DRAFT}, S.CANCELLED, Actor.OFFICE, "cancelled"),
    "expire": Rule(frozenset({S.REQUESTED}), S.CANCELLED, Actor.SYSTEM, OverdueKind.EXPIRED),
}


class ReferralRuleViolation(Exception):
    """A command broke a lifecycle rule; `code` is stable, the message is for people."""

    code = "referral.rule"


class ForbiddenTransition(ReferralRuleViolation):
    """The action is not allowed from the referral's current state."""

    code = "referral.forbidden-transition"

    def __init__(self, referral_id: str, action: str, status: ReferralStatus) -> None:
        super().__init__(
            f"referral {referral_id} is {status}: '{action}' is not allowed from there"
        )


class ReasonRefused(ReferralRuleViolation):
    """The reason or outcome does not fit the action (schemas.vocabulary.reason_problem):
    missing where one is needed, or a code that is no reason for it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class CommentMisaddressed(ReferralRuleViolation):
    """A comment sealed to someone other than the one who reads it."""

    code = "referral.comment-misaddressed"

    def __init__(self, sealed_to: str, reader: str) -> None:
        super().__init__(f"the comment is sealed to {sealed_to!r}; only {reader!r} reads it here")


class NotTheRecipient(ReferralRuleViolation):
    """An agency answered for a referral that was not offered to it."""

    code = "referral.not-the-recipient"

    def __init__(self, referral_id: str, agency_id: str) -> None:
        super().__init__(f"agency {agency_id} never received referral {referral_id}")


class WrongActor(ReferralRuleViolation):
    """The action belongs to someone else (e.g. an agency cannot cancel)."""

    code = "referral.wrong-actor"

    def __init__(self, action: str, actor: Actor) -> None:
        super().__init__(f"'{action}' cannot be done by the {actor}")


class ForwardTargetUnfit(ReferralRuleViolation):
    """A forward without an agency to go to, to the forwarding agency itself, or an agency
    named by an answer that is no forward."""

    code = "referral.forward-target"


class UnknownAction(ReferralRuleViolation):
    """There is no such action."""

    code = "referral.unknown-action"

    def __init__(self, action: str) -> None:
        super().__init__(f"unknown action {action!r}")


@dataclass(frozen=True, slots=True)
class DeadlinePolicy:
    """When an unacknowledged offer is reminded, escalated and expired, counted from the offer."""

    remind_after: timedelta = timedelta(days=3)
    escalate_after: timedelta = timedelta(days=7)
    expire_after: timedelta = timedelta(days=14)

    def steps(self) -> tuple[tuple[str, timedelta], ...]:
        afters = (self.remind_after, self.escalate_after, self.expire_after)
        return tuple(zip(OVERDUE_KINDS, afters, strict=True))


@dataclass(frozen=True, slots=True)
class Clock:
    """An offer's own reminder, escalation and expiry, placed before a legal deadline
    (`legal_deadline.count_back`) instead of counted from the offer by the policy."""

    remind_at: datetime
    escalate_at: datetime
    expire_at: datetime
    urgent: bool = False
    """Whether the escalation is the alert that the deadline's margin is reached (not an
    ordinary escalation that falls earlier)."""


@dataclass(frozen=True, slots=True)
class Said:
    """What comes with a command: a reason code, an outcome, a sealed comment (none of
    them readable as free text here)."""

    reason: ReasonCode | None = None
    outcome: Outcome | None = None
    comment: SealedNote | None = None
    forward_to: str | None = None
    """On a forward: the agency the referral is to go to."""


NOTHING_SAID = Said()


@dataclass(frozen=True, slots=True)
class Change:
    """Something that happened to a referral (past tense), to be published."""

    kind: str
    status: ReferralStatus
    version: int
    at: datetime
    reason: ReasonCode | None = None
    outcome: Outcome | None = None
    comment: SealedNote | None = None
    forward_to: str | None = None
    forwarded_to: str | None = None
    """On `forwarded`: the new referral that continues this one."""
    urgent: bool = False
    """On `escalated`: the alert before a legal deadline (the margin is reached)."""


@dataclass
class Referral:
    """One referral of one request to one agency."""

    id: str
    request_id: str
    agency_id: str
    office_id: str
    consent_id: str
    status: ReferralStatus = S.DRAFT
    version: int = 0
    offered_at: datetime | None = None
    deadline_stage: int = 0
    clock: Clock | None = None
    """Set when the request is under a legal deadline: the moments of its deadline steps. A
    reminder that would come no earlier than the escalation (an offer sent that close to the
    deadline) is left out: the office is alerted at once instead."""
    changes: list[Change] = field(default_factory=list)

    def offer(self, now: datetime, clock: Clock | None = None) -> None:
        """Send the referral to its agency; starts the acknowledgement clock (the policy's,
        counted from now, unless a legal deadline placed its own)."""
        self._apply("offer", Actor.OFFICE, now, NOTHING_SAID)
        self.offered_at, self.clock = now, clock

    def answer(self, action: str, agency_id: str, now: datetime, said: Said = NOTHING_SAID) -> None:
        """Apply an agency's answer; only the agency it was offered to may answer. A forward
        is only asked for here (`forward-requested`, the state unchanged): it happens in
        `forward`, once intake has sealed the case afresh to the other agency."""
        if agency_id != self.agency_id:
            raise NotTheRecipient(self.id, agency_id)
        self._check_addressed(said, self.office_id)
        if action != AgencyAction.FORWARD:
            if said.forward_to is not None:
                raise ForwardTargetUnfit(f"only 'forward' names an agency, not '{action}'")
            self._apply(action, Actor.AGENCY, now, said)
            return
        self._check(action, Actor.AGENCY, said)
        if said.forward_to is None:
            raise ForwardTargetUnfit("'forward' needs the agency to forward to")
        if said.forward_to == self.agency_id:
            raise ForwardTargetUnfit(f"referral {self.id} cannot be forwarded to its own agency")
        self._record("forward-requested", now, said)

    def forward(self, forwarded_to: str, said: Said, now: datetime) -> None:
        """Close as forwarded: `forwarded_to`, the new referral to `said.forward_to`, has
        been offered in its place."""
        self._apply(AgencyAction.FORWARD, Actor.AGENCY, now, said)
        self.changes[-1] = replace(self.changes[-1], forwarded_to=forwarded_to)

    def cancel(self, said: Said, now: datetime) -> None:
        """The office withdraws the referral."""
        self._check_addressed(said, self.agency_id)
        self._apply("cancel", Actor.OFFICE, now, said)

    @staticmethod
    def _check_addressed(said: Said, reader: str) -> None:
        """A comment is for the other side of this referral: an agency's for the referral's
        office, the office's for its agency (sealed to any other, nobody here could read it)."""
        if said.comment is not None and said.comment.recipient_kid != reader:
            raise CommentMisaddressed(said.comment.recipient_kid, reader)

    def withdraw_consent(self, now: datetime) -> None:
        """The person withdrew the consent the referral was sent under."""
        self._apply(
            "cancel", Actor.OFFICE, now, Said(ReasonCode.CONSENT_WITHDRAWN), "withdraw-consent"
        )

    def check_deadlines(self, now: datetime, policy: DeadlinePolicy) -> None:
        """Record every deadline step that has passed while the offer is unacknowledged."""
        for stage, (kind, due) in enumerate(self._steps(policy), start=1):
            if self.status is not S.REQUESTED:
                return
            if stage <= self.deadline_stage or now < due:
                continue
            self.deadline_stage = stage
            if kind == OverdueKind.EXPIRED:
                self._apply("expire", Actor.SYSTEM, now, Said(ReasonCode.NOT_ACKNOWLEDGED))
            else:
                self._record(kind, now, NOTHING_SAID)
                if kind == OverdueKind.ESCALATED and self.clock is not None and self.clock.urgent:
                    self.changes[-1] = replace(self.changes[-1], urgent=True)

    def next_deadline(self, policy: DeadlinePolicy) -> datetime | None:
        """When `check_deadlines` next has something to do, if ever."""
        steps = self._steps(policy)
        if self.status is not S.REQUESTED or self.deadline_stage >= len(steps):
            return None
        return steps[self.deadline_stage][1]

    def _steps(self, policy: DeadlinePolicy) -> tuple[tuple[str, datetime], ...]:
        """When each deadline step falls due: the legal clock's moments, or counted from the
        offer by the policy (none before the offer)."""
        if self.clock is not None:
            c = self.clock
            moments = (c.remind_at, c.escalate_at, c.expire_at)
            steps = tuple(zip(OVERDUE_KINDS, moments, strict=True))
            return steps if c.remind_at < c.escalate_at else steps[1:]
        if self.offered_at is None:
            return ()
        return tuple((kind, self.offered_at + after) for kind, after in policy.steps())

    def _apply(
        self, action: str, actor: Actor, now: datetime, said: Said, why: str | None = None
    ) -> None:
        """`why`: whose reasons apply (schemas.vocabulary.REASONS_FOR), if not the action's."""
        rule = self._check(action, actor, said, why)
        self.status = rule.target
        self._record(rule.change, now, said)

    def _check(self, action: str, actor: Actor, said: Said, why: str | None = None) -> Rule:
        """The rule that allows `action` now, with what was said; a violation raises."""
        rule = RULES.get(action)
        if rule is None:
            raise UnknownAction(action)
        if rule.actor is not actor:
            raise WrongActor(action, actor)
        if self.status not in rule.sources:
            raise ForbiddenTransition(self.id, action, self.status)
        problem = reason_problem(why or action, said.reason, said.outcome)
        if problem is not None:
            raise ReasonRefused(*problem)
        return rule

    def _record(self, kind: str, now: datetime, said: Said) -> None:
        self.version += 1
        self.changes.append(
            Change(
                kind,
                self.status,
                self.version,
                now,
                said.reason,
                said.outcome,
                said.comment,
                said.forward_to,
            )
        )

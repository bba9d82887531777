"""Deletion after a withdrawn consent, as a pure rule: requested, then reminded, then
escalated to the office, until the agency confirms."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.vocabulary import DELETION_OVERDUE_KINDS, DeletionKind


@dataclass(frozen=True, slots=True)
class DeletionPolicy:
    """When an unconfirmed deletion is reminded and escalated, counted from the request."""

    confirm_within: timedelta = timedelta(days=2)
    escalate_after: timedelta = timedelta(days=7)


class AlreadyConfirmed(Exception):
    """The agency had already confirmed this deletion."""


@dataclass
class Deletion:
    """One agency's duty to delete the data of one referral."""

    referral_id: str
    agency_id: str
    requested_at: datetime
    stage: int = 0  # 0 requested, 1 reminded, 2 escalated
    confirmed_at: datetime | None = None
    changes: list[str] = field(default_factory=list)

    @classmethod
    def request(cls, referral_id: str, agency_id: str, now: datetime) -> Deletion:
        deletion = cls(referral_id, agency_id, now)
        deletion.changes.append(DeletionKind.REQUESTED)
        return deletion

    def confirm_by(self, policy: DeletionPolicy) -> datetime:
        return self.requested_at + policy.confirm_within

    def confirm(self, now: datetime) -> None:
        """The agency says it deleted the data; a second confirmation is a no-op error."""
        if self.confirmed_at is not None:
            raise AlreadyConfirmed(self.referral_id)
        self.confirmed_at = now
        self.changes.append(DeletionKind.CONFIRMED)

    def check(self, now: datetime, policy: DeletionPolicy) -> None:
        """Record the reminder and the escalation once each, when due and unconfirmed."""
        afters = (policy.confirm_within, policy.escalate_after)
        for stage, (change, after) in enumerate(
            zip(DELETION_OVERDUE_KINDS, afters, strict=True), start=1
        ):
            if (
                self.confirmed_at is None
                and self.stage < stage
                and now >= self.requested_at + after
            ):
                self.stage = stage
                self.changes.append(change)

    def next_check(self, policy: DeletionPolicy) -> datetime | None:
        if self.confirmed_at is not None or self.stage >= len(DELETION_OVERDUE_KINDS):
            return None
        after = policy.confirm_within if self.stage == 0 else policy.escalate_after
        return self.requested_at + after

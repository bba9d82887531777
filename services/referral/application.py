"""The referral service's use cases, one method each: what the consumers hand in (in the
consumer's transaction, with its inbox row and outbox rows), what an agency asks after its
answers, and what the timers do (deadlines, forgetting old verdicts, the census for the
metrics). The bootstrap only wires this to consumers, a NATS subject and timers; the tests
drive it with a real store and no broker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlmodel import Session

from schemas.events import (
    AgencyAnswer,
    ConsentWithdrawn,
    ReferralCancellationRequested,
    ReferralForwardRefused,
    ReferralRequested,
)
from schemas.queries import AskVerdict, Verdict
from schemas.vocabulary import ReferralStatus
from services.referral import handlers, store
from wegweiser.platform.consumer import Delivery
from wegweiser.platform.db import Database
from wegweiser.platform.metrics import metrics


@dataclass(frozen=True)
class Census:
    """What the metrics show of the referrals: how many in each state, and how many offers
    and deletions have passed their first deadline step unanswered."""

    states: dict[str, int] = field(default_factory=dict)
    late_offers: int = 0
    late_deletions: int = 0


@dataclass
class Referrals:
    """The lifecycle of every referral of one county: its store, and the handlers' context
    (the clock and the deadline policies)."""

    db: Database
    ctx: handlers.Context = field(default_factory=handlers.Context)
    verdicts_keep: timedelta = timedelta(days=30)

    # What the consumers hand in, each in the consumer's transaction.

    def open(self, session: Session, delivery: Delivery[ReferralRequested]) -> None:
        handlers.open_referral(self.ctx, session, delivery)

    def withdraw_consent(self, session: Session, delivery: Delivery[ConsentWithdrawn]) -> None:
        handlers.withdraw_consent(self.ctx, session, delivery)

    def cancel(self, session: Session, delivery: Delivery[ReferralCancellationRequested]) -> None:
        handlers.cancel_referral(self.ctx, session, delivery)

    def forward_refused(self, session: Session, delivery: Delivery[ReferralForwardRefused]) -> None:
        handlers.forward_refused(self.ctx, session, delivery)

    def answer(self, session: Session, delivery: Delivery[AgencyAnswer]) -> None:
        handlers.apply_answer(self.ctx, session, delivery)

    # What an agency asks.

    @staticmethod
    def verdict(session: Session, query: AskVerdict, subject: str) -> Verdict:
        """What became of an agency's answer; the subject's last token is the asking agency
        (the broker lets each ask on its own subject only)."""
        return handlers.verdict(session, query, subject.rsplit(".", 1)[-1])

    # What the timers do.

    async def check_deadlines(self) -> int:
        """Record every deadline step an offer has passed (reminder, escalation, expiry) and
        every deletion reminder or escalation due; how many steps of offers were recorded.
        Each referral is its own transaction: one that changed meanwhile (an answer, another
        instance) is left to the next tick, which sees its new state."""
        changed = 0
        now = self.ctx.clock()
        for referral_id in await self.db.run(lambda s: store.due(s, now)):
            changed += await self._each(handlers.check_deadlines, referral_id) or 0
        for referral_id in await self.db.run(lambda s: store.deletions_due(s, now)):
            await self._each(handlers.check_deletion, referral_id)
        return changed

    async def _each(self, step: Callable[..., int | None], referral_id: str) -> int | None:
        try:
            return await self.db.run(lambda s: step(self.ctx, s, referral_id=referral_id))
        except store.ConcurrentUpdate:
            return None

    async def forget_old_verdicts(self) -> int:
        """Drop the verdicts on answers older than the inbox keeps their ids; how many."""
        cutoff = self.ctx.clock() - self.verdicts_keep
        return await self.db.run(lambda s: store.forget_verdicts_before(s, cutoff))

    async def census(self) -> Census:
        states, late_offers, late_deletions = await self.db.read(store.census)
        return Census(states, late_offers, late_deletions)

    async def measure(self) -> None:
        """Set the referral gauges from a fresh census."""
        found, census = metrics(), await self.census()
        for state in ReferralStatus:
            found.referrals.labels(state.value).set(census.states.get(state.value, 0))
        found.overdue.labels("acknowledgements").set(census.late_offers)
        found.overdue.labels("deletions").set(census.late_deletions)

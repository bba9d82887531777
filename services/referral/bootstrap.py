"""Composition root of the referral service."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

from schemas import subjects
from schemas.events import (
    AgencyAnswer,
    ConsentWithdrawn,
    ReferralCancellationRequested,
    ReferralForwardRefused,
    ReferralRequested,
)
from schemas.queries import AskVerdict
from schemas.vocabulary import ReferralStatus
from services.referral import handlers, store
from services.referral.deletion import DeletionPolicy
from services.referral.domain import DeadlinePolicy
from services.referral.legal_deadline import LegalClockPolicy
from wegweiser import registry
from wegweiser.platform.consumer import Route
from wegweiser.platform.metrics import metrics
from wegweiser.platform.runtime import ServiceRuntime
from wegweiser.settings import Settings


def build(settings: Settings) -> ServiceRuntime:
    """Wire the referral service: its consumers, its deadline timer."""
    runtime = ServiceRuntime(registry.service("referral"), settings)
    policy = DeadlinePolicy(settings.remind_after, settings.escalate_after, settings.expire_after)
    ctx = handlers.Context(
        policy=policy,
        legal=LegalClockPolicy(settings.legal_acknowledge_within, settings.legal_alert_margin),
        deletion=DeletionPolicy(settings.deletion_confirm_within, settings.deletion_escalate_after),
    )
    runtime.consume(
        "referral-intake-commands",
        [
            Route(
                subjects.REFERRAL_REQUESTED,
                ReferralRequested,
                partial(handlers.open_referral, ctx),
            ),
            Route(
                subjects.CONSENT_WITHDRAWN,
                ConsentWithdrawn,
                partial(handlers.withdraw_consent, ctx),
            ),
            Route(
                subjects.CANCELLATION_REQUESTED,
                ReferralCancellationRequested,
                partial(handlers.cancel_referral, ctx),
            ),
            Route(
                subjects.FORWARD_REFUSED,
                ReferralForwardRefused,
                partial(handlers.forward_refused, ctx),
            ),
        ],
    )
    runtime.consume(
        "referral-answers",
        [Route("ww.answer.*.*", AgencyAnswer, partial(handlers.apply_answer, ctx))],
    )
    runtime.answer(
        subjects.VERDICT_QUERY.pattern,
        AskVerdict,
        # the subject's last token is the asking agency: the broker lets each ask on its own
        lambda s, query, subject: handlers.verdict(s, query, subject.rsplit(".", 1)[-1]),
    )

    async def forget_old_verdicts() -> None:
        cutoff = datetime.now(UTC) - settings.inbox_keep
        await runtime.db.run(lambda s: store.forget_verdicts_before(s, cutoff))

    runtime.every(3600.0, forget_old_verdicts)

    check = partial(handlers.check_deadlines, ctx)
    check_deletion = partial(handlers.check_deletion, ctx)

    async def check_deadlines() -> None:
        for referral_id in await runtime.db.run(lambda s: store.due(s, ctx.clock())):
            try:
                await runtime.db.run(partial(check, referral_id=referral_id))
            except store.ConcurrentUpdate:
                continue  # an answer arrived meanwhile; the next tick sees the new state
        for referral_id in await runtime.db.run(lambda s: store.deletions_due(s, ctx.clock())):
            try:
                await runtime.db.run(partial(check_deletion, referral_id=referral_id))
            except store.ConcurrentUpdate:
                continue  # another instance, or the agency's confirmation, came first

    async def measure() -> None:
        states, late_offers, late_deletions = await runtime.db.read(store.census)
        found = metrics()
        for state in ReferralStatus:
            found.referrals.labels(state.value).set(states.get(state.value, 0))
        found.overdue.labels("acknowledgements").set(late_offers)
        found.overdue.labels("deletions").set(late_deletions)

    runtime.every(settings.deadline_check_every, check_deadlines)
    runtime.every(settings.metrics_every, measure)
    return runtime

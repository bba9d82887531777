"""Composition root of the referral service."""

from __future__ import annotations

from schemas import subjects
from schemas.events import (
    AgencyAnswer,
    ConsentWithdrawn,
    ReferralCancellationRequested,
    ReferralForwardRefused,
    ReferralRequested,
)
from schemas.queries import AskVerdict
from services.referral.application import Referrals
from services.referral.deletion import DeletionPolicy
from services.referral.domain import DeadlinePolicy
from services.referral.handlers import Context
from services.referral.legal_deadline import LegalClockPolicy
from wegweiser import registry
from wegweiser.platform.consumer import Route
from wegweiser.platform.runtime import ServiceRuntime
from wegweiser.settings import Settings


def build(settings: Settings) -> ServiceRuntime:
    """Wire the referral service: its consumers, its verdict answers, its timers."""
    runtime = ServiceRuntime(registry.service("referral"), settings)
    referrals = Referrals(
        runtime.db,
        Context(
            policy=DeadlinePolicy(
                settings.remind_after, settings.escalate_after, settings.expire_after
            ),
            legal=LegalClockPolicy(settings.legal_acknowledge_within, settings.legal_alert_margin),
            deletion=DeletionPolicy(
                settings.deletion_confirm_within, settings.deletion_escalate_after
            ),
        ),
        verdicts_keep=settings.inbox_keep,
    )
    runtime.consume(
        "referral-intake-commands",
        [
            Route(subjects.REFERRAL_REQUESTED, ReferralRequested, referrals.open),
            Route(subjects.CONSENT_WITHDRAWN, ConsentWithdrawn, referrals.withdraw_consent),
            Route(subjects.CANCELLATION_REQUESTED, ReferralCancellationRequested, referrals.cancel),
            Route(subjects.FORWARD_REFUSED, ReferralForwardRefused, referrals.forward_refused),
        ],
    )
    runtime.consume("referral-answers", [Route("ww.answer.*.*", AgencyAnswer, referrals.answer)])
    runtime.answer(subjects.VERDICT_QUERY.pattern, AskVerdict, referrals.verdict)
    runtime.every(3600.0, referrals.forget_old_verdicts)
    runtime.every(settings.deadline_check_every, referrals.check_deadlines)
    runtime.every(settings.metrics_every, referrals.measure)
    return runtime

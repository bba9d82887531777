"""Intake's view of every referral it sent, folded from the referral service's events (the
folds themselves are `case.py`'s); every event also goes into the referral's trail."""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlmodel import Session

from schemas import subjects
from schemas.events import DeletionEvent, ReferralChange, SealedNote, TransitionRefused
from services.intake import case
from services.intake.store import ReferralView, TrailEntry
from wegweiser.platform.consumer import Delivery

log = structlog.get_logger()


def project_change(session: Session, delivery: Delivery[ReferralChange]) -> None:
    """A change of a referral's state: into the trail, and the view unless it is older."""
    change, event = delivery.event.data, delivery.event
    kind = subjects.referral_kind(delivery.subject)
    record(
        session,
        event.id,
        change.referral_id,
        change.version,
        kind,
        change.status.value,
        change.reason,
        change.occurred_at,
        change.outcome,
        change.comment,
    )
    view = session.get(ReferralView, change.referral_id)
    if view is None:
        log.warning("intake.unknown_referral", referral_id=change.referral_id)
        return
    if case.fold_change(view, kind, change):
        session.add(view)


def project_deletion(session: Session, delivery: Delivery[DeletionEvent]) -> None:
    """Show the office whether each agency confirmed it deleted the person's data."""
    event = delivery.event.data
    kind = subjects.referral_kind(delivery.subject)
    record(session, delivery.event.id, event.referral_id, None, kind, None, None, event.occurred_at)
    view = session.get(ReferralView, event.referral_id)
    if view is not None:
        case.fold_deletion(view, kind)
        session.add(view)


def project_refusal(session: Session, delivery: Delivery[TransitionRefused]) -> None:
    """Show the office why a command on its referral was refused."""
    refused = delivery.event.data
    record(
        session,
        delivery.event.id,
        refused.referral_id,
        None,
        f"refused:{refused.attempted}",
        None,
        refused.message,
        refused.occurred_at,
    )
    view = session.get(ReferralView, refused.referral_id)
    if view is not None and refused.sender == "office":
        case.fold_refusal(view, refused.message)
        session.add(view)


def record(
    session: Session,
    event_id: str,
    referral_id: str,
    version: int | None,
    kind: str,
    status: str | None,
    reason: str | None,
    at: datetime,
    outcome: str | None = None,
    comment: SealedNote | None = None,
) -> None:
    """One entry of a referral's trail (a comment as it came: sealed)."""
    session.add(
        TrailEntry(
            event_id=event_id,
            referral_id=referral_id,
            version=version,
            kind=kind,
            status=status,
            reason=reason,
            outcome=outcome,
            comment=comment.model_dump(mode="json") if comment else None,
            occurred_at=at,
        )
    )

"""Intake's view of every referral it sent, folded from the referral service's events (the
folds themselves are `case.py`'s); every event also goes into the referral's trail."""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlmodel import Session

from schemas import subjects
from schemas.catalogue import CATALOGUE, subject_suffix
from schemas.events import (
    DeletionEvent,
    ReferralChange,
    ReferralEscalated,
    ReferralForwarded,
    ReferralForwardRequested,
    SealedNote,
    TransitionRefused,
)
from services.intake import case, unmet
from services.intake.store import ForwardRow, ReferralView, ReofferRow, RequestRow, TrailEntry
from wegweiser.platform.consumer import Delivery, Route

log = structlog.get_logger()


def routes() -> list[Route]:
    """What the projection consumer hands to which fold: every referral change and deletion
    event of the catalogue, and the referral service's refusals."""
    found = [Route("ww.referral.*.refused", TransitionRefused, project_refusal)]
    for spec in CATALOGUE:
        pattern = f"ww.referral.*.{subject_suffix(spec.model)}"
        if issubclass(spec.model, DeletionEvent):
            found.append(Route(pattern, spec.model, project_deletion))
        elif issubclass(spec.model, ReferralChange):
            found.append(Route(pattern, spec.model, project_change))
    return found


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
    if isinstance(change, ReferralForwardRequested) and event.causationid:
        session.add(
            ForwardRow(
                id=event.id,
                referral_id=change.referral_id,
                agency_id=change.agency_id,
                forward_to=change.forward_to,
                reason=change.reason or "other",
                answer_id=event.causationid,
                requested_at=change.occurred_at,
            )
        )  # sent or refused by `forwarding.forward`, off this consumer
    if isinstance(change, ReferralEscalated) and change.urgent:
        request = session.get(RequestRow, change.request_id)
        if request is not None and request.auto_reoffer:
            session.add(
                ReofferRow(
                    id=event.id,
                    request_id=change.request_id,
                    referral_id=change.referral_id,
                    alerted_at=change.occurred_at,
                )
            )  # offered or found needless by `reoffer.decide`, off this consumer
    view = session.get(ReferralView, change.referral_id)
    if view is None:
        log.warning("intake.unknown_referral", referral_id=change.referral_id)
        return
    if isinstance(change, ReferralForwarded):
        view.forwarded_to = change.forwarded_to
    if case.fold_change(view, kind, change):
        session.add(view)
        if view.open_key is None:  # it ended: was it the request's last chance?
            session.flush()
            unmet.mark_if_nobody_took_it(session, view.request_id)


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
        origin = session.get(ReferralView, view.forwarded_from) if view.forwarded_from else None
        if origin is not None and origin.forwarded_to == view.id:
            origin.forwarded_to = None  # the forward was never made: the first one goes on
            session.add(origin)


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

"""Forwarding: an agency that cannot help, but knows who can, passes its referral on.

The agency asks the referral service (`forward`, with a reason and the agency to go to); the
referral service checks the lifecycle and records `forward-requested`, the referral's state
unchanged. Intake holds the person's data and the consent, so intake decides, here:

- the other agency must be in the directory, able to receive sealed cases, not already
  have an open referral of the request, and be covered by the consent exactly as if the
  office sent it (`case.sendable_case`: recipient or kind, categories, special categories);
- then intake seals the case afresh to that agency (the forwarding agency never re-encrypts
  the person's data, and cannot open what the other one receives) and asks the referral
  service to offer it as a new referral `forwarded_from` the first; the referral service
  offers it and closes the first as `forwarded`, in one transaction;
- otherwise intake refuses, with the rule's code: the referral service tells the agency, and
  the office sees on the referral that the agency wished to forward and why it could not
  (it may ask the person for a wider consent and send it itself).

`decide` runs in one transaction per forward, off the consumer that recorded the wish (it
needs the directory, which is asked over NATS): `Intake.forward_pending` runs it for every
forward still pending, so a crash between the two leaves the forward pending, not lost; the
new referral's id comes from the wish's, so deciding twice sends once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from schemas import subjects
from schemas.envelope import new_event
from schemas.events import Forwarding, ReferralForwardRefused
from schemas.queries import AgencyCard
from schemas.vocabulary import AgencyAction, ReasonCode, ReferralStatus
from services.intake import SOURCE, commands, projection, views
from services.intake.office import Office
from services.intake.store import ForwardRow, ReferralView
from services.intake.vault import PersonErased
from services.referral.domain import RULES
from wegweiser.platform.outbox import stage
from wegweiser.platform.refusal import Refused

FORWARDED_REFERRALS = uuid.UUID("3f0e8f4c-7b1d-4c55-9a0e-5d2b6c1e9f40")
FORWARDABLE = RULES[AgencyAction.FORWARD].sources
"""Where a forward may leave from (the referral service's rule, checked here again under
the referral's lock, so that a referral that ended meanwhile is not sealed to another)."""


class NotForwardable(Refused):
    """The forward cannot be made (the rule's code says which)."""

    code = "forward.refused"


def new_referral_id(forward_id: str) -> str:
    """The id of the referral a forward sends: the same for the same wish, however often it
    is decided."""
    return f"ref-{uuid.uuid5(FORWARDED_REFERRALS, forward_id)}"


def pending(session: Session, limit: int = 100) -> list[str]:
    """The forwards not yet decided, oldest first."""
    return list(
        session.exec(
            select(ForwardRow.id)
            .where(ForwardRow.state == "pending")
            .order_by(col(ForwardRow.requested_at))
            .limit(limit)
        )
    )


def target_of(session: Session, forward_id: str) -> str | None:
    """The agency a pending forward is to go to (None once decided)."""
    row = session.get(ForwardRow, forward_id)
    return row.forward_to if row is not None and row.state == "pending" else None


def decide(
    offices: Mapping[str, Office], session: Session, forward_id: str, agency: AgencyCard | None
) -> str:
    """Send the forward, or refuse it with the reason; returns the forward's state."""
    row = session.get(ForwardRow, forward_id, with_for_update=True)
    if row is None or row.state != "pending":
        return row.state if row is not None else "unknown"
    origin = session.get(ReferralView, row.referral_id, with_for_update=True)
    now = datetime.now(UTC)
    agency_told: tuple[str, str] | None = None
    try:
        if origin is None or (office := offices.get(origin.office_id)) is None:
            raise NotForwardable(
                f"referral {row.referral_id} is not one intake sent", "forward.unknown-referral"
            )
        if ReferralStatus(origin.status) not in FORWARDABLE:
            raise NotForwardable(
                f"referral {origin.id} is {origin.status} now: it can no longer be forwarded",
                "forward.origin-closed",
            )
        if agency is None:
            raise NotForwardable(
                f"unknown agency {row.forward_to!r}: not in the directory", "forward.unknown-agency"
            )
        if origin.forwarded_to is not None:
            raise NotForwardable(
                f"referral {origin.id} was forwarded already, as {origin.forwarded_to}",
                "forward.already-forwarded",
            )
        if commands.open_referral_to(session, origin.request_id, agency.agency_id) is not None:
            agency_told = (
                "forward.not-possible",
                "the forward cannot be made; the office knows why",
            )
            raise NotForwardable(
                f"agency {agency.agency_id!r} already has an open referral of this request",
                "forward.already-referred",
            )  # the agency is not told that the person is in touch with another agency
        request = views.load_request(office, session, origin.request_id)
        forwarded = Forwarding(
            referral_id=origin.id,
            agency_id=row.agency_id,
            reason=ReasonCode(row.reason),
            answer_id=row.answer_id,
        )
        view = commands.offer(
            office,
            session,
            request,
            agency,
            new_referral_id(row.id),
            forwarded,
            trail_kind="requested-by-forward",
        )
    except (Refused, PersonErased) as exc:
        code = exc.code if isinstance(exc, Refused) else "forward.person-erased"
        _refuse(session, row, origin, code, str(exc), now, agency_told)
        return row.state
    view.plan_id = origin.plan_id
    origin.forwarded_to = view.id
    row.state, row.decided_at = "sent", now
    session.add_all([view, origin, row])
    return row.state


def _refuse(
    session: Session,
    row: ForwardRow,
    origin: ReferralView | None,
    code: str,
    message: str,
    now: datetime,
    agency_told: tuple[str, str] | None = None,
) -> None:
    """Tell the agency (through the referral service; `agency_told`: the code and words it
    gets, where the office's would say more than the agency may learn) and show the office
    why not."""
    row.state, row.code, row.message, row.decided_at = "refused", code, message[:500], now
    session.add(row)
    told_code, told = agency_told or (code, message)
    refused = ReferralForwardRefused(
        referral_id=row.referral_id,
        agency_id=row.agency_id,
        forward_to=row.forward_to,
        answer_id=row.answer_id,
        code=told_code,
        message=told[:500],
        refused_at=now,
    )
    event = new_event(
        refused, source=SOURCE, subject=row.referral_id, correlation_id=row.referral_id
    )
    stage(session, subjects.FORWARD_REFUSED, event)
    if origin is not None:
        origin.problem = (
            f"agency {row.agency_id} asked to forward this referral to {row.forward_to}, "
            f"which was refused: {message}"
        )
        session.add(origin)
    projection.record(
        session, event.id, row.referral_id, None, "forward-refused", None, message[:500], now
    )

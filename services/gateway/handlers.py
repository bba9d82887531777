"""The gateway's use cases: pass an event to an e-mail agency, and take an agency's answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlmodel import Session

from schemas import subjects
from schemas.envelope import answer_event_id, new_event
from schemas.events import AgencyAnswer, SealedNote
from schemas.vocabulary import AgencyAction, DeletionKind, Outcome, ReasonCode
from services.gateway import links
from services.gateway.store import CaseRow, MailRow
from wegweiser.platform import outbox
from wegweiser.platform.consumer import Unprocessable
from wegweiser.platform.inbox import first_time

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class MailAgency:
    """An agency that receives referrals by e-mail."""

    agency_id: str
    name: str
    address: str


def tell_by_mail(
    session: Session, agency: MailAgency, subject: str, body: bytes, now: datetime
) -> None:
    """Record the news and stage a notice of it (its link is made when it is sent); once per
    event. A confirmed deletion forgets the case instead, and a forgotten case gets no news."""
    try:
        event = json.loads(body)
        referral_id = str(event["data"]["referral_id"])
        event_id = str(event["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Unprocessable(f"not a referral event: {exc!r}") from None
    if not first_time(session, f"gateway-mail-{agency.agency_id}", event_id):
        return
    kind = subjects.referral_kind(subject)
    case = session.get(CaseRow, referral_id) or CaseRow(
        referral_id=referral_id, agency_id=agency.agency_id, last_event=kind
    )
    if case.agency_id != agency.agency_id:
        raise Unprocessable(f"referral {referral_id} belongs to {case.agency_id}")
    case.last_event, case.updated_at = kind, now
    session.add(case)
    if kind == DeletionKind.CONFIRMED:
        forget(session, case, now)
        return
    if case.deleted_at is not None:
        log.info("gateway.no_notice", referral_id=referral_id, kind=kind, why="case deleted")
        return
    data = event["data"]
    if kind == "offered":
        case.sealed_case = (data.get("case") or {}).get("jwe") or case.sealed_case
        case.office_id = data.get("office_id") or case.office_id
    note = data.get("comment")
    if isinstance(note, dict) and note.get("recipient_kid") == agency.agency_id:
        case.office_note = json.dumps(note)
    session.add(
        MailRow(
            message_id=f"<{event_id}.{agency.agency_id}@wegweiser>",
            recipient=agency.address,
            agency_id=agency.agency_id,
            agency_name=agency.name,
            referral_id=referral_id,
            kind=kind,
        )
    )


def forget(session: Session, case: CaseRow, now: datetime) -> None:
    """The agency confirmed it deleted the person's data: so does the gateway. The sealed
    case goes, the referral's portal sessions end and its links open nothing any more."""
    case.sealed_case, case.office_note, case.deleted_at = None, None, now
    session.add(case)
    ended = links.end_sessions(session, case.referral_id)
    log.info("gateway.case_deleted", referral_id=case.referral_id, sessions_ended=ended)


def stage_answer(
    session: Session,
    agency_id: str,
    referral_id: str,
    action: AgencyAction,
    answer_id: str | None = None,
    *,
    reason: ReasonCode | None = None,
    outcome: Outcome | None = None,
    comment: SealedNote | None = None,
    forward_to: str | None = None,
) -> str:
    """The agency's answer, as its own event, published through the outbox (a comment
    already sealed to the office: it never rests here in clear)."""
    data = AgencyAnswer(
        referral_id=referral_id,
        agency_id=agency_id,
        action=action,
        reason=reason,
        outcome=outcome,
        comment=comment,
        forward_to=forward_to,
    )
    event = new_event(data, source=f"/wegweiser/gateway/{agency_id}", subject=referral_id)
    if answer_id:
        event = event.model_copy(update={"id": answer_event_id(agency_id, answer_id)})
    outbox.stage(session, subjects.answer(agency_id, action.value), event)
    return event.id

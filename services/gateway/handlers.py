"""The gateway's use cases: pass an event to an e-mail agency, and take an agency's answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from schemas import subjects
from schemas.envelope import answer_event_id, new_event
from schemas.events import AgencyAnswer
from schemas.vocabulary import AgencyAction
from services.gateway import links, mail
from services.gateway.store import CaseRow, MailRow
from wegweiser.platform import outbox
from wegweiser.platform.consumer import Unprocessable
from wegweiser.platform.inbox import first_time


@dataclass(frozen=True, slots=True)
class MailAgency:
    """An agency that receives referrals by e-mail."""

    agency_id: str
    name: str
    address: str


def tell_by_mail(
    session: Session,
    agency: MailAgency,
    subject: str,
    body: bytes,
    now: datetime,
    portal_url: str,
    link_valid_for: timedelta,
) -> None:
    """Record the news and stage a notice with a fresh one-time link; once per event."""
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
    sealed = (event["data"].get("case") or {}).get("jwe") if kind == "offered" else None
    case.sealed_case = sealed or case.sealed_case
    case.last_event, case.updated_at = kind, now
    session.add(case)
    token = links.issue(session, agency.agency_id, referral_id, now, link_valid_for)
    title, text = mail.notice(
        agency.name, referral_id, kind, f"{portal_url}/portal/{token}", now + link_valid_for
    )
    session.add(
        MailRow(
            message_id=f"<{event_id}.{agency.agency_id}@wegweiser>",
            recipient=agency.address,
            subject=title,
            body=text,
        )
    )


def stage_answer(
    session: Session,
    agency_id: str,
    referral_id: str,
    action: AgencyAction,
    reason: str | None,
    answer_id: str | None = None,
) -> str:
    """The agency's answer, as its own event, published through the outbox."""
    data = AgencyAnswer(referral_id=referral_id, agency_id=agency_id, action=action, reason=reason)
    event = new_event(data, source=f"/wegweiser/gateway/{agency_id}", subject=referral_id)
    if answer_id:
        event = event.model_copy(update={"id": answer_event_id(agency_id, answer_id)})
    outbox.stage(session, subjects.answer(agency_id, action.value), event)
    return event.id

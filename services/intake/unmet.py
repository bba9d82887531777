"""Unmet needs, for the county's monitoring report: which needs found no agency.

A need is unmet at one of two stages, each recorded once per request and need:

- `none-fitting`: when the request is recorded, the directory finds no agency for it (no
  candidate, and no agency with an interpreter either);
- `none-took-it`: every referral of the request ended without an agency helping (declined,
  failed, expired, withdrawn or forwarded on to nobody who helped) and none is open. A
  referral goes to an agency for the request, not for one need, so then every need of the
  request is recorded.

What is recorded is metadata (`UnmetNeedRecorded`): the need, the county and municipality,
the languages, an age band, the urgency and, per reason, how many agencies offering the need
there were ruled out (all of them, as the directory counts them, not only those its answer
lists); the request's pseudonymous id, which the report drops; never a name, a contact or a
note. The event goes to the audit log, which the report reads.

Intake marks a request to check (`RequestRow.unmet_check`) when it is recorded and when its
last referral ends; `Intake.follow_up` asks the directory and calls `record`, in one
transaction per request, so a crash leaves the check pending, not lost or doubled.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from schemas import subjects
from schemas.envelope import new_event
from schemas.events import UnmetNeedRecorded, age_band
from schemas.queries import Suggestions
from schemas.vocabulary import CLOSED_STATES, Need, ReasonCode, ReferralStatus
from services.intake import SOURCE
from services.intake.case import Person
from services.intake.store import ReferralView, RequestRow, UnmetNeedRow
from wegweiser.platform.outbox import stage

STAGES = ("none-fitting", "none-took-it")


def pending(session: Session, limit: int = 100) -> list[tuple[str, str]]:
    """(request id, office id) of each request whose unmet needs are to be checked."""
    rows = session.exec(
        select(RequestRow.id, RequestRow.office_id)
        .where(col(RequestRow.unmet_check).is_not(None))
        .order_by(col(RequestRow.recorded_at))
        .limit(limit)
    )
    return [(request_id, office_id) for request_id, office_id in rows]


def unmet(found: Suggestions) -> bool:
    """Whether a need found nobody: no candidate and no agency with an interpreter."""
    return not found.candidates and not found.bridges


UNAVAILING = frozenset({ReferralStatus.REJECTED, ReferralStatus.FAILED})
"""How a referral ends when its agency could not help."""
NOT_A_GAP = frozenset(
    {
        ReasonCode.CONSENT_WITHDRAWN,
        ReasonCode.NEED_MET,
        ReasonCode.SENT_IN_ERROR,
        ReasonCode.DUPLICATE,
        ReasonCode.PERSON_DECLINED,
    }
)
"""Reasons a referral ends that say nothing of the network (the person no longer wants or
needs it, or it should not have been sent): a request ending so is no unmet need."""


def mark_if_nobody_took_it(session: Session, request_id: str) -> None:
    """After a referral of the request ended: if none is open or helped, at least one agency
    declined, failed or let the offer lapse, and no referral ended for a reason that is no
    gap, the request's needs are to be recorded as unmet (`none-took-it`)."""
    ended = session.exec(
        select(ReferralView.status, ReferralView.reason).where(
            ReferralView.request_id == request_id
        )
    ).all()
    states = [ReferralStatus(status) for status, _ in ended]
    reasons = {reason for _, reason in ended}
    if not ended or any(s not in CLOSED_STATES or s is ReferralStatus.COMPLETED for s in states):
        return
    lapsed = ReasonCode.NOT_ACKNOWLEDGED in reasons
    if not (lapsed or UNAVAILING & set(states)) or reasons & NOT_A_GAP:
        return
    request = session.get(RequestRow, request_id)
    if request is not None and request.erased_at is None:
        request.unmet_check = "none-took-it"
        session.add(request)


def record(
    session: Session,
    request_id: str,
    person: Person | None,
    found: Mapping[Need, Suggestions],
) -> int:
    """Record the request's unmet needs at the stage it is marked for (`person`: its data,
    opened by the caller, None where it cannot be; `found`: the directory's answer for each
    need); how many were recorded. The mark is cleared."""
    row = session.get(RequestRow, request_id, with_for_update=True)
    if row is None or row.unmet_check not in STAGES:
        return 0
    at_stage, row.unmet_check = row.unmet_check, None
    session.add(row)
    if person is None or row.erased_at is not None:
        return 0
    recorded = 0
    for need in person.needs:
        answer = found.get(need)
        if at_stage == "none-fitting" and (answer is None or not unmet(answer)):
            continue  # found someone (or the directory was not asked: nothing to say)
        if session.get(UnmetNeedRow, (request_id, need.value, at_stage)) is not None:
            continue
        session.add(UnmetNeedRow(request_id=request_id, need=need.value, stage=at_stage))
        event = UnmetNeedRecorded(
            request_id=request_id,
            office_id=row.office_id,
            need=need,
            stage=at_stage,
            county=person.municipality[:5] if person.municipality else None,
            municipality=person.municipality,
            languages=tuple(person.languages),
            age_band=age_band(person.age),
            urgency=row.urgency,
            excluded=answer.exclusion_counts() if answer else (),
            recorded_at=datetime.now(UTC),
        )
        stage(session, subjects.NEED_UNMET, new_event(event, source=SOURCE, subject=request_id))
        recorded += 1
    return recorded

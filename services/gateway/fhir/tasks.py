"""The FHIR view's use cases: follow the agency's referral events, and take its Task updates
as answers, checked against the lifecycle (services.referral.domain.RULES) before they go."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from fhir.resources.R4B.task import Task
from sqlmodel import Session, col, select

from schemas import subjects
from schemas.envelope import answer_event_id
from schemas.events import SealedNote
from schemas.vocabulary import (
    AgencyAction,
    DeletionKind,
    Outcome,
    ReasonCode,
    ReferralStatus,
    reason_problem,
)
from services.gateway.fhir import codes, resources
from services.gateway.fhir.errors import FhirRefused, invalid, not_found
from services.gateway.fhir.store import TaskRow
from services.gateway.handlers import stage_answer
from services.referral.domain import RULES, Actor, ForbiddenTransition, WrongActor
from wegweiser.platform import outbox
from wegweiser.platform.consumer import Unprocessable
from wegweiser.platform.inbox import first_time

log = structlog.get_logger()

ANSWERED = ("status", "statusReason", "output")
"""What an agency may change in its Task; the rest is the office's or the gateway's."""
KEPT_AS_IS = (*ANSWERED, "meta", "text", "lastModified")
"""What a client may leave out or change without it counting as a change of the Task."""


def record(
    session: Session, agency_id: str, subject: str, body: bytes, now: datetime
) -> str | None:
    """Follow one referral event in the agency's view; the Task it changed, if any (the same
    event again changes nothing but is still named, so that a notification lost in a crash is
    sent on its redelivery)."""
    try:
        event = json.loads(body)
        data = event["data"]
        referral_id = str(data["referral_id"])
        event_id = str(event["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Unprocessable(f"not a referral event: {exc!r}") from None
    kind = subjects.referral_kind(subject)
    row = session.get(TaskRow, referral_id)
    if row is not None and row.agency_id != agency_id:
        raise Unprocessable(f"referral {referral_id} belongs to {row.agency_id}")
    if not first_time(session, f"gateway-fhir-{agency_id}", event_id):
        return referral_id if row is not None else None
    if row is None:
        if kind != "offered":
            log.info("gateway.fhir_unknown_referral", referral_id=referral_id, kind=kind)
            return None
        row = _offered(agency_id, data, now)
    else:
        _follow(row, kind, data, now)
        row.version += 1
    row.updated_at = now
    session.add(row)
    return referral_id


def _offered(agency_id: str, data: dict[str, Any], now: datetime) -> TaskRow:
    try:
        return TaskRow(
            referral_id=str(data["referral_id"]),
            agency_id=agency_id,
            request_id=str(data["request_id"]),
            office_id=str(data["office_id"]),
            consent_id=str(data["consent_id"]),
            status=ReferralStatus(data["status"]).value,
            sealed_case=(data.get("case") or {}).get("jwe"),
            authored_on=datetime.fromisoformat(data["occurred_at"]),
            updated_at=now,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise Unprocessable(f"not an offer: {exc!r}") from None


CONFIRMING = frozenset(
    {rule.change for rule in RULES.values() if rule.actor is Actor.AGENCY} | {"forward-requested"}
)
"""The referral service's news that confirms an answer of the agency's."""


def _follow(row: TaskRow, kind: str, data: dict[str, Any], now: datetime) -> None:
    """The referral service's word is final, but news older than an answer the agency gave
    since does not undo it: answers are confirmed (or refused) in the order they were given."""
    if kind == "refused":  # an answer refused: back to where the referral stands
        if str(data.get("sender", "")).startswith("agency:") and row.unconfirmed:
            row.unconfirmed -= 1
        if data.get("current_status") and not row.unconfirmed:
            row.status, row.reason, row.outcome = data["current_status"], None, None
        return
    if kind.startswith("deletion-"):
        row.consent_active = False
        if kind == DeletionKind.CONFIRMED:
            row.sealed_case, row.deleted_at = None, now
        return
    if kind in CONFIRMING and row.unconfirmed:
        row.unconfirmed -= 1
        if row.unconfirmed:
            return  # a later answer is still on its way: its status stands
    if "status" in data and ReferralStatus(data["status"]).value != row.status:
        row.status = ReferralStatus(data["status"]).value
        row.reason, row.outcome = data.get("reason"), data.get("outcome")


def owned(session: Session, agency_id: str, referral_id: str, kind: str = "Task") -> TaskRow:
    """The agency's own referral; another agency's is as unknown as none."""
    row = session.get(TaskRow, referral_id)
    if row is None or row.agency_id != agency_id:
        raise not_found(kind, referral_id)
    return row


def consent_row(session: Session, agency_id: str, consent_id: str) -> TaskRow:
    """The latest of the agency's referrals sent under the consent."""
    found = session.exec(
        select(TaskRow)
        .where(TaskRow.agency_id == agency_id, TaskRow.consent_id == consent_id)
        .order_by(col(TaskRow.updated_at).desc())
    ).first()
    if found is None:
        raise not_found("Consent", consent_id)
    return found


@dataclass(frozen=True, slots=True)
class Search:
    """A Task search the endpoint understands (services.gateway.fhir.search parses it)."""

    statuses: frozenset[str] | None = None
    """None: any status."""
    updated: tuple[tuple[str, datetime], ...] = ()
    ids: frozenset[str] = frozenset()
    count: int = 100


COMPARE = {
    "eq": lambda c, v: c == v,
    "gt": lambda c, v: c > v,
    "ge": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "le": lambda c, v: c <= v,
}


def search(session: Session, agency_id: str, terms: Search) -> list[TaskRow]:
    """The agency's Tasks that match every term, most recently changed first."""
    query = select(TaskRow).where(TaskRow.agency_id == agency_id)
    if terms.ids:
        query = query.where(col(TaskRow.referral_id).in_(terms.ids))
    for prefix, moment in terms.updated:
        query = query.where(COMPARE[prefix](col(TaskRow.updated_at), moment))
    if terms.statuses is not None:
        shown_as = [s.value for s, shown in codes.TASK_STATUS.items() if shown in terms.statuses]
        query = query.where(col(TaskRow.status).in_(shown_as))
    newest_first = query.order_by(col(TaskRow.updated_at).desc()).limit(terms.count)
    return list(session.exec(newest_first).all())


@dataclass(frozen=True, slots=True)
class Update:
    """A Task update taken: the Task as it stands now, and the answer's event id (None when
    the update changed nothing)."""

    task: Task
    event_id: str | None


SealComment = Callable[[str, TaskRow], SealedNote]
"""Seal an agency's comment on a referral to the referral's office."""


def update(
    session: Session,
    agency_id: str,
    task_id: str,
    submitted: Task,
    now: datetime,
    seal_comment: SealComment | None = None,
    if_match: str | None = None,
) -> Update:
    """Take the agency's new Task status as its answer, if the lifecycle allows it from where
    the referral stands; refuse (FhirRefused) with nothing changed otherwise. `seal_comment`
    seals a statusReason.text of the agency's own to the office (free text never rests here);
    `if_match`: the version the agency last read (an ETag), if it wants the update refused
    when the Task has changed since."""
    row = owned(session, agency_id, task_id)
    if if_match is not None and if_match.strip() not in (f'W/"{row.version}"', f'"{row.version}"'):
        raise FhirRefused(
            412,
            "conflict",
            "fhir.version-conflict",
            f"Task/{task_id} is at version {row.version}, not {if_match.strip()}: read it again",
        )
    if submitted.id is not None and submitted.id != task_id:
        raise FhirRefused(
            400, "invalid", "fhir.id-mismatch", f"the Task's id {submitted.id!r} is not {task_id!r}"
        )
    current = resources.task(row)
    changed = _changed_elements(current, submitted)
    if changed:
        raise invalid(
            "fhir.read-only",
            f"only {', '.join(ANSWERED)} may change; this update changes {', '.join(changed)}",
            f"Task.{changed[0]}",
        )
    if _same_answer(current, submitted):
        return Update(current, None)
    if _confirms_deletion(submitted):
        return _confirm_deletion(session, row, submitted, now)
    status = ReferralStatus(row.status)
    action = codes.answer_for(submitted.status or "", status)
    if action is None:
        raise invalid(
            WrongActor.code,
            f"an agency cannot set Task.status {submitted.status!r}: it may set "
            f"{', '.join(codes.ANSWER_FOR)}",
            "Task.status",
        )
    rule = RULES[action]
    if rule.actor is not Actor.AGENCY:  # pragma: no cover - ANSWER_FOR names agency answers only
        raise invalid(WrongActor.code, f"'{action}' cannot be done by the agency")
    if status not in rule.sources:
        raise FhirRefused(
            409,
            "business-rule",
            ForbiddenTransition.code,
            str(ForbiddenTransition(task_id, action, status)),
            "Task.status",
        )
    reason = _reason(submitted)
    outcome = _outcome(submitted)
    problem = reason_problem(action, reason, outcome)
    if problem is not None:
        raise invalid(problem[0], problem[1], "Task.statusReason")
    comment = _comment(submitted, reason)
    note = seal_comment(comment, row) if comment and seal_comment else None
    event_id = stage_answer(
        session,
        agency_id,
        task_id,
        action,
        f"fhir-{task_id}-v{row.version}",
        reason=reason,
        outcome=outcome,
        comment=note,
    )
    row.status, row.reason = rule.target.value, reason.value if reason else None
    row.outcome = outcome.value if outcome else None
    row.unconfirmed += 1
    row.version += 1
    row.updated_at = now
    session.add(row)
    log.info("gateway.fhir_answer", referral_id=task_id, action=action.value)
    return Update(resources.task(row), event_id)


def _confirms_deletion(submitted: Task) -> bool:
    """An output `deletion-confirmed` (valueBoolean true): the agency deleted the case."""
    return any(
        _codes(output.type, codes.OUTPUT_TYPE) == [codes.DELETION_CONFIRMED]
        and output.valueBoolean is True
        for output in submitted.output or []
    )


def _confirm_deletion(session: Session, row: TaskRow, submitted: Task, now: datetime) -> Update:
    """The agency's confirmation that it deleted the referral's data, after the consent was
    withdrawn: an answer of its own (`confirm-deletion`), given once whatever the retries;
    the Task's status does not change with it."""
    if row.consent_active:
        raise FhirRefused(
            409,
            "business-rule",
            "deletion.not-requested",
            f"no deletion of referral {row.referral_id} was asked of this agency",
            "Task.output",
        )
    if (submitted.status or "") != codes.TASK_STATUS[ReferralStatus(row.status)]:
        raise invalid(
            "fhir.deletion-alone",
            "confirm a deletion without changing Task.status in the same update",
            "Task.status",
        )
    answer_id = f"fhir-{row.referral_id}-deletion"
    event_id = answer_event_id(row.agency_id, answer_id)
    if outbox.is_staged(session, event_id):  # a retry before it left: the same answer
        return Update(resources.task(row), event_id)
    stage_answer(
        session, row.agency_id, row.referral_id, AgencyAction.CONFIRM_DELETION, answer_id
    )  # once published, a repeat is dropped by the stream, or taken as already confirmed
    row.version += 1
    row.updated_at = now
    session.add(row)
    log.info("gateway.fhir_answer", referral_id=row.referral_id, action="confirm-deletion")
    return Update(resources.task(row), event_id)


def _dump(task: Task) -> dict[str, Any]:
    return task.model_dump(mode="json", exclude_none=True)


def _changed_elements(current: Task, submitted: Task) -> list[str]:
    ours, theirs = _dump(current), _dump(submitted)
    theirs.setdefault("id", current.id)
    names = (set(ours) | set(theirs)) - set(KEPT_AS_IS)
    return sorted(n for n in names if ours.get(n) != theirs.get(n))


def _same_answer(current: Task, submitted: Task) -> bool:
    ours, theirs = _dump(current), _dump(submitted)
    return all(ours.get(n) == theirs.get(n) for n in ANSWERED)


def _codes(concept: Any, system: str) -> list[str]:
    return [c.code for c in (concept.coding or []) if c.system == system and c.code]


def _reason(submitted: Task) -> ReasonCode | None:
    if submitted.statusReason is None:
        return None
    found = _codes(submitted.statusReason, codes.REASON)
    choices = ", ".join(r.value for r in ReasonCode)
    if len(found) != 1 or found[0] not in set(ReasonCode):
        raise invalid(
            "fhir.reason-code",
            f"statusReason needs one coding of {codes.REASON}: one of {choices}",
            "Task.statusReason.coding",
        )
    return ReasonCode(found[0])


def _outcome(submitted: Task) -> Outcome | None:
    found = [
        code
        for output in submitted.output or []
        if _codes(output.type, codes.OUTPUT_TYPE) == ["outcome"]
        and output.valueCodeableConcept is not None
        for code in _codes(output.valueCodeableConcept, codes.OUTCOME)
    ]
    if not found:
        return None
    if len(found) > 1 or found[0] not in set(Outcome):
        choices = ", ".join(o.value for o in Outcome)
        raise invalid(
            "fhir.outcome-code",
            f"Task.output 'outcome' takes one code of {codes.OUTCOME}: one of {choices}",
            "Task.output",
        )
    return Outcome(found[0])


def _comment(submitted: Task, reason: ReasonCode | None) -> str | None:
    """The agency's own words in statusReason.text (not just the code, as the Task shows it)."""
    text = (submitted.statusReason.text or "").strip() if submitted.statusReason else ""
    return text if text and text != (reason.value if reason else None) else None

"""Webhook callbacks, each taken once.

An agency signs its callback by the Standard Webhooks scheme, and a signature counts for
five minutes either side of the gateway's clock; within that window a captured callback
could be sent again. So:

- a `webhook-id` is taken once per agency. It is remembered for `REMEMBER_FOR` (24 hours,
  far past the tolerance window; older ones are pruned as new callbacks come), and a second
  callback with it is refused, `callback.replayed` (409), changing nothing.
- an answer carries the agency's own `answer_id`, taken once per agency and kept for good.
  The same answer under the same id (a retry whose 202 was lost, with a new webhook-id) is
  absorbed: 200 with the same event id, no second event. Another answer under an id already
  used is refused, `callback.answer-id-reused` (409), changing nothing.

The webhook-id, the answer id and the answer's event are written in one transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from schemas.envelope import answer_event_id
from schemas.events import AgencyId, Comment, SealedNote
from schemas.vocabulary import AgencyAction, Outcome, ReasonCode, reason_problem
from services.gateway.handlers import stage_answer
from services.gateway.store import AnswerRow, CallbackRow

REMEMBER_FOR = timedelta(hours=24)
LONGEST_ID = 200


class AnswerTerms(BaseModel):
    """What an agency's answer says, by any of the gateway's ways (a callback, the portal):
    checked by the one rule the referral service applies (schemas.vocabulary.reason_problem),
    so that an answer it would refuse for its form is refused here, with the reason."""

    model_config = ConfigDict(extra="forbid")
    action: AgencyAction
    reason: ReasonCode | None = None
    outcome: Outcome | None = None
    forward_to: AgencyId | None = Field(
        default=None, description="on 'forward': the agency the referral is to go to"
    )

    @model_validator(mode="after")
    def _fits(self) -> AnswerTerms:
        problem = reason_problem(self.action, self.reason, self.outcome)
        if problem is not None:
            raise ValueError(problem[1])
        if (self.action is AgencyAction.FORWARD) != (self.forward_to is not None):
            raise ValueError(
                "'forward' needs the agency to forward to"
                if self.forward_to is None
                else f"only 'forward' names an agency, not '{self.action}'"
            )
        return self


class CallbackAnswer(AnswerTerms):
    """What an agency's software POSTs to answer a referral."""

    referral_id: str
    comment: Comment | None = Field(
        default=None, description="for the office: sealed to it by the gateway at once"
    )
    office: str | None = Field(
        default=None,
        description="the offer's office_id (needed for a comment only when the county has "
        "several offices)",
    )
    answer_id: str = Field(min_length=1, max_length=LONGEST_ID)

    def digest(self) -> str:
        said = [self.referral_id, self.action.value, self.reason, self.outcome, self.comment]
        said += [self.forward_to] if self.forward_to else []  # as before forwarding otherwise
        return hashlib.sha256(json.dumps(said).encode()).hexdigest()


class CallbackRefused(Exception):
    """A signed callback that is not taken; `code` is stable, the message is for people."""

    code = "callback.refused"


class Replayed(CallbackRefused):
    """This webhook-id was taken before: the callback is a replay (or a second copy)."""

    code = "callback.replayed"

    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"webhook-id {webhook_id!r} was already accepted")


class AnswerIdReused(CallbackRefused):
    """The answer_id was used before for a different answer."""

    code = "callback.answer-id-reused"

    def __init__(self, answer_id: str) -> None:
        super().__init__(f"answer_id {answer_id!r} was already used for a different answer")


class TakenConcurrently(CallbackRefused):
    """Another request was taking the same webhook-id or answer_id at the same moment."""

    code = "callback.concurrent"

    def __init__(self) -> None:
        super().__init__("a callback with this webhook-id or answer_id was being taken at once")


@dataclass(frozen=True, slots=True)
class Taken:
    """The answer's event id, and whether this callback staged it (or an earlier one did)."""

    event_id: str
    first: bool


def take(
    session: Session,
    agency_id: str,
    webhook_id: str,
    answer: CallbackAnswer,
    now: datetime,
    comment: SealedNote | None = None,
) -> Taken:
    """Take a verified callback once: stage its answer (with its comment as sealed to the
    office), or say it was staged already."""
    session.execute(delete(CallbackRow).where(col(CallbackRow.received_at) < now - REMEMBER_FOR))
    if session.get(CallbackRow, (agency_id, webhook_id)) is not None:
        raise Replayed(webhook_id)
    known = session.get(AnswerRow, (agency_id, answer.answer_id))
    if known is not None and known.digest != answer.digest():
        raise AnswerIdReused(answer.answer_id)
    session.add(CallbackRow(agency_id=agency_id, webhook_id=webhook_id, received_at=now))
    if known is None:
        session.add(
            AnswerRow(
                agency_id=agency_id,
                answer_id=answer.answer_id,
                digest=answer.digest(),
                taken_at=now,
            )
        )
    try:
        session.flush()
    except IntegrityError:  # sent again, it learns which of the two above it is
        raise TakenConcurrently() from None
    if known is not None:
        return Taken(answer_event_id(agency_id, answer.answer_id), first=False)
    event_id = stage_answer(
        session,
        agency_id,
        answer.referral_id,
        answer.action,
        answer.answer_id,
        reason=answer.reason,
        outcome=answer.outcome,
        comment=comment,
        forward_to=answer.forward_to,
    )
    return Taken(event_id, first=True)

"""The CloudEvents 1.0 envelope every Wegweiser event travels in."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

EVENT_TYPE_PREFIX = "de.wegweiser."
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ID = rf"^(?:[a-z]{{1,8}}-){{0,3}}(?:{_UUID}|[0-9a-f]{{32}})$"
"""The closed form of every id an event carries (its own, its correlation and causation, a
referral's, a request's, a consent's): a UUID or 32 hex digits, optionally after short
lowercase prefixes (`ref-`, `ack-`). No sender can write a name, a date of birth or an
address into a field of this form, and logs keep these fields forever."""


class Contract(BaseModel):
    """Base of every wire model: frozen, and unknown fields are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Payload(Contract):
    """An event's `data`; each subclass names its CloudEvents type once."""

    event_type: ClassVar[str]


P = TypeVar("P", bound=Payload)


class Envelope(Contract, Generic[P]):
    """A CloudEvents 1.0 structured-mode event with correlation and causation ids."""

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=64, pattern=ID)
    source: str = Field(min_length=1, pattern=r"^/wegweiser/[a-z0-9-/]+$")
    type: str = Field(pattern=r"^de\.wegweiser\.[a-z-]+(\.[a-z-]+)*\.v[0-9]+$")
    subject: str = Field(min_length=1, max_length=128)
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    correlationid: str = Field(min_length=1, max_length=64, pattern=ID)
    causationid: str | None = Field(default=None, max_length=64, pattern=ID)
    data: P

    @model_validator(mode="after")
    def _type_matches_data(self) -> Self:
        expected = type(self.data).event_type
        if self.type != expected:
            raise ValueError(f"type {self.type!r} does not match data of type {expected!r}")
        return self


def new_event(
    data: P,
    *,
    source: str,
    subject: str,
    correlation_id: str | None = None,
    causation: Envelope[Any] | None = None,
    now: datetime | None = None,
) -> Envelope[P]:
    """Wrap a payload; correlation and causation follow the event that caused it, unless a
    correlation id is given (a service correlates by its own ids, not a sender's)."""
    event_id = str(uuid.uuid4())
    if causation is not None and correlation_id is None:
        correlation_id = causation.correlationid
    # parametrised by the payload's class, so that the envelope validates as what it carries
    envelope: Envelope[P] = Envelope[type(data)](  # type: ignore[misc,operator]
        id=event_id,
        source=source,
        type=type(data).event_type,
        subject=subject,
        time=now or datetime.now(UTC),
        correlationid=correlation_id or event_id,
        causationid=causation.id if causation is not None else None,
        data=data,
    )
    return envelope


_ID = re.compile(ID)


def is_id(value: str | None) -> bool:
    """Whether `value` has the closed form of an id (see `ID`)."""
    return value is not None and bool(_ID.match(value))


ANSWER_IDS = uuid.UUID("7d7f6a52-3c0e-4b8e-9a61-2f5b8e0c4d21")


def answer_event_id(agency_id: str, answer_id: str) -> str:
    """The event id of an agency's answer that it gave its own idempotency key: the same key
    gives the same id (the stream drops the repeat), in the closed form of every event id."""
    return str(uuid.uuid5(ANSWER_IDS, f"{agency_id}:{answer_id}"))

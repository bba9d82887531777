"""The CloudEvents 1.0 envelope every Wegweiser event travels in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

EVENT_TYPE_PREFIX = "de.wegweiser."


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
    id: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1, pattern=r"^/wegweiser/[a-z0-9-/]+$")
    type: str = Field(pattern=r"^de\.wegweiser\.[a-z-]+(\.[a-z-]+)*\.v[0-9]+$")
    subject: str = Field(min_length=1, max_length=128)
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    correlationid: str = Field(min_length=1, max_length=64)
    causationid: str | None = Field(default=None, max_length=64)
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
    """Wrap a payload; correlation and causation follow the event that caused it."""
    event_id = str(uuid.uuid4())
    if causation is not None:
        correlation_id = causation.correlationid
    return Envelope[type(data)](  # type: ignore[misc,operator]
        id=event_id,
        source=source,
        type=type(data).event_type,
        subject=subject,
        time=now or datetime.now(UTC),
        correlationid=correlation_id or event_id,
        causationid=causation.id if causation is not None else None,
        data=data,
    )

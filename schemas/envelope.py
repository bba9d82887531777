"""The CloudEvents 1.0 envelope every Wegweiser event travels in."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

try:  # the agency SDK may run without OpenTelemetry: its events then carry no trace context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    W3C: TraceContextTextMapPropagator | None = TraceContextTextMapPropagator()
except ImportError:  # pragma: no cover - OpenTelemetry is a dependency of Wegweiser itself
    W3C = None

EVENT_TYPE_PREFIX = "de.wegweiser."
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ID = rf"^(?:[a-z]{{1,8}}-){{0,3}}(?:{_UUID}|[0-9a-f]{{32}})$"
"""The closed form of every id an event carries (its own, its correlation and causation, a
referral's, a request's, a consent's): a UUID or 32 hex digits, optionally after short
lowercase prefixes (`ref-`, `ack-`). No sender can write a name, a date of birth or an
address into a field of this form, and logs keep these fields forever."""


EVENT_TYPE = r"^de\.wegweiser\.[a-z-]+(\.[a-z-]+)*\.v[0-9]+$"
"""The form of every event's CloudEvents `type`: reverse DNS, then its version."""
TRACEPARENT = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-[\x21-\x7e]*)?$"
"""A W3C Trace Context `traceparent` (version-traceid-parentid-flags, lowercase hex), the
CloudEvents distributed-tracing extension's attribute; a later version may append fields."""
_KEY = r"[a-z0-9][a-z0-9_*/-]{0,255}(@[a-z][a-z0-9_*/-]{0,13})?"
_MEMBER = rf"{_KEY}=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{{0,255}}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
TRACESTATE = rf"^{_MEMBER}([ \t]*,[ \t]*{_MEMBER}){{0,31}}$"
"""A W3C Trace Context `tracestate`: up to 32 vendor key=value members, comma-separated."""


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
    type: str = Field(pattern=EVENT_TYPE)
    subject: str = Field(min_length=1, max_length=128)
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    correlationid: str = Field(min_length=1, max_length=64, pattern=ID)
    causationid: str | None = Field(default=None, max_length=64, pattern=ID)
    traceparent: str | None = Field(
        default=None,
        max_length=256,
        pattern=TRACEPARENT,
        exclude_if=lambda value: value is None,  # absent, not null: older readers forbid it
        description="the trace this event belongs to (W3C Trace Context; CloudEvents "
        "distributed-tracing extension); absent in events of producers before it",
    )
    tracestate: str | None = Field(
        default=None,
        max_length=512,
        pattern=TRACESTATE,
        exclude_if=lambda value: value is None,
        description="vendor data of the trace (W3C Trace Context), only beside a traceparent",
    )
    data: P

    @field_validator("traceparent")
    @classmethod
    def _a_trace_and_a_span(cls, value: str | None) -> str | None:
        if value is None:
            return value
        version, trace_id, span_id = value.split("-")[:3]
        if version == "ff":
            raise ValueError("traceparent version ff is invalid (W3C Trace Context)")
        if version == "00" and len(value) != 55:
            raise ValueError("a version 00 traceparent has exactly four fields")
        if set(trace_id) == {"0"} or set(span_id) == {"0"}:
            raise ValueError("traceparent names no trace: its trace-id or parent-id is all zeros")
        return value

    @model_validator(mode="after")
    def _type_matches_data(self) -> Self:
        expected = type(self.data).event_type
        if self.type != expected:
            raise ValueError(f"type {self.type!r} does not match data of type {expected!r}")
        return self

    @model_validator(mode="after")
    def _tracestate_beside_a_traceparent(self) -> Self:
        if self.tracestate is not None and self.traceparent is None:
            raise ValueError("tracestate without a traceparent")
        return self

    @property
    def trace_context(self) -> dict[str, str]:
        """The event's trace context as W3C Trace Context headers (empty if it has none), for
        a propagator to continue the trace from."""
        found = {"traceparent": self.traceparent, "tracestate": self.tracestate}
        return {name: value for name, value in found.items() if value is not None}


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
    correlation id is given (a service correlates by its own ids, not a sender's). Made inside
    a span, the event carries its trace context (`current_trace_context`)."""
    event_id = str(uuid.uuid4())
    trace = current_trace_context()
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
        traceparent=trace.get("traceparent"),
        tracestate=trace.get("tracestate"),
        data=data,
    )
    return envelope


def current_trace_context() -> dict[str, str]:
    """The current span's context as W3C Trace Context headers, by OpenTelemetry's own
    propagator: empty outside a span (and without OpenTelemetry)."""
    carrier: dict[str, str] = {}
    if W3C is not None:
        W3C.inject(carrier)
    return carrier


_ID = re.compile(ID)


def is_id(value: str | None) -> bool:
    """Whether `value` has the closed form of an id (see `ID`)."""
    return value is not None and bool(_ID.match(value))


ANSWER_IDS = uuid.UUID("7d7f6a52-3c0e-4b8e-9a61-2f5b8e0c4d21")


def answer_event_id(agency_id: str, answer_id: str) -> str:
    """The event id of an agency's answer that it gave its own idempotency key: the same key
    gives the same id (the stream drops the repeat), in the closed form of every event id."""
    return str(uuid.uuid5(ANSWER_IDS, f"{agency_id}:{answer_id}"))

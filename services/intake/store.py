"""Intake's tables: requests, consents, and its read model of every referral it sent."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import JSON, Column, DateTime, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from services.intake.access import ApiClient
from services.intake.vault import PersonKey


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(**kw: object) -> object:
    return Field(sa_type=DateTime(timezone=True), **kw)  # type: ignore[call-overload]


class RequestRow(SQLModel, table=True):
    """A request recorded by the counselling office; everything personal is in `personal`,
    encrypted under the person's own key (see vault.py)."""

    __tablename__ = "requests"
    id: str = Field(primary_key=True, max_length=64)
    office_id: str = Field(max_length=64, index=True)
    client_reference: str = Field(max_length=64, index=True)
    urgency: str = Field(max_length=16)
    personal: bytes = Field(sa_type=LargeBinary)
    erased_at: datetime | None = _ts(default=None)  # type: ignore[assignment]
    recorded_at: datetime = _ts(default_factory=_now)  # type: ignore[assignment]


class ConsentRow(SQLModel, table=True):
    """The consent a person gave for one request (its terms as the wire contract's JSON)."""

    __tablename__ = "consents"
    id: str = Field(primary_key=True, max_length=64)
    request_id: str = Field(max_length=64, index=True)
    terms: dict[str, object] = Field(sa_column=Column(JSON, nullable=False))
    withdrawn_at: datetime | None = _ts(default=None)  # type: ignore[assignment]


class ReferralView(SQLModel, table=True):
    """Intake's view of a referral, projected from the referral service's events."""

    __tablename__ = "referral_views"
    __table_args__ = (UniqueConstraint("request_id", "agency_id", "open_key"),)
    id: str = Field(primary_key=True, max_length=64)
    request_id: str = Field(max_length=64, index=True)
    office_id: str = Field(max_length=64)
    agency_id: str = Field(max_length=64)
    agency_name: str = Field(max_length=200)
    status: str = Field(max_length=16)
    version: int = 0
    reason: str | None = None
    outcome: str | None = Field(default=None, max_length=24)
    comment: dict[str, object] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )  # the agency's, a SealedNote: opened with the office's key only when shown
    problem: str | None = None
    overdue: str | None = Field(default=None, max_length=16)
    deletion: str | None = Field(default=None, max_length=24)
    open_key: str | None = Field(default="open", max_length=8)
    plan_id: str | None = Field(default=None, max_length=64, index=True)
    """The plan it was sent in, with other referrals of its request (`PlanRow`)."""
    deadline_on: date | None = None
    """The day the request's legal deadline ends, if it is under one (only the day: its kind
    rests sealed with the person), so that lists show which referrals race a deadline."""
    created_at: datetime = _ts(default_factory=_now)  # type: ignore[assignment]
    updated_at: datetime = _ts(default_factory=_now)  # type: ignore[assignment]


class PlanRow(SQLModel, table=True):
    """Referrals of one request that the office sent together, because the person needs them
    together (legal aid and an interpreter; an agency and the interpreter the language
    bridge found): each keeps its own lifecycle; they are shown, and can be cancelled, as one
    (a FHIR Task and its parts)."""

    __tablename__ = "plans"
    id: str = Field(primary_key=True, max_length=64)
    request_id: str = Field(max_length=64, index=True)
    office_id: str = Field(max_length=64)
    created_at: datetime = _ts(default_factory=_now)  # type: ignore[assignment]


class TrailEntry(SQLModel, table=True):
    """One event in a referral's trail, as intake received it."""

    __tablename__ = "referral_trail"
    event_id: str = Field(primary_key=True, max_length=64)
    referral_id: str = Field(max_length=64, index=True)
    version: int | None = None
    kind: str = Field(max_length=40)
    status: str | None = Field(default=None, max_length=16)
    reason: str | None = None
    outcome: str | None = Field(default=None, max_length=24)
    comment: dict[str, object] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    occurred_at: datetime = _ts()  # type: ignore[assignment]


class PersonLink(SQLModel, table=True):
    """The one live link to a consent's page for the person (person.py), by the hash of its
    token: the token itself is never stored."""

    __tablename__ = "person_links"
    token_sha256: str = Field(primary_key=True, max_length=64)
    consent_id: str = Field(max_length=64, unique=True)
    request_id: str = Field(max_length=64, index=True)
    office_id: str = Field(max_length=64)
    language: str = Field(max_length=16)
    issued_at: datetime = _ts()  # type: ignore[assignment]


TABLES: list[type[SQLModel]] = [
    ApiClient,
    PersonKey,
    RequestRow,
    ConsentRow,
    ReferralView,
    PlanRow,
    TrailEntry,
    PersonLink,
]

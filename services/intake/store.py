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
    auto_reoffer: bool = False
    """Under a legal deadline: offer the next fitting agency of a kind on the urgent alert
    (`ReofferRow`), without waiting for the office."""
    unmet_check: str | None = Field(default=None, max_length=16, index=True)
    """Whether to record its unmet needs (`unmet.py`): `none-fitting` once it is recorded,
    `none-took-it` once every referral ended without an agency helping; None when done."""
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
    forwarded_from: str | None = Field(default=None, max_length=64)
    """The referral whose agency forwarded the request to this one's."""
    forwarded_to: str | None = Field(default=None, max_length=64)
    """The referral this one's agency forwarded the request to (set when intake sent it)."""
    created_at: datetime = _ts(default_factory=_now)  # type: ignore[assignment]
    updated_at: datetime = _ts(default_factory=_now)  # type: ignore[assignment]


class ForwardRow(SQLModel, table=True):
    """An agency's wish to forward a referral to another agency, from the referral service's
    `forward-requested` event until intake has sent the new referral (sealed afresh to that
    agency) or refused, saying why. Kept afterwards as the record of what was decided."""

    __tablename__ = "forwards"
    id: str = Field(primary_key=True, max_length=64)
    """The id of the `forward-requested` event; the new referral's id is derived from it."""
    referral_id: str = Field(max_length=64, index=True)
    agency_id: str = Field(max_length=64)
    forward_to: str = Field(max_length=64)
    reason: str = Field(max_length=40)
    answer_id: str = Field(max_length=64)
    state: str = Field(default="pending", max_length=16, index=True)
    """`pending`, `sent` or `refused`."""
    code: str | None = Field(default=None, max_length=80)
    message: str | None = None
    requested_at: datetime = _ts()  # type: ignore[assignment]
    decided_at: datetime | None = _ts(default=None)  # type: ignore[assignment]


class ReofferRow(SQLModel, table=True):
    """An urgent alert on a request that allows automatic re-offer, from the referral
    service's `escalated` event until intake has offered the next fitting agency of the
    alerted referral's kind, or found it need not or cannot (`state` says which)."""

    __tablename__ = "reoffers"
    id: str = Field(primary_key=True, max_length=64)
    """The id of the urgent `escalated` event; the new referral's id is derived from it."""
    request_id: str = Field(max_length=64, index=True)
    referral_id: str = Field(max_length=64)
    state: str = Field(default="pending", max_length=16, index=True)
    """`pending`, `sent`, `not-needed` (an agency accepted meanwhile), `not-again` (intake
    re-offered this request before), `not-covered` (the consent names no kind of the alerted
    agency) or `none-left` (no further agency fits)."""
    sent_referral_id: str | None = Field(default=None, max_length=64)
    alerted_at: datetime = _ts()  # type: ignore[assignment]
    decided_at: datetime | None = _ts(default=None)  # type: ignore[assignment]


class UnmetNeedRow(SQLModel, table=True):
    """That an unmet need of a request was recorded (its event carries the rest), so that it
    is recorded once per stage."""

    __tablename__ = "unmet_needs"
    request_id: str = Field(primary_key=True, max_length=64)
    need: str = Field(primary_key=True, max_length=60)
    stage: str = Field(primary_key=True, max_length=16)
    recorded_at: datetime = _ts(default_factory=_now)  # type: ignore[assignment]


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
    ForwardRow,
    ReofferRow,
    UnmetNeedRow,
    PlanRow,
    TrailEntry,
    PersonLink,
]

"""The gateway's FHIR view of each offer to a FHIR agency, and the agencies' Subscriptions."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class TaskRow(SQLModel, table=True):
    """One referral as its FHIR agency sees it: what the feed last learnt (or the agency last
    answered), and the case only as the JWE the office sealed to that agency."""

    __tablename__ = "gateway_fhir_tasks"
    referral_id: str = Field(primary_key=True, max_length=64)
    agency_id: str = Field(max_length=64, index=True)
    request_id: str = Field(max_length=64)
    office_id: str = Field(max_length=64)
    consent_id: str = Field(max_length=64)
    status: str = Field(max_length=20)  # a ReferralStatus
    reason: str | None = Field(default=None, max_length=40)
    outcome: str | None = Field(default=None, max_length=40)
    sealed_case: str | None = None
    consent_active: bool = True
    unconfirmed: int = 0
    """The agency's answers taken here that the referral service has not yet confirmed (or
    refused): until they are, the status they set stands against older news."""
    authored_on: datetime = Field(sa_type=DateTime(timezone=True))
    version: int = 1
    updated_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True), index=True)
    deleted_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class SubscriptionRow(SQLModel, table=True):
    """A FHIR agency's rest-hook Subscription (R4 backport, id-only) to its Tasks' changes."""

    __tablename__ = "gateway_fhir_subscriptions"
    id: str = Field(primary_key=True, max_length=64)
    agency_id: str = Field(max_length=64, index=True)
    endpoint: str = Field(max_length=2000)
    status: str = Field(max_length=20)  # requested | active | error | off
    error: str | None = Field(default=None, max_length=500)
    events_since_start: int = 0
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


TABLES = [TaskRow, SubscriptionRow]

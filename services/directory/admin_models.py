"""What the directory's admin routes answer (`admin_api.py`), as the web app reads it too:
pydantic alone, so that a client need not import the directory."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class PendingEnrolment(BaseModel):
    """An enrolment the county has not decided yet: an invitation not yet used, or a
    request with the agency's public keys waiting for approval."""

    enrolment_id: str
    agency_id: str
    channel: str
    status: str
    invited_at: datetime
    expires_at: datetime
    requested_at: datetime | None = None
    broker_user: str | None = None
    """The agency's public nkey, to compare with what the agency reads out to the county."""
    sealing_kid: str | None = None
    """Its sealing key's thumbprint (RFC 7638), likewise."""


class AgencyStanding(BaseModel):
    """One agency as the county sees it: how it is reached and who holds its keys."""

    agency_id: str
    name: str
    organization: str
    channel: str
    custody: str | None
    """Who holds the private half of its sealing key in effect: `agency`, `gateway` or
    `county`; None when it has none (nothing can be sent to it)."""
    revoked: bool
    pending: list[PendingEnrolment]


class Invited(BaseModel):
    """A new invitation; `code` is shown this once and kept only as its SHA-256."""

    enrolment_id: str
    agency_id: str
    code: str
    expires_at: datetime


class Decided(BaseModel):
    """An enrolment approved or refused."""

    enrolment_id: str
    agency_id: str
    channel: str
    status: str


class Revoked(BaseModel):
    agency_id: str
    keys_ended: int

"""The gateway's tables: what e-mail agencies were told, their one-time links and sessions,
and the webhook callbacks and answers already taken."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel

from services.gateway.fhir import store as fhir_store


def _now() -> datetime:
    return datetime.now(UTC)


class CaseRow(SQLModel, table=True):
    """The latest the gateway passed on about one referral to an e-mail agency; the personal
    part (the case, and the office's comment) only as the sealed JWE the office made for that
    agency, until its deletion."""

    __tablename__ = "gateway_cases"
    referral_id: str = Field(primary_key=True, max_length=64)
    agency_id: str = Field(max_length=64, index=True)
    sealed_case: str | None = None
    office_id: str | None = Field(default=None, max_length=64)  # the office that sent it
    office_note: str | None = None  # the office's latest comment, a SealedNote as JSON
    last_event: str = Field(max_length=40)
    updated_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    deleted_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class LinkRow(SQLModel, table=True):
    """A one-time link to the portal: only the token's SHA-256 is kept."""

    __tablename__ = "gateway_links"
    token_hash: str = Field(primary_key=True, max_length=64)
    agency_id: str = Field(max_length=64)
    referral_id: str = Field(max_length=64)
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    used_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class SessionRow(SQLModel, table=True):
    """A portal session opened by a link, for one agency and one referral."""

    __tablename__ = "gateway_sessions"
    session_hash: str = Field(primary_key=True, max_length=64)
    agency_id: str = Field(max_length=64)
    referral_id: str = Field(max_length=64)
    csrf: str = Field(max_length=64)
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))


class MailRow(SQLModel, table=True):
    """An e-mail notice to send (outbox for mail: written with its cause, sent after). It
    records which link to make, not the link: the token is minted as the notice leaves."""

    __tablename__ = "gateway_mail"
    message_id: str = Field(primary_key=True, max_length=200)
    recipient: str = Field(max_length=320)
    agency_id: str = Field(max_length=64)
    agency_name: str
    referral_id: str = Field(max_length=64)
    kind: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    sent_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class CallbackRow(SQLModel, table=True):
    """A webhook callback taken, by its `webhook-id`: kept past the signature's tolerance
    window, so that a captured callback cannot be replayed while its signature is fresh."""

    __tablename__ = "gateway_callbacks"
    agency_id: str = Field(primary_key=True, max_length=64)
    webhook_id: str = Field(primary_key=True, max_length=200)
    received_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)


class AnswerRow(SQLModel, table=True):
    """An answer a webhook agency gave under its own `answer_id`, and a digest of what it
    said: the same id again is the same answer, or a refusal if it says something else."""

    __tablename__ = "gateway_answers"
    agency_id: str = Field(primary_key=True, max_length=64)
    answer_id: str = Field(primary_key=True, max_length=200)
    digest: str = Field(max_length=64)
    taken_at: datetime = Field(sa_type=DateTime(timezone=True))


TABLES: list[Any] = [
    CaseRow,
    LinkRow,
    SessionRow,
    MailRow,
    CallbackRow,
    AnswerRow,
    *fhir_store.TABLES,
]

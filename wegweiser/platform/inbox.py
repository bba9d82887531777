"""Inbox: the ids of events a consumer has processed, written with the effects they caused."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlmodel import Field, Session, SQLModel


class InboxRow(SQLModel, table=True):
    """One processed event, per consumer."""

    __tablename__ = "inbox"
    consumer: str = Field(primary_key=True, max_length=64)
    event_id: str = Field(primary_key=True, max_length=64)
    processed_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), sa_type=DateTime(timezone=True)
    )


def first_time(session: Session, consumer: str, event_id: str) -> bool:
    """Record the event as processed; False if this consumer already processed it."""
    if session.get(InboxRow, (consumer, event_id)) is not None:
        return False
    session.add(InboxRow(consumer=consumer, event_id=event_id))
    session.flush()
    return True

"""Inbox: the ids of events a consumer has processed, written with the effects they caused."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlmodel import Field, Session, SQLModel, col, delete, select


class InboxRow(SQLModel, table=True):
    """One processed event, per consumer."""

    __tablename__ = "inbox"
    consumer: str = Field(primary_key=True, max_length=64)
    event_id: str = Field(primary_key=True, max_length=64)
    processed_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), sa_type=DateTime(timezone=True)
    )


def forget_before(session: Session, cutoff: datetime) -> int:
    """Forget the events processed before `cutoff`; how many. A duplicate arrives within
    minutes of the original (JetStream's redelivery, an outbox republishing the rows it had
    published when its process died), so a month of memory is ample (settings.inbox_keep)."""
    result = session.exec(delete(InboxRow).where(col(InboxRow.processed_at) < cutoff))
    return int(result.rowcount or 0)


def seen(session: Session, consumer: str, event_ids: list[str]) -> set[str]:
    """Which of these events this consumer already processed (one query for a batch)."""
    if not event_ids:
        return set()
    rows = session.exec(
        select(InboxRow.event_id).where(
            InboxRow.consumer == consumer, col(InboxRow.event_id).in_(event_ids)
        )
    )
    return set(rows)


def record(session: Session, consumer: str, event_id: str) -> None:
    """Note the event as processed, in the caller's transaction (written with the effects;
    another instance that recorded it first makes the commit fail, and the batch is redone)."""
    session.add(InboxRow(consumer=consumer, event_id=event_id))


def first_time(session: Session, consumer: str, event_id: str) -> bool:
    """Record the event as processed; False if this consumer already processed it."""
    if session.get(InboxRow, (consumer, event_id)) is not None:
        return False
    session.add(InboxRow(consumer=consumer, event_id=event_id))
    session.flush()
    return True

"""The audit service's tables: the entries (append-only) and the signed tree heads."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import LargeBinary
from sqlmodel import Field, Session, SQLModel, col, func, select

from services.audit.ledger import TreeHead

LOG_ID = "wegweiser-audit"


class EntryRow(SQLModel, table=True):
    """One log entry: its canonical bytes, by 1-based index. `event_id` holds the stream
    sequence it records (`seq-<n>-<index>`, unique even after the stream was recreated), not
    the sender's CloudEvents id: two messages under one id are two entries."""

    __tablename__ = "audit_entries"
    index: int = Field(primary_key=True)
    event_id: str = Field(max_length=64, unique=True)
    referral_id: str | None = Field(default=None, max_length=64, index=True)
    entry: bytes = Field(sa_type=LargeBinary)


class HeadRow(SQLModel, table=True):
    """A signed tree head."""

    __tablename__ = "audit_tree_heads"
    size: int = Field(primary_key=True)
    root: str = Field(max_length=64)
    time: str = Field(max_length=40)
    signature: str = Field(max_length=200)


TABLES: list[type[SQLModel]] = [EntryRow, HeadRow]


def all_entries(session: Session, limit: int | None = None) -> list[bytes]:
    stmt = select(EntryRow.entry).order_by(col(EntryRow.index))
    return list(session.exec(stmt.limit(limit) if limit else stmt))


def stream_entries(session: Session, chunk: int = 2000) -> Iterator[bytes]:
    """Every entry in order, fetched `chunk` at a time (a year's log need not fit in memory)."""
    stmt = select(EntryRow.entry).order_by(col(EntryRow.index))
    yield from session.exec(stmt.execution_options(yield_per=chunk))


def entries_after(session: Session, index: int) -> list[tuple[int, bytes]]:
    """(index, entry) past `index`, in order (what another instance, or this one, appended)."""
    stmt = select(EntryRow.index, EntryRow.entry).where(col(EntryRow.index) > index)
    return [(int(i), bytes(e)) for i, e in session.exec(stmt.order_by(col(EntryRow.index)))]


def referral_entries(session: Session, referral_id: str) -> list[bytes]:
    stmt = select(EntryRow.entry).where(EntryRow.referral_id == referral_id)
    return list(session.exec(stmt.order_by(col(EntryRow.index))))


def size(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(EntryRow)).one())


def latest_head(session: Session, log_id: str) -> TreeHead | None:
    row = session.exec(select(HeadRow).order_by(col(HeadRow.size).desc())).first()
    return TreeHead(log_id, row.size, row.root, row.time, row.signature) if row else None


def head_of_size(session: Session, size: int) -> TreeHead | None:
    row = session.get(HeadRow, size)
    return TreeHead(LOG_ID, row.size, row.root, row.time, row.signature) if row else None


def save_head(session: Session, head: TreeHead) -> None:
    """Keep the head, or replace the one of its size (the same root: signed again, by a key
    that followed a rotation)."""
    row = session.get(HeadRow, head.size)
    if row is None:
        session.add(
            HeadRow(size=head.size, root=head.root, time=head.time, signature=head.signature)
        )
        return
    if row.root != head.root:
        raise ValueError(f"a head of size {head.size} with another root: the log was altered")
    row.time, row.signature = head.time, head.signature

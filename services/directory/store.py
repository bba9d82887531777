"""The directory's table: one row per agency, its record kept as JSON."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, Session, SQLModel, func, select

from services.directory.catalogue import Agency
from services.directory.sample_catalogue import agencies_from_json


class AgencyRow(SQLModel, table=True):
    """One agency of the catalogue."""

    __tablename__ = "agencies"
    id: str = Field(primary_key=True, max_length=64)
    record: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    public_key: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    updated_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), sa_type=DateTime(timezone=True)
    )


def to_record(agency: Agency) -> dict[str, Any]:
    """An agency as a JSON record (sets as sorted lists)."""
    return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in asdict(agency).items()}


def all_agencies(session: Session) -> list[Agency]:
    return agencies_from_json([row.record for row in session.exec(select(AgencyRow))])


def get(session: Session, agency_id: str) -> tuple[Agency, dict[str, Any] | None] | None:
    """An agency and its public key, if it is in the catalogue."""
    row = session.get(AgencyRow, agency_id)
    return (agencies_from_json([row.record])[0], row.public_key) if row else None


def set_capacity(session: Session, agency_id: str, capacity: int, waiting_days: int) -> bool:
    """Record an agency's current capacity and waiting time; False for an unknown agency."""
    row = session.get(AgencyRow, agency_id)
    if row is None:
        return False
    row.record = {**row.record, "capacity": capacity, "waiting_days": waiting_days}
    row.updated_at = datetime.now(UTC)
    session.add(row)
    return True


def public_keys(session: Session) -> dict[str, dict[str, Any] | None]:
    return {row.id: row.public_key for row in session.exec(select(AgencyRow))}


def set_public_keys(session: Session, keys: dict[str, dict[str, Any]]) -> int:
    """Record agencies' public keys; returns how many changed (unknown agencies are skipped)."""
    changed = 0
    for agency_id, key in keys.items():
        row = session.get(AgencyRow, agency_id)
        if row is not None and row.public_key != key:
            row.public_key, row.updated_at = key, datetime.now(UTC)
            session.add(row)
            changed += 1
    return changed


def upsert(session: Session, agencies: list[Agency]) -> int:
    """Insert or update agencies; returns how many rows changed."""
    changed = 0
    for agency in agencies:
        record = to_record(agency)
        row = session.get(AgencyRow, agency.id)
        if row is None:
            session.add(AgencyRow(id=agency.id, record=record))
        elif row.record != record:
            row.record, row.updated_at = record, datetime.now(UTC)
            session.add(row)
        else:
            continue
        changed += 1
    return changed


def count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(AgencyRow)).one()

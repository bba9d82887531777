"""The directory's tables: HSDS records, the agencies projected from them, and a generation.

`hsds_records` keeps every HSDS record flat, one row per (table, id), as HSDS's tabular form
does. `agencies` is derived from it in the same transaction (what resolution reads), and
`directory_state.generation` counts changes, so a running directory reloads only when needed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, Session, SQLModel, col, delete, func, select

from schemas.vocabulary import AgencyKind, Need
from services.directory.catalogue import Agency
from services.directory.hsds.records import Record

Records = dict[str, dict[str, Record]]


def _now() -> datetime:
    return datetime.now(UTC)


class HsdsRow(SQLModel, table=True):
    """One HSDS record (a row of one of its tables)."""

    __tablename__ = "hsds_records"
    kind: str = Field(primary_key=True, max_length=40)
    id: str = Field(primary_key=True, max_length=64)
    record: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class AgencyRow(SQLModel, table=True):
    """A service that receives referrals, as resolution sees it (its keys: identities.py)."""

    __tablename__ = "agencies"
    id: str = Field(primary_key=True, max_length=64)
    service_id: str = Field(max_length=64, index=True)
    record: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class StateRow(SQLModel, table=True):
    """A counter raised by every change to the directory."""

    __tablename__ = "directory_state"
    id: int = Field(default=1, primary_key=True)
    generation: int = 0


class AgencyKey(SQLModel, table=True):
    """One public key of an agency and when it is in effect (see identities.py)."""

    __tablename__ = "agency_keys"
    kid: str = Field(primary_key=True, max_length=128)
    agency_id: str = Field(max_length=64, index=True)
    use: str = Field(max_length=8)
    key: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    custody: str = Field(max_length=16)
    valid_from: datetime = Field(sa_type=DateTime(timezone=True))
    valid_until: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    added_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class EnrolmentRow(SQLModel, table=True):
    """An agency's enrolment, from the county's invitation to its decision (enrolment.py)."""

    __tablename__ = "enrolments"
    id: str = Field(primary_key=True, max_length=64)
    agency_id: str = Field(max_length=64, index=True)
    channel: str = Field(max_length=16)
    code_sha256: str = Field(max_length=64, unique=True)
    status: str = Field(max_length=16)
    invited_at: datetime = Field(sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    requested_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    request: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    decided_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    delivery: str | None = None  # what the agency collects, sealed to its own key


TABLES: list[type[SQLModel]] = [HsdsRow, AgencyRow, StateRow, AgencyKey, EnrolmentRow]


@dataclass
class Changes:
    """What an import changed, per HSDS table."""

    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)

    @property
    def any(self) -> bool:
        return bool(self.created or self.updated or self.removed)


def to_record(agency: Agency) -> dict[str, Any]:
    """An agency as a JSON record (sets as sorted lists)."""
    return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in asdict(agency).items()}


def from_record(record: dict[str, Any]) -> Agency:
    return Agency(
        **{
            **record,
            "kind": AgencyKind(record["kind"]),
            "needs": frozenset(Need(n) for n in record["needs"]),
            **{
                name: frozenset(record[name])
                for name in ("languages", "areas", "postcodes", "counties")
            },
        }
    )


def load_records(session: Session) -> Records:
    records: Records = defaultdict(dict)
    for row in session.exec(select(HsdsRow)):
        records[row.kind][row.id] = row.record
    return records


def write_records(session: Session, before: Records, after: Records) -> Changes:
    """Make the table hold `after`, given that it holds `before`."""
    changes = Changes()
    now = _now()
    for kind in sorted(set(before) | set(after)):
        old, new = before.get(kind, {}), after.get(kind, {})
        for record_id, record in new.items():
            if record_id not in old:
                session.add(HsdsRow(kind=kind, id=record_id, record=record, updated_at=now))
                changes.created[kind] += 1
            elif old[record_id] != record:
                row = session.get(HsdsRow, (kind, record_id))
                assert row is not None
                row.record, row.updated_at = record, now
                session.add(row)
                changes.updated[kind] += 1
            else:
                changes.unchanged[kind] += 1
        gone = [record_id for record_id in old if record_id not in new]
        if gone:
            session.exec(
                delete(HsdsRow).where(col(HsdsRow.kind) == kind, col(HsdsRow.id).in_(gone))
            )
            changes.removed[kind] += len(gone)
    return changes


def replace_agencies(session: Session, agencies: list[Agency]) -> int:
    """Make the agencies table hold exactly these; keys stay. Returns how many rows changed."""
    rows = {row.id: row for row in session.exec(select(AgencyRow))}
    changed = 0
    for agency in agencies:
        record, row = to_record(agency), rows.pop(agency.id, None)
        if row is None:
            session.add(AgencyRow(id=agency.id, service_id=agency.service_id, record=record))
        elif row.record != record or row.service_id != agency.service_id:
            row.record, row.service_id, row.updated_at = record, agency.service_id, _now()
            session.add(row)
        else:
            continue
        changed += 1
    for row in rows.values():
        session.delete(row)
        changed += 1
    return changed


def generation(session: Session) -> int:
    state = session.get(StateRow, 1)
    return state.generation if state else 0


def bump(session: Session) -> int:
    state = session.get(StateRow, 1) or StateRow(id=1, generation=0)
    state.generation += 1
    session.add(state)
    return state.generation


def all_agencies(session: Session) -> list[Agency]:
    return [from_record(row.record) for row in session.exec(select(AgencyRow))]


def get(session: Session, agency_id: str) -> Agency | None:
    """An agency, if it is in the directory."""
    row = session.get(AgencyRow, agency_id)
    return from_record(row.record) if row else None


def set_capacity(session: Session, agency_id: str, capacity: int, waiting_days: int) -> bool:
    """Record an agency's current capacity and waiting time; False for an unknown agency."""
    row = session.get(AgencyRow, agency_id)
    if row is None:
        return False
    figures = {"capacity": capacity, "waiting_days": waiting_days}
    row.record, row.updated_at = {**row.record, **figures}, _now()
    session.add(row)
    service = session.get(HsdsRow, ("service", row.service_id))
    if service is not None:
        profile = {**service.record.get("wegweiser", {}), **figures}
        service.record, service.updated_at = {**service.record, "wegweiser": profile}, _now()
        session.add(service)
    bump(session)
    return True


def count(session: Session, kind: str = "service") -> int:
    statement = select(func.count()).select_from(HsdsRow).where(col(HsdsRow.kind) == kind)
    return session.exec(statement).one()

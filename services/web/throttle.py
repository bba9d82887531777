"""Sign-in throttling, per account name and per client address.

After `free` failed sign-ins in a row for one name (a user's or one nobody has: both are
counted alike, so that the answers tell no one which names exist) or from one address, the
next attempt must wait `first` after the last failure, and each further failure doubles the
wait, up to `longest`. Until then an attempt is refused without its password being checked.
A successful sign-in clears the name's and the address's counts; counts whose last failure is
older than `forget_after` are forgotten. The counts live in the web app's database, so that a
restart of the web app hands out no fresh attempts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, DateTime
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel, col, delete, or_, select

from wegweiser.platform.db import as_utc

ACCOUNT, ADDRESS = "account", "address"
SUBJECT_LENGTH = 128


class FailureRow(SQLModel, table=True):
    """Failed sign-ins in a row for one account name or from one client address."""

    __tablename__ = "web_sign_in_failures"
    kind: str = Field(primary_key=True, max_length=16)
    subject: str = Field(primary_key=True, max_length=SUBJECT_LENGTH)
    failures: int
    last_failed_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)


@dataclass(frozen=True)
class Backoff:
    """How long one subject waits: nothing for `free` failures, then `first`, doubling."""

    free: int = 5
    first: timedelta = timedelta(seconds=1)
    longest: timedelta = timedelta(minutes=15)

    def wait(self, failures: int) -> timedelta:
        """How long after the last of `failures` failures in a row the next attempt waits."""
        if failures < self.free:
            return timedelta(0)
        doubled: timedelta = self.first * 2 ** min(failures - self.free, 40)
        return min(doubled, self.longest)


@dataclass(frozen=True)
class Throttle:
    """The rules for account names and for addresses (an office behind one address shares
    it among its counsellors, so it is allowed more), and the counts in the database."""

    account: Backoff = Backoff()
    address: Backoff = field(default_factory=lambda: Backoff(free=10))
    forget_after: timedelta = timedelta(hours=24)

    scope: str = ""
    """What is counted: sign-ins (""), or another kind of guess (e.g. "link:" for the
    person's page, counted by address only), so that one kind's failures lock out no other."""

    def retry_after(
        self, session: Session, username: str | None, address: str, now: datetime
    ) -> timedelta | None:
        """How long the name or the address must still wait; None if neither must."""
        backoff = {self.scope + ACCOUNT: self.account, self.scope + ADDRESS: self.address}
        waits = [
            as_utc(row.last_failed_at) + backoff[row.kind].wait(row.failures) - now
            for row in session.exec(select(FailureRow).where(self._either(username, address)))
            if now - as_utc(row.last_failed_at) < self.forget_after
        ]
        longest = max(waits, default=timedelta(0))
        return longest if longest > timedelta(0) else None

    def record_failure(
        self, session: Session, username: str | None, address: str, now: datetime
    ) -> dict[str, int]:
        """Count a failure for the name (if any) and the address; their counts in a row."""
        stale = col(FailureRow.last_failed_at) <= now - self.forget_after
        session.exec(delete(FailureRow).where(stale))
        upsert = _upsert_for(session)
        for kind, subject in self._subjects(username, address):
            statement = upsert(FailureRow).values(
                kind=kind, subject=subject, failures=1, last_failed_at=now
            )
            session.exec(
                statement.on_conflict_do_update(
                    index_elements=["kind", "subject"],
                    set_={"failures": FailureRow.failures + 1, "last_failed_at": now},
                )
            )
        rows = session.exec(select(FailureRow).where(self._either(username, address)))
        return {row.kind.removeprefix(self.scope): row.failures for row in rows}

    def clear(self, session: Session, username: str | None, address: str) -> None:
        """Forget the name's and the address's failures: they signed in."""
        session.exec(delete(FailureRow).where(self._either(username, address)))

    def _subjects(self, username: str | None, address: str) -> list[tuple[str, str]]:
        named = [] if username is None else [(self.scope + ACCOUNT, username[:SUBJECT_LENGTH])]
        return [*named, (self.scope + ADDRESS, address[:SUBJECT_LENGTH])]

    def _either(self, username: str | None, address: str) -> ColumnElement[bool]:
        return or_(
            *(
                (col(FailureRow.kind) == kind) & (col(FailureRow.subject) == subject)
                for kind, subject in self._subjects(username, address)
            )
        )


def _upsert_for(session: Session) -> Callable[..., Any]:
    """INSERT … ON CONFLICT of the session's database: one statement, no lost counts."""
    dialect = session.get_bind().dialect.name
    return {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]

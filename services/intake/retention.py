"""Retention: a request's personal data is erased a set time after its referrals closed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from schemas.vocabulary import CLOSED_STATES
from services.intake import person
from services.intake.store import ReferralView, RequestRow
from services.intake.vault import Vault
from wegweiser.platform.db import Database, as_utc


@dataclass(frozen=True)
class Due:
    """A request whose personal data is due for erasure, and since when it was closed."""

    request_id: str
    closed_at: datetime
    referrals: int


def due(session: Session, now: datetime, keep_for: timedelta) -> list[Due]:
    """Requests not yet erased whose referrals are all closed (or that never had one), closed
    longer than `keep_for` ago."""
    still_open = col(ReferralView.status).notin_(sorted(CLOSED_STATES))
    views = (
        select(
            ReferralView.request_id,
            func.count().label("n"),
            func.sum(case((still_open, 1), else_=0)).label("open"),
            func.max(ReferralView.updated_at).label("last"),
        )
        .group_by(col(ReferralView.request_id))
        .subquery()
    )
    stmt = (
        sa_select(
            col(RequestRow.id), col(RequestRow.recorded_at), views.c.n, views.c.open, views.c.last
        )
        .outerjoin(views, views.c.request_id == RequestRow.id)
        .where(col(RequestRow.erased_at).is_(None))
    )
    out = []
    for request_id, recorded_at, n, still_open, last in session.execute(stmt).all():
        if still_open:
            continue
        closed_at = as_utc(last if n else recorded_at)
        if closed_at + keep_for <= now:
            out.append(Due(request_id, closed_at, int(n or 0)))
    return sorted(out, key=lambda d: d.closed_at)


def erase(session: Session, *, vault: Vault, request_id: str) -> bool:
    """Erase one request's personal data; the person's key goes too once nothing of theirs is
    left to keep. False if it was already erased."""
    row = session.get(RequestRow, request_id)
    if row is None or row.erased_at is not None:
        return False
    row.personal, row.erased_at = b"", datetime.now(UTC)
    session.add(row)
    person.forget(session, request_id)
    session.flush()
    others = select(RequestRow.id).where(
        RequestRow.client_reference == row.client_reference, col(RequestRow.erased_at).is_(None)
    )
    if session.exec(others).first() is None:
        vault.shred(session, row.client_reference)
    return True


@dataclass(frozen=True)
class Retention:
    """The retention use cases (`wegweiser retention`): what is due, and erasing it, each
    request in its own transaction."""

    db: Database
    vault: Vault
    keep_for: timedelta

    def due(self, now: datetime) -> list[Due]:
        return list(self.db.run_sync(lambda s: due(s, now, self.keep_for)))

    def erase_due(self, now: datetime) -> int:
        """Erase every request due at `now`; how many were erased (one erased meanwhile by
        another run is not counted twice)."""
        return sum(
            self.db.run_sync(partial(erase, vault=self.vault, request_id=item.request_id))
            for item in self.due(now)
        )

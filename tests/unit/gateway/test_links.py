"""The portal's one-time links and sessions are forgotten once they are of no more use: an
ended session at once, a link some time after it expired (until then a used link is still
refused as used)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from services.gateway import links
from services.gateway.store import LinkRow, SessionRow
from tests.support.databases import service_database

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
KEEP = timedelta(days=30)


@pytest.fixture
def db(tmp_path: Path):
    database = service_database("gateway", f"sqlite:///{tmp_path / 'gateway.db'}")
    database.migrate()
    yield database
    database.dispose()


def test_ended_sessions_go_at_once_and_links_a_while_after_they_expired(db) -> None:
    def make(session) -> tuple[str, str]:
        fresh = links.issue(session, "agency-a", "ref-1", NOW, timedelta(days=7))
        old = links.issue(
            session, "agency-a", "ref-2", NOW - KEEP - timedelta(days=8), timedelta(days=7)
        )
        used = session.get(LinkRow, links.digest(fresh))
        links.open_session(session, used, NOW - timedelta(hours=2), timedelta(hours=1))
        links.open_session(session, used, NOW, timedelta(hours=1))
        return fresh, old

    fresh, old = db.run_sync(make)
    assert db.run_sync(lambda s: links.prune(s, NOW, KEEP)) == (1, 1)
    kept = db.read_sync(lambda s: [r.token_hash for r in s.exec(select(LinkRow))])
    assert kept == [links.digest(fresh)]
    sessions = db.read_sync(lambda s: list(s.exec(select(SessionRow))))
    assert len(sessions) == 1 and sessions[0].expires_at.replace(tzinfo=UTC) > NOW
    with pytest.raises(links.LinkRefused, match="not known"):
        db.run_sync(lambda s: links.redeem(s, old, NOW))
    assert db.run_sync(lambda s: links.prune(s, NOW, KEEP)) == (0, 0)  # nothing twice

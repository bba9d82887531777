"""The inbox remembers each processed event long enough to recognise it coming again, and
forgets it after `inbox_keep`, so that it does not grow for ever."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

from tests.support.databases import service_database
from wegweiser.platform import inbox

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def test_old_ids_are_forgotten_and_recent_ones_still_recognised(tmp_path: Path) -> None:
    db = service_database("referral", f"sqlite:///{tmp_path / 'referral.db'}")
    db.migrate()
    try:

        def processed(session: Session) -> None:
            for age, event_id in ((40, "evt-old"), (29, "evt-recent"), (0, "evt-now")):
                assert inbox.first_time(session, "referral-commands", event_id)
                row = session.get(inbox.InboxRow, ("referral-commands", event_id))
                assert row is not None
                row.processed_at = NOW - timedelta(days=age)

        db.run_sync(processed)
        cutoff = NOW - timedelta(days=30)
        assert db.run_sync(lambda s: inbox.forget_before(s, cutoff)) == 1
        kept = db.read_sync(lambda s: sorted(r.event_id for r in s.exec(select(inbox.InboxRow))))
        assert kept == ["evt-now", "evt-recent"]
        # a recent one coming again is still recognised; the forgotten one would count anew
        assert not db.run_sync(lambda s: inbox.first_time(s, "referral-commands", "evt-recent"))
        assert db.run_sync(lambda s: inbox.first_time(s, "referral-commands", "evt-old"))
    finally:
        db.dispose()

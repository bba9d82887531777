"""Units of work: writers one at a time, readers beside them, reads that cannot write."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy.exc
from sqlmodel import Session, func, select

from wegweiser.platform.db import Database
from wegweiser.platform.inbox import InboxRow


def row(event_id: str) -> InboxRow:
    return InboxRow(consumer="test", event_id=event_id, processed_at=datetime.now(UTC))


def count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(InboxRow)).one())


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, [InboxRow])
    database.migrate()
    yield database
    database.dispose()


def test_a_read_does_not_wait_for_a_writer(db: Database) -> None:
    """A writer holds its transaction open until the read is done; were the read to queue
    for the write lock, neither could finish."""
    db.run_sync(lambda s: s.add(row("committed")))
    writing, read_done = threading.Event(), threading.Event()

    def writer(session: Session) -> None:
        session.add(row("uncommitted"))
        session.flush()
        writing.set()
        assert read_done.wait(20), "the read never came back"

    thread = threading.Thread(target=db.run_sync, args=(writer,))
    thread.start()
    assert writing.wait(20)
    try:
        assert db.read_sync(count) == 1  # the last commit, not the open transaction
    finally:
        read_done.set()
        thread.join(20)
    assert db.read_sync(count) == 2


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_read_cannot_write_on_postgresql(db: Database) -> None:
    def sneak(session: Session) -> None:
        session.add(row("sneaked"))
        session.flush()

    with pytest.raises(sqlalchemy.exc.InternalError, match="read-only transaction"):
        db.read_sync(sneak)
    assert db.read_sync(count) == 0


def test_writers_in_many_threads_all_commit(db: Database) -> None:
    def add(event_id: str) -> None:
        db.run_sync(lambda s: s.add(row(event_id)))

    def write(n: int) -> None:
        for i in range(20):
            add(f"{n}-{i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert db.read_sync(count) == 160

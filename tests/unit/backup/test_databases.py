"""Each database is copied as it was at the instant it was held, whatever is written after;
a copy goes back only into an empty database of the same kind, and its outbox forgets the
events the stream already has."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from wegweiser.backup import databases
from wegweiser.backup.archive import Refused
from wegweiser.platform.db import Database
from wegweiser.platform.outbox import OutboxRow

STAGE = "INSERT INTO outbox (event_id, subject, body, created_at) VALUES (?, 'ww.x', x'00', ?)"


def a_service_database(url: str) -> Database:
    """A database with the platform's outbox, as a service has it (WAL on SQLite)."""
    db = Database(url, [OutboxRow])
    db.migrate()
    return db


def staged(url: str, *event_ids: str) -> None:
    if databases.is_sqlite(url):
        with sqlite3.connect(databases.sqlite_path(url)) as conn:
            conn.executemany(STAGE, [(i, "2026-12-05 10:00:00") for i in event_ids])
        return
    with psycopg.connect(databases.libpq(url)) as conn:
        for i in event_ids:
            conn.execute(
                STAGE.replace("?", "%s").replace("x'00'", "'\\x00'"), (i, "2026-12-05 10:00:00+00")
            )


def outbox_ids(url: str) -> set[str]:
    if databases.is_sqlite(url):
        with sqlite3.connect(databases.sqlite_path(url)) as conn:
            return {r[0] for r in conn.execute("SELECT event_id FROM outbox")}
    with psycopg.connect(databases.libpq(url)) as conn:
        return {r[0] for r in conn.execute("SELECT event_id FROM outbox")}


def empty_like(url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database of the same kind to restore into."""
    if databases.is_sqlite(url):
        return f"sqlite:///{tmp_path / 'restored' / 'service.db'}"
    return str(request.getfixturevalue("postgres_databases")())


def copied(url: str, tmp_path: Path, written_after_the_hold: tuple[str, ...] = ()) -> Path:
    """Stage ev-1 and ev-2, hold the database, stage what is written after, copy it."""
    db = a_service_database(url)
    try:
        staged(url, "ev-1", "ev-2")
        held = databases.hold(url)
        assert held is not None
        try:
            staged(url, *written_after_the_hold)
            assert {i for i, _ in databases.outbox(held)} == {"ev-1", "ev-2"}
            return held.copy(tmp_path / "service")
        finally:
            held.release()
    finally:
        db.dispose()


def test_a_held_database_is_copied_as_it_was_when_held(database_url, tmp_path, request):
    copy = copied(database_url, tmp_path, written_after_the_hold=("ev-3",))
    assert outbox_ids(database_url) == {"ev-1", "ev-2", "ev-3"}
    assert copy.suffix == (".sqlite" if databases.is_sqlite(database_url) else ".pgdump")
    target = empty_like(database_url, tmp_path, request)
    databases.put_back(copy, target, published=[])
    assert outbox_ids(target) == {"ev-1", "ev-2"}


def test_a_copy_goes_back_into_an_empty_database_without_the_events_already_published(
    database_url, tmp_path, request
):
    copy = copied(database_url, tmp_path)
    target = empty_like(database_url, tmp_path, request)
    assert databases.occupied(target) is None
    databases.put_back(copy, target, published=["ev-1"])
    assert outbox_ids(target) == {"ev-2"}
    assert databases.occupied(target) is not None
    if databases.is_sqlite(target):
        assert databases.sqlite_path(target).stat().st_mode & 0o777 == 0o600


def test_a_database_that_does_not_exist_yet_is_not_held(tmp_path):
    assert databases.hold(f"sqlite:///{tmp_path / 'never-started.db'}") is None


def test_a_copy_of_one_kind_is_refused_for_a_database_of_the_other(tmp_path):
    sqlite_copy = tmp_path / "intake.sqlite"
    sqlite_copy.write_bytes(b"")
    with pytest.raises(Refused, match="holds a SQLite database, but the settings name PostgreSQL"):
        databases.put_back(sqlite_copy, "postgresql+psycopg://u@127.0.0.1:1/x", [])
    dump = tmp_path / "intake.pgdump"
    dump.write_bytes(b"")
    with pytest.raises(Refused, match="holds a PostgreSQL dump, but the settings name SQLite"):
        databases.put_back(dump, f"sqlite:///{tmp_path / 'x.db'}", [])
    assert not (tmp_path / "x.db").exists()

"""The sign-in throttle's counts on SQLite and PostgreSQL: counted per name and per address,
none lost when failures arrive at once, cleared by a success, forgotten after a quiet day."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from services.web.throttle import ACCOUNT, ADDRESS, Throttle
from tests.support.databases import service_database
from wegweiser.platform.db import Database

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
THROTTLE = Throttle()


def migrated(url: str) -> Database:
    db = service_database("web", url)
    db.migrate()
    return db


def fail(db: Database, username: str, address: str, at: datetime = T0) -> dict[str, int]:
    return db.run_sync(lambda s: THROTTLE.record_failure(s, username, address, at))


def retry_after(db: Database, username: str, address: str, at: datetime) -> timedelta | None:
    return db.read_sync(lambda s: THROTTLE.retry_after(s, username, address, at))


def test_names_and_addresses_are_counted_apart(database_url: str) -> None:
    db = migrated(database_url)
    try:
        for n in range(5):
            assert fail(db, "berater", f"10.0.0.{n % 2}") == {ACCOUNT: n + 1, ADDRESS: n // 2 + 1}
        assert retry_after(db, "berater", "10.0.0.7", T0) == timedelta(seconds=1)
        assert retry_after(db, "other", "10.0.0.0", T0) is None  # 3 from there: not yet
        assert retry_after(db, "berater", "10.0.0.7", T0 + timedelta(seconds=1)) is None
    finally:
        db.dispose()


def test_failures_arriving_at_once_are_all_counted(database_url: str) -> None:
    db = migrated(database_url)
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: fail(db, "berater", f"10.0.0.{n % 4}"), range(40)))
        counts = fail(db, "berater", "10.0.0.0")
        assert counts == {ACCOUNT: 41, ADDRESS: 11}
    finally:
        db.dispose()


def test_a_success_clears_the_name_and_the_address_only(database_url: str) -> None:
    db = migrated(database_url)
    try:
        for _ in range(10):
            fail(db, "berater", "10.0.0.1")
            fail(db, "other", "10.0.0.2")
        db.run_sync(lambda s: THROTTLE.clear(s, "berater", "10.0.0.1"))
        assert retry_after(db, "berater", "10.0.0.1", T0) is None
        assert retry_after(db, "other", "10.0.0.2", T0) is not None
    finally:
        db.dispose()


def test_a_quiet_day_forgets_the_failures(database_url: str) -> None:
    db = migrated(database_url)
    try:
        for _ in range(10):
            fail(db, "berater", "10.0.0.1")
        day_later = T0 + THROTTLE.forget_after
        assert retry_after(db, "berater", "10.0.0.1", day_later) is None
        assert fail(db, "berater", "10.0.0.1", day_later) == {ACCOUNT: 1, ADDRESS: 1}
    finally:
        db.dispose()

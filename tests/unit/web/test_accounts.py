"""Web users and sessions, on a real SQLite database: hashed passwords, sessions that end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlmodel import Session, select

from services.web import accounts
from services.web.accounts import AccountError, Role, SessionPolicy
from tests.support.databases import service_database
from wegweiser.platform.db import Database

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
POLICY = SessionPolicy(idle=timedelta(minutes=30), lifetime=timedelta(hours=10))


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = service_database("web", f"sqlite:///{tmp_path / 'web.db'}")
    database.migrate()
    database.run_sync(
        lambda s: accounts.add_user(s, "berater", "lang genug 123", Role.COUNSELLOR, "office-a")
    )
    return database


def test_the_password_is_stored_only_as_an_argon2id_hash(db: Database):
    row = db.run_sync(lambda s: s.get(accounts.UserRow, "berater"))
    assert row is not None
    assert row.password_hash.startswith("$argon2id$")
    assert "lang genug" not in row.password_hash


def test_only_the_right_password_matches(db: Database):
    stored = db.read_sync(lambda s: accounts.password_hash(s, " Berater "))
    assert stored is not None
    assert accounts.check_password(stored, "lang genug 123").matches
    assert not accounts.check_password(stored, "lang genug 124").matches
    assert db.read_sync(lambda s: accounts.password_hash(s, "niemand")) is None
    assert not accounts.check_password(None, "lang genug 123").matches


def test_a_hash_with_outdated_parameters_is_renewed_on_sign_in(db: Database):
    weak = PasswordHasher(time_cost=1, memory_cost=8192).hash("lang genug 123")
    db.run_sync(lambda s: setattr(s.get(accounts.UserRow, "berater"), "password_hash", weak))
    check = accounts.check_password(weak, "lang genug 123")
    assert check.matches and check.new_hash and check.new_hash != weak
    opened = db.run_sync(lambda s: accounts.open_checked(s, "berater", weak, check, T0))
    assert opened is not None and opened[1] is Role.COUNSELLOR
    renewed = db.read_sync(lambda s: accounts.password_hash(s, "berater"))
    assert renewed == check.new_hash


def test_a_password_changed_while_it_was_checked_opens_no_session(db: Database):
    stored = db.read_sync(lambda s: accounts.password_hash(s, "berater"))
    assert stored is not None
    check = accounts.check_password(stored, "lang genug 123")
    db.run_sync(
        lambda s: accounts.add_user(
            s, "berater", "neues passwort 1", Role.COUNSELLOR, "office-a", replace=True
        )
    )
    assert db.run_sync(lambda s: accounts.open_checked(s, "berater", stored, check, T0)) is None


@pytest.mark.parametrize(
    ("username", "password", "role", "office"),
    [
        ("Bad Name", "lang genug 123", Role.COUNSELLOR, "office-a"),
        ("kurz", "short", Role.COUNSELLOR, "office-a"),
        ("ohne-buero", "lang genug 123", Role.COUNSELLOR, None),
        ("ombud", "lang genug 123", Role.OMBUDSPERSON, "office-a"),
        ("berater", "lang genug 123", Role.COUNSELLOR, "office-a"),
    ],
)
def test_users_that_make_no_sense_are_refused(db, username, password, role, office):
    with pytest.raises(AccountError):
        db.run_sync(lambda s: accounts.add_user(s, username, password, role, office))


def sign_in(db: Database, at: datetime) -> str:
    def open_one(session: Session) -> str:
        user = session.get(accounts.UserRow, "berater")
        assert user is not None
        return accounts.open_session(session, user, at)

    return db.run_sync(open_one)


def test_a_session_knows_its_user_and_keeps_the_token_only_hashed(db: Database):
    token = sign_in(db, T0)
    user = db.run_sync(lambda s: accounts.current(s, token, T0, POLICY))
    assert user is not None and user.office_id == "office-a" and user.role is Role.COUNSELLOR
    stored = db.run_sync(lambda s: [r.token_hash for r in s.exec(select(accounts.SessionRow))])
    assert token not in stored


def test_a_session_ends_after_idling(db: Database):
    token = sign_in(db, T0)
    later = T0 + timedelta(minutes=29)
    assert db.run_sync(lambda s: accounts.current(s, token, later, POLICY))
    idle = later + timedelta(minutes=31)
    assert db.run_sync(lambda s: accounts.current(s, token, idle, POLICY)) is None
    assert db.run_sync(lambda s: accounts.current(s, token, later, POLICY)) is None  # gone


def test_a_used_session_still_ends_at_its_lifetime(db: Database):
    token = sign_in(db, T0)

    def current(at: datetime) -> accounts.SignedIn | None:
        return db.run_sync(lambda s: accounts.current(s, token, at, POLICY))

    at = T0
    while at < T0 + timedelta(hours=9, minutes=50):
        at += timedelta(minutes=20)
        assert current(at), at
    at += timedelta(minutes=20)
    assert db.run_sync(lambda s: accounts.current(s, token, at, POLICY)) is None


def test_signing_out_and_changing_the_password_end_sessions(db: Database):
    first, second = sign_in(db, T0), sign_in(db, T0)
    db.run_sync(lambda s: accounts.close_session(s, first))
    assert db.run_sync(lambda s: accounts.current(s, first, T0, POLICY)) is None
    assert db.run_sync(lambda s: accounts.current(s, second, T0, POLICY))
    db.run_sync(
        lambda s: accounts.add_user(
            s, "berater", "neues passwort 1", Role.COUNSELLOR, "office-a", replace=True
        )
    )
    assert db.run_sync(lambda s: accounts.current(s, second, T0, POLICY)) is None


def test_sessions_whose_browser_never_came_back_are_forgotten(db: Database):
    abandoned = sign_in(db, T0)  # never used again
    kept_alive = sign_in(db, T0 + timedelta(hours=9, minutes=50))
    fresh = sign_in(db, T0 + timedelta(hours=9, minutes=55))
    now = T0 + timedelta(hours=10, minutes=1)
    assert db.run_sync(lambda s: accounts.current(s, kept_alive, now, POLICY))
    forgotten = db.run_sync(lambda s: accounts.forget_ended_sessions(s, now, POLICY))
    assert forgotten == 1

    def alive(token: str) -> bool:
        return db.run_sync(lambda s: accounts.current(s, token, now, POLICY)) is not None

    assert alive(kept_alive) and alive(fresh) and not alive(abandoned)
    much_later = now + timedelta(hours=11)  # past every lifetime
    assert db.run_sync(lambda s: accounts.forget_ended_sessions(s, much_later, POLICY)) == 2

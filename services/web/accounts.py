"""Who may sign in to the web app, with which role, and their sessions.

Passwords are hashed with Argon2id (argon2-cffi); a session is a random token kept only as a
hash, ending after a spell of inactivity or a fixed lifetime, whichever comes first. The web
app's database holds these and the sign-in throttle's counts (`throttle.FailureRow`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import DateTime
from sqlmodel import Field, Session, SQLModel, col, delete, select

from services.web.throttle import FailureRow
from wegweiser.platform.db import as_utc

_hasher = PasswordHasher()
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 10


class Role(StrEnum):
    """What a user may see: an office's cases, the audit trails' metadata, or (the county's
    administrator) the partner agencies' enrolments."""

    COUNSELLOR = "counsellor"
    OMBUDSPERSON = "ombudsperson"
    ADMINISTRATOR = "administrator"


class AccountError(ValueError):
    """A user cannot be created or changed as asked."""


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(**kw: object) -> object:
    return Field(sa_type=DateTime(timezone=True), **kw)  # type: ignore[call-overload]


class UserRow(SQLModel, table=True):
    """A person who signs in: a counsellor of one office, the ombudsperson, or an
    administrator of the county."""

    __tablename__ = "web_users"
    username: str = Field(primary_key=True, max_length=64)
    display_name: str = Field(max_length=200)
    role: str = Field(max_length=16)
    office_id: str | None = Field(default=None, max_length=64)
    password_hash: str = Field(max_length=200)
    created_at: datetime = _ts(default_factory=_now)  # type: ignore[assignment]


class SessionRow(SQLModel, table=True):
    """A signed-in browser; the cookie holds the token, the table only its SHA-256."""

    __tablename__ = "web_sessions"
    token_hash: str = Field(primary_key=True, max_length=64)
    username: str = Field(max_length=64, index=True)
    csrf: str = Field(max_length=64)
    created_at: datetime = _ts()  # type: ignore[assignment]
    last_seen_at: datetime = _ts()  # type: ignore[assignment]


TABLES: list[type[SQLModel]] = [UserRow, SessionRow, FailureRow]


@dataclass(frozen=True)
class SessionPolicy:
    """How long a session lasts: `idle` without a request, `lifetime` at most."""

    idle: timedelta = timedelta(minutes=30)
    lifetime: timedelta = timedelta(hours=10)


@dataclass(frozen=True)
class SignedIn:
    """The user behind a request, as the pages need it."""

    username: str
    display_name: str
    role: Role
    office_id: str | None
    csrf: str


def add_user(
    session: Session,
    username: str,
    password: str,
    role: Role,
    office_id: str | None = None,
    display_name: str | None = None,
    replace: bool = False,
) -> UserRow:
    """Create a user (or, with `replace`, set an existing one's password, role and office)."""
    if not USERNAME.match(username):
        raise AccountError(
            f"user name {username!r}: 2 to 64 of a-z, 0-9, '.', '_', '-', starting alphanumeric"
        )
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    if role is Role.COUNSELLOR and not office_id:
        raise AccountError("a counsellor belongs to an office: give --office")
    if role is not Role.COUNSELLOR and office_id:
        raise AccountError(f"the {role.value} belongs to no office")
    row = session.get(UserRow, username)
    if row is not None and not replace:
        raise AccountError(f"user {username!r} exists")
    row = row or UserRow(username=username, display_name="", role=role.value, password_hash="")
    row.display_name = display_name or username
    row.role, row.office_id = role.value, office_id
    row.password_hash = _hasher.hash(password)
    session.add(row)
    session.exec(delete(SessionRow).where(col(SessionRow.username) == username))
    return row


def users(session: Session) -> list[UserRow]:
    return list(session.exec(select(UserRow).order_by(col(UserRow.username))))


def normalise(username: str) -> str:
    """The name as stored: user names are lower case, typed with or without spaces around."""
    return username.strip().lower()


def password_hash(session: Session, username: str) -> str | None:
    """The stored hash of a user's password; None for a name nobody has."""
    row = session.get(UserRow, normalise(username))
    return row.password_hash if row else None


@dataclass(frozen=True)
class PasswordCheck:
    """Whether a password matched; if so and the hash's parameters are outdated, a new hash."""

    matches: bool
    new_hash: str | None = None


def check_password(stored: str | None, password: str) -> PasswordCheck:
    """Check `password` against `stored`, or against a dummy hash when there is no user, so that
    unknown names take as long as known ones. Argon2 takes tens of milliseconds and most of a
    core: call it outside any transaction, in a worker thread."""
    try:
        _hasher.verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return PasswordCheck(False)
    if stored is None:
        return PasswordCheck(False)
    renewed = _hasher.hash(password) if _hasher.check_needs_rehash(stored) else None
    return PasswordCheck(True, renewed)


def open_checked(
    session: Session, username: str, checked_hash: str, check: PasswordCheck, now: datetime
) -> tuple[str, Role] | None:
    """A session for a user whose password `check` found matching `checked_hash`, renewing the
    hash if the check says so; None if the password was changed since it was read."""
    row = session.get(UserRow, normalise(username))
    if row is None or not check.matches or row.password_hash != checked_hash:
        return None
    if check.new_hash:
        row.password_hash = check.new_hash
        session.add(row)
    return open_session(session, row, now), Role(row.role)


@cache
def _dummy_hash() -> str:
    """A hash to check unknown users against, so that they take as long as known ones."""
    return _hasher.hash(secrets.token_urlsafe(16))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, user: UserRow, now: datetime) -> str:
    """A new session for `user`; returns the token for the cookie (not stored)."""
    token = secrets.token_urlsafe(32)
    session.add(
        SessionRow(
            token_hash=_digest(token),
            username=user.username,
            csrf=secrets.token_urlsafe(24),
            created_at=now,
            last_seen_at=now,
        )
    )
    return token


def current(
    session: Session, token: str | None, now: datetime, policy: SessionPolicy
) -> SignedIn | None:
    """The user of a live session, which this request keeps alive; None if there is none."""
    if not token:
        return None
    row = session.get(SessionRow, _digest(token))
    if row is None:
        return None
    created, seen = as_utc(row.created_at), as_utc(row.last_seen_at)
    user = session.get(UserRow, row.username)
    if user is None or now - seen > policy.idle or now - created > policy.lifetime:
        session.delete(row)
        return None
    row.last_seen_at = now
    session.add(row)
    return SignedIn(user.username, user.display_name, Role(user.role), user.office_id, row.csrf)


def forget_ended_sessions(session: Session, now: datetime, policy: SessionPolicy) -> int:
    """Delete the sessions that have ended (unused for `idle`, or older than `lifetime`) but
    whose browser never came back to end them; how many."""
    ended = (col(SessionRow.last_seen_at) < now - policy.idle) | (
        col(SessionRow.created_at) < now - policy.lifetime
    )
    return int(session.exec(delete(SessionRow).where(ended)).rowcount or 0)


def close_session(session: Session, token: str | None) -> None:
    if token:
        session.exec(delete(SessionRow).where(col(SessionRow.token_hash) == _digest(token)))


def new_form_token() -> str:
    """A token for a form shown before anyone signed in (checked against a cookie)."""
    return secrets.token_urlsafe(24)


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected, given)

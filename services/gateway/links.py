"""One-time portal links: random tokens, kept only as hashes, valid once and for a while."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col

from services.gateway.store import CaseRow, LinkRow, SessionRow
from wegweiser.platform.db import as_utc


class LinkRefused(Exception):
    """The link cannot be used; `reason` says why (unknown, deleted, used, expired)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


DELETED = (
    "Die Daten dieser Vermittlung wurden gelöscht. / "
    "The personal data of this referral were deleted."
)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(
    session: Session, agency_id: str, referral_id: str, now: datetime, valid_for: timedelta
) -> str:
    """A new link token for one agency and referral; the token itself is not stored."""
    token = secrets.token_urlsafe(32)
    session.add(
        LinkRow(
            token_hash=digest(token),
            agency_id=agency_id,
            referral_id=referral_id,
            expires_at=now + valid_for,
        )
    )
    return token


def redeem(session: Session, token: str, now: datetime) -> LinkRow:
    """Use a link: it works once, before it expires, while its case is kept; LinkRefused
    otherwise."""
    link = session.get(LinkRow, digest(token))
    if link is None:
        raise LinkRefused("unknown", "this link is not known")
    if is_deleted(session, link.referral_id):
        raise LinkRefused("deleted", DELETED)
    if link.used_at is not None:
        raise LinkRefused("used", "this link was already used; each link works once")
    if as_utc(link.expires_at) <= now:
        raise LinkRefused("expired", "this link has expired")
    link.used_at = now
    session.add(link)
    return link


def open_session(
    session: Session, link: LinkRow, now: datetime, lasts: timedelta
) -> tuple[str, str]:
    """A portal session for the link's referral; (session token, CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    session.add(
        SessionRow(
            session_hash=digest(token),
            agency_id=link.agency_id,
            referral_id=link.referral_id,
            csrf=csrf,
            expires_at=now + lasts,
        )
    )
    return token, csrf


def current_session(session: Session, token: str | None, now: datetime) -> SessionRow | None:
    if not token:
        return None
    found = session.get(SessionRow, digest(token))
    return found if found is not None and as_utc(found.expires_at) > now else None


def prune(session: Session, now: datetime, keep: timedelta) -> tuple[int, int]:
    """Forget the links expired longer than `keep` ago (used or not: till then a used link
    is still refused as used, not as unknown) and the portal sessions that have ended;
    (links, sessions) forgotten."""
    links = session.execute(delete(LinkRow).where(col(LinkRow.expires_at) < now - keep))
    ended = session.execute(delete(SessionRow).where(col(SessionRow.expires_at) <= now))
    return int(links.rowcount or 0), int(ended.rowcount or 0)  # type: ignore[attr-defined]


def end_sessions(session: Session, referral_id: str) -> int:
    """End every portal session open on a referral; how many there were."""
    result = session.execute(delete(SessionRow).where(col(SessionRow.referral_id) == referral_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def is_deleted(session: Session, referral_id: str) -> bool:
    """Whether the referral's personal data were deleted (the gateway then holds none)."""
    case = session.get(CaseRow, referral_id)
    return case is not None and case.deleted_at is not None

"""Agencies' public keys, as the directory publishes them: which key is in effect, from when to
when, and who holds its private half.

An agency has up to three kinds of key, each a row here with a validity:
- `enc`: its X25519 key, to which intake seals every case offered to it;
- `sig`: its Ed25519 key, with which it proves its enrolment and signs its key rotations;
- `nats`: the public nkey of its broker user (its seed never leaves its machine).

A rotation adds new rows valid from a time and retires the old ones an overlap later (cases
sealed before the switch can still be opened); a revocation ends every key of the agency at
once. Custody says where the private halves are: `agency` (made on the agency's machine by
`wegweiser agency enrol`), `gateway` (an e-mail agency without software, whose keys the gateway
holds for it) or `county` (the sample agencies `up` plays in development).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from jwcrypto import jwk
from sqlmodel import Session, col, select

from schemas import subjects
from schemas.envelope import Payload, new_event
from schemas.events import AgencyKeysPublished, AgencyRevoked, PublishedKey
from services.directory import store
from services.directory.store import AgencyKey
from wegweiser.platform import outbox

DEFAULT_OVERLAP = timedelta(days=14)
Change = Literal["enrolled", "rotated", "on-file"]


class Use(StrEnum):
    SEALING = "enc"
    SIGNING = "sig"
    BROKER = "nats"


class Custody(StrEnum):
    AGENCY = "agency"
    GATEWAY = "gateway"
    COUNTY = "county"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class NewKey:
    use: Use
    kid: str
    key: dict[str, Any]  # a public JWK, or {"nkey": "U…"} for the broker user


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def in_effect(row: AgencyKey, now: datetime) -> bool:
    until = _aware(row.valid_until)
    start = _aware(row.valid_from)
    assert start is not None
    return row.revoked_at is None and start <= now and (until is None or now < until)


def current(session: Session, now: datetime | None = None) -> dict[tuple[str, Use], AgencyKey]:
    """For each agency and use, the key in effect now (the newest, during an overlap)."""
    now = now or _now()
    out: dict[tuple[str, Use], AgencyKey] = {}
    stmt = select(AgencyKey).where(col(AgencyKey.revoked_at).is_(None))
    for row in session.exec(stmt.order_by(col(AgencyKey.valid_from))):
        if in_effect(row, now):
            out[(row.agency_id, Use(row.use))] = row
    return out


def sealing_keys(session: Session, now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Each agency's sealing key in effect now, as a public JWK with its `kid`."""
    return {
        agency: {**row.key, "kid": row.kid}
        for (agency, use), row in current(session, now).items()
        if use is Use.SEALING
    }


def broker_users(session: Session, now: datetime | None = None) -> dict[str, str]:
    """Each agency's broker user (public nkey) in effect now."""
    return {
        agency: str(row.key["nkey"])
        for (agency, use), row in current(session, now).items()
        if use is Use.BROKER
    }


def next_change(session: Session, now: datetime) -> datetime | None:
    """The next time a key comes into or goes out of effect (when a cached view goes stale)."""
    times = [
        t
        for row in session.exec(select(AgencyKey).where(col(AgencyKey.revoked_at).is_(None)))
        for t in (_aware(row.valid_from), _aware(row.valid_until))
        if t is not None and t > now
    ]
    return min(times, default=None)


def publish(
    session: Session,
    agency_id: str,
    keys: Iterable[NewKey],
    custody: Custody,
    valid_from: datetime,
    overlap: timedelta = DEFAULT_OVERLAP,
    change: Change = "on-file",
) -> list[AgencyKey]:
    """Publish an agency's new keys from `valid_from`; the keys of the same uses they replace
    stay valid `overlap` longer, then retire. A key already published is left as it is. The
    audit is told in the same transaction (which keys, never a key itself)."""
    added = []
    for new in keys:
        if session.get(AgencyKey, new.kid) is not None:
            continue
        retire_at = valid_from + overlap
        stmt = select(AgencyKey).where(
            AgencyKey.agency_id == agency_id,
            AgencyKey.use == new.use.value,
            col(AgencyKey.revoked_at).is_(None),
        )
        for old in session.exec(stmt):
            until = _aware(old.valid_until)
            if until is None or until > retire_at:
                old.valid_until = retire_at
                session.add(old)
        row = AgencyKey(
            kid=new.kid,
            agency_id=agency_id,
            use=new.use.value,
            key=new.key,
            custody=custody.value,
            valid_from=valid_from,
        )
        session.add(row)
        added.append(row)
    if added:
        store.bump(session)
        news = AgencyKeysPublished(
            agency_id=agency_id,
            change=change,
            keys=tuple(
                PublishedKey(kid=r.kid, use=r.use, custody=r.custody, valid_from=valid_from)
                for r in added
            ),
        )
        _tell(session, agency_id, "keys-published", news)
    return added


def _tell(session: Session, agency_id: str, event: str, data: Payload) -> None:
    subject = subjects.directory_event(agency_id, event)
    outbox.stage(
        session, subject, new_event(data, source="/wegweiser/directory", subject=agency_id)
    )


def revoke(session: Session, agency_id: str, now: datetime | None = None) -> int:
    """End every key of the agency now; how many were still in force."""
    now = now or _now()
    ended = 0
    for row in session.exec(select(AgencyKey).where(AgencyKey.agency_id == agency_id)):
        if row.revoked_at is None:
            row.revoked_at = now
            session.add(row)
            ended += 1
    if ended:
        store.bump(session)
        news = AgencyRevoked(agency_id=agency_id, keys_ended=ended, revoked_at=now)
        _tell(session, agency_id, "revoked", news)
    return ended


def is_revoked(session: Session, agency_id: str) -> bool:
    """True when the agency had keys and none is left in force or to come."""
    rows = list(session.exec(select(AgencyKey).where(AgencyKey.agency_id == agency_id)))
    return bool(rows) and all(row.revoked_at is not None for row in rows)


def revoked_agencies(session: Session) -> set[str]:
    """Every agency that had keys and has none left in force or to come (one query)."""
    live: dict[str, bool] = {}
    for agency_id, revoked_at in session.exec(select(AgencyKey.agency_id, AgencyKey.revoked_at)):
        live[agency_id] = live.get(agency_id, False) or revoked_at is None
    return {agency_id for agency_id, alive in live.items() if not alive}


def jwks(session: Session, agency_id: str, now: datetime | None = None) -> dict[str, Any]:
    """The agency's published keys as a JWK Set (RFC 7517), each with its validity: those in
    effect, those to come, and those retiring during an overlap. Revoked ones are gone."""
    now = now or _now()
    out = []
    stmt = select(AgencyKey).where(
        AgencyKey.agency_id == agency_id, col(AgencyKey.revoked_at).is_(None)
    )
    for row in session.exec(stmt.order_by(col(AgencyKey.valid_from))):
        until = _aware(row.valid_until)
        if until is not None and until <= now:
            continue
        if row.use == Use.BROKER:
            continue  # not a JWK; the broker's business
        start = _aware(row.valid_from)
        assert start is not None
        out.append(
            {
                **row.key,
                "kid": row.kid,
                "use": row.use,
                "wegweiser:valid_from": start.isoformat(),
                "wegweiser:valid_until": until.isoformat() if until else None,
                "wegweiser:custody": row.custody,
            }
        )
    return {"keys": out}


def publish_on_file(
    session: Session, on_file: dict[str, dict[str, Any]], now: datetime | None = None
) -> int:
    """The sealing keys on the county's machine, for each agency in the directory that has
    published no key of its own: an e-mail agency's, which the gateway holds for it, and in
    development the sample agencies' that `up` plays. How many were added."""
    known = set(session.exec(select(AgencyKey.agency_id)))
    added = 0
    for agency_id, key in on_file.items():
        agency = store.get(session, agency_id)
        if agency_id in known or agency is None:
            continue
        # an e-mail agency has no software to hold a key: the gateway holds it for it
        custody = Custody.GATEWAY if agency.channel == "email" else Custody.COUNTY
        kid = jwk.JWK(**key).thumbprint()
        new = [NewKey(Use.SEALING, kid, key)]
        added += len(publish(session, agency_id, new, custody, now or _now()))
    return added

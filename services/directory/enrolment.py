"""An agency joins by itself: the county invites it, the agency makes its keys on its own
machine and sends only their public halves, the county approves, the directory publishes.

1. `invite`: a one-time code for one agency of the directory, valid for days; only the code's
   SHA-256 is kept.
2. `request` (the agency, over the directory's HTTP API): the code, its public sealing key
   (X25519), signing key (Ed25519) and broker user (nkey), with two proofs that it holds the
   private halves: a JWS by its signing key and an nkey signature, both over the same
   statement naming the code and the keys. The code is spent by the first valid request.
3. `approve` (the county): the keys are published at once, replacing any the county held for
   the agency; a webhook agency's signing secret goes back sealed to the agency's own key.
   `refuse` ends the enrolment with nothing published.

Each refusal has a stable code (`Refused.code`) and changes nothing.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from jwcrypto import jwe, jwk, jws
from jwcrypto.common import JWException
from sqlmodel import Session, col, select

from schemas.enrolment import EnrolmentRequest, KeyRotation, digest, rotation_statement, statement
from services.directory import identities, store
from services.directory.identities import Custody, NewKey, Use
from services.directory.store import EnrolmentRow
from wegweiser.platform import grants, nats_auth

CODE_PREFIX = "wwe_"


class Status(StrEnum):
    INVITED = "invited"
    REQUESTED = "requested"
    APPROVED = "approved"
    REFUSED = "refused"


class Refused(Exception):
    """An enrolment step that is refused; `code` is stable, for programs and the audit."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(frozen=True, slots=True)
class Invitation:
    enrolment_id: str
    agency_id: str
    code: str  # shown once, to hand to the agency
    expires_at: datetime


def invite(
    session: Session, agency_id: str, valid_for: timedelta, now: datetime | None = None
) -> Invitation:
    """A one-time enrolment code for an agency of the directory."""
    now = now or _now()
    agency = store.get(session, agency_id)
    if agency is None:
        raise Refused("enrolment.unknown-agency", f"unknown agency {agency_id!r}", 404)
    if valid_for <= timedelta(0) or valid_for > timedelta(days=30):
        raise Refused("enrolment.bad-validity", "an invitation is valid for 1 s to 30 days")
    code = CODE_PREFIX + secrets.token_urlsafe(24)
    row = EnrolmentRow(
        id=f"enr-{uuid.uuid4()}",
        agency_id=agency_id,
        channel=agency.channel,
        code_sha256=digest(code),
        status=Status.INVITED.value,
        invited_at=now,
        expires_at=now + valid_for,
    )
    session.add(row)
    return Invitation(row.id, agency_id, code, row.expires_at)


def _public(data: dict[str, Any], crv: str, what: str) -> jwk.JWK:
    if "d" in data:
        raise Refused("enrolment.private-key-sent", f"the {what} includes its private half")
    try:
        key = jwk.JWK(**data)
    except (JWException, ValueError, TypeError) as exc:
        raise Refused("enrolment.bad-key", f"the {what} is not a JWK: {exc}") from None
    if key.get("kty") != "OKP" or key.get("crv") != crv:
        raise Refused("enrolment.bad-key", f"the {what} must be an OKP {crv} key")
    return key


def _verify(proof: str, key: jwk.JWK, said: bytes, whose: str) -> None:
    token = jws.JWS()
    try:
        token.deserialize(proof)
        token.verify(key, alg="EdDSA")
    except (JWException, ValueError) as exc:
        raise Refused("enrolment.bad-proof", f"{whose} proof fails: {exc}") from None
    if token.payload != said:
        raise Refused("enrolment.bad-proof", f"{whose} proof signs another statement")


def check_proofs(body: EnrolmentRequest) -> tuple[jwk.JWK, jwk.JWK]:
    """The sealing and signing keys, once both proofs hold; else Refused."""
    sealing = _public(body.sealing_key, "X25519", "sealing key")
    signing = _public(body.signing_key, "Ed25519", "signing key")
    said = statement(body.code, sealing.thumbprint(), signing.thumbprint(), body.nats_user)
    _verify(body.proof, signing, said, "the signing key's")
    try:
        signature = base64.urlsafe_b64decode(body.nats_proof + "=" * (-len(body.nats_proof) % 4))
        nats_auth.verify_user_signature(body.nats_user, said, signature)
    except (nats_auth.BadUserSignature, ValueError) as exc:
        raise Refused("enrolment.bad-proof", f"the nkey's proof fails: {exc}") from None
    return sealing, signing


def request(session: Session, body: EnrolmentRequest, now: datetime | None = None) -> EnrolmentRow:
    """Spend the code on this request; the enrolment now waits for the county's decision."""
    now = now or _now()
    row = session.exec(
        select(EnrolmentRow).where(EnrolmentRow.code_sha256 == digest(body.code))
    ).first()
    if row is None:
        raise Refused("enrolment.unknown-code", "no invitation has this code", 401)
    if row.status == Status.REFUSED.value and row.requested_at is None:
        raise Refused("enrolment.code-withdrawn", "the county withdrew this invitation", 410)
    if row.status != Status.INVITED.value:
        raise Refused("enrolment.code-used", "this code has been used", 409)
    if _aware(row.expires_at) <= now:
        raise Refused("enrolment.code-expired", "this code has expired", 410)
    sealing, signing = check_proofs(body)
    row.status = Status.REQUESTED.value
    row.requested_at = now
    row.request = {
        "sealing_key": sealing.export_public(as_dict=True),
        "signing_key": signing.export_public(as_dict=True),
        "nats_user": body.nats_user,
    }
    session.add(row)
    return row


def pending(session: Session) -> list[EnrolmentRow]:
    """Enrolments not yet decided, oldest first (invitations not yet used among them)."""
    stmt = select(EnrolmentRow).where(
        col(EnrolmentRow.status).in_([Status.INVITED.value, Status.REQUESTED.value])
    )
    return list(session.exec(stmt.order_by(col(EnrolmentRow.invited_at))))


def _requested(session: Session, enrolment_id: str) -> EnrolmentRow:
    row = session.get(EnrolmentRow, enrolment_id)
    if row is None:
        raise Refused("enrolment.unknown", f"no enrolment {enrolment_id}", 404)
    if row.status != Status.REQUESTED.value:
        raise Refused("enrolment.not-requested", f"enrolment {enrolment_id} is {row.status}", 409)
    return row


def approve(
    session: Session,
    enrolment_id: str,
    webhook_secret: str | None = None,
    now: datetime | None = None,
) -> EnrolmentRow:
    """Publish the agency's keys from now on (the county's copies retire at once); a webhook
    agency's `webhook_secret` is sealed to its new key for it to collect."""
    now = now or _now()
    row = _requested(session, enrolment_id)
    assert row.request is not None
    sealing = jwk.JWK(**row.request["sealing_key"])
    signing = jwk.JWK(**row.request["signing_key"])
    nats_user = str(row.request["nats_user"])
    identities.publish(
        session,
        row.agency_id,
        [
            NewKey(Use.SEALING, sealing.thumbprint(), sealing.export_public(as_dict=True)),
            NewKey(Use.SIGNING, signing.thumbprint(), signing.export_public(as_dict=True)),
            NewKey(Use.BROKER, nats_user, {"nkey": nats_user}),
        ],
        Custody.AGENCY,
        valid_from=now,
        overlap=timedelta(0),
        change="enrolled",
    )
    if webhook_secret is not None:
        sealed = jwe.JWE(
            json.dumps({"webhook_secret": webhook_secret}).encode(),
            protected={"alg": "ECDH-ES", "enc": "A256GCM", "kid": sealing.thumbprint()},
        )
        sealed.add_recipient(sealing)
        row.delivery = sealed.serialize(compact=True)
    row.status = Status.APPROVED.value
    row.decided_at = now
    session.add(row)
    return row


def refuse(session: Session, enrolment_id: str, now: datetime | None = None) -> EnrolmentRow:
    """End an enrolment with nothing published: a request refused, or an invitation withdrawn
    before the agency used it (its code is refused from then on)."""
    row = session.get(EnrolmentRow, enrolment_id)
    if row is None:
        raise Refused("enrolment.unknown", f"no enrolment {enrolment_id}", 404)
    if row.status not in {Status.INVITED.value, Status.REQUESTED.value}:
        raise Refused("enrolment.decided", f"enrolment {enrolment_id} is {row.status}", 409)
    row.status, row.decided_at = Status.REFUSED.value, now or _now()
    session.add(row)
    return row


def view(
    session: Session, enrolment_id: str, office_keys: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """What the agency may see of its enrolment: its state and, once approved, how to take
    part (the names a NATS integrator needs), the offices' public signing keys (by key id:
    every case is signed by one) and sealing keys (by office id: its comments are sealed to
    one), and its sealed webhook secret. `office_keys`: those two maps, by those names."""
    row = session.get(EnrolmentRow, enrolment_id)
    if row is None:
        raise Refused("enrolment.unknown", f"no enrolment {enrolment_id}", 404)
    out: dict[str, Any] = {
        "enrolment_id": row.id,
        "agency_id": row.agency_id,
        "channel": row.channel,
        "status": row.status,
    }
    if row.status == Status.APPROVED.value:
        if row.channel == "nats":
            out["nats"] = grants.agency_connection(row.agency_id)
        out["sealed_delivery"] = row.delivery
        out |= {"office_keys": {}, "office_sealing_keys": {}, **(office_keys or {})}
    return out


MAX_OVERLAP = timedelta(days=90)


def rotate(
    session: Session,
    agency_id: str,
    body: KeyRotation,
    overlap: timedelta = identities.DEFAULT_OVERLAP,
    now: datetime | None = None,
) -> list[str]:
    """Publish an enrolled agency's new sealing and signing keys from `valid_from` (not in
    the past); its current ones retire `overlap` after. The kids published."""
    now = now or _now()
    current = identities.current(session, now).get((agency_id, Use.SIGNING))
    if current is None or current.custody != Custody.AGENCY.value:
        raise Refused("rotation.not-enrolled", f"{agency_id} has no signing key of its own", 403)
    sealing = _public(body.sealing_key, "X25519", "sealing key")
    signing = _public(body.signing_key, "Ed25519", "signing key")
    valid_from = max(body.valid_from, now)
    if valid_from > now + MAX_OVERLAP:
        raise Refused("rotation.too-late", "a rotation starts within 90 days")
    said = rotation_statement(
        agency_id, sealing.thumbprint(), signing.thumbprint(), body.valid_from.isoformat()
    )
    _verify(body.proof, jwk.JWK(**current.key), said, "the current signing key's")
    _verify(body.new_proof, signing, said, "the new signing key's")
    added = identities.publish(
        session,
        agency_id,
        [
            NewKey(Use.SEALING, sealing.thumbprint(), sealing.export_public(as_dict=True)),
            NewKey(Use.SIGNING, signing.thumbprint(), signing.export_public(as_dict=True)),
        ],
        Custody.AGENCY,
        valid_from=valid_from,
        overlap=overlap,
        change="rotated",
    )
    return [row.kid for row in added]

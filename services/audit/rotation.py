"""Rotating the audit log's signing key: the old key signs the handover to the new one.

A verifier pins one key (`wegweiser audit key` prints it) and follows the handovers from it;
a key that no chain of handovers from the pinned key reaches is a forgery. The retired key is
kept beside the new one (`log-signing.<fingerprint>.pem`), never deleted.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from services.audit import keys
from services.audit.recorder import LOG_ID
from services.audit.verification import Rotation, fingerprint
from wegweiser.platform.files import write_private
from wegweiser.platform.keys import KeyRing, write_once


def rotations(ring: KeyRing) -> list[Rotation]:
    path = keys.rotations_path(ring)
    if not path.exists():
        return []
    return [Rotation(**r) for r in json.loads(path.read_text())]


def public_key(ring: KeyRing) -> Ed25519PublicKey:
    """The log's current public key, as the installation keeps it."""
    keys.signing(ring)  # made on first use, with its public half
    return keys.read_public(keys.public_path(ring))


def rotate(ring: KeyRing, now: datetime | None = None) -> Rotation:
    """Make a new signing key, signed over to by the current one; retire the current one.
    The audit service takes the new key at its next start."""
    old = keys.signing(ring)
    new = Ed25519PrivateKey.generate()
    when = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    handover = Rotation.make(LOG_ID, old, new.public_key(), when)
    retired = keys.retired_path(ring, fingerprint(old.public_key()))
    write_once(retired, old.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    chain = [*rotations(ring), handover]
    write_private(
        keys.rotations_path(ring), json.dumps([asdict(r) for r in chain], indent=1).encode()
    )
    write_private(
        keys.signing_path(ring),
        new.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
    )
    write_private(
        keys.public_path(ring),
        new.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
    )
    return handover

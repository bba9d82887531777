"""Each person's data encrypted under a key of their own (AES-256-GCM), wrapped by the
intake's master key; destroying a person's key makes their data unreadable (crypto-shredding)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import DateTime, LargeBinary
from sqlmodel import Field, Session, SQLModel, col, select

NONCE = 12


class PersonKey(SQLModel, table=True):
    """A data key of one person, wrapped by the master key; None once destroyed. A person who
    comes back after erasure gets a new key; the old data stays unreadable."""

    __tablename__ = "person_keys"
    id: str = Field(primary_key=True, max_length=32)
    person_ref: str = Field(max_length=64, index=True)
    wrapped: bytes | None = Field(default=None, sa_type=LargeBinary)
    created_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), sa_type=DateTime(timezone=True)
    )
    destroyed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class PersonErased(Exception):
    """The person's key was destroyed: their data can no longer be read."""


class VaultError(Exception):
    """Stored ciphertext does not decrypt (altered, or another master key)."""


def master_key(configured: str | None, keys_dir: Path) -> bytes:
    """The master key from settings (base64), else from keys_dir, created on first use."""
    if configured:
        key = base64.b64decode(configured)
    else:
        path = keys_dir / "intake-master.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(base64.b64encode(secrets.token_bytes(32)).decode())
        key = base64.b64decode(path.read_text())
    if len(key) != 32:
        raise ValueError("the intake master key must be 32 bytes (base64)")
    return key


class Vault:
    """Encrypts and decrypts a person's records under that person's key."""

    def __init__(self, key: bytes) -> None:
        self._master = AESGCM(key)
        self._pseudonym_key = hmac.new(key, b"wegweiser/pseudonym", hashlib.sha256).digest()

    def pseudonym(self, person_ref: str) -> str:
        """A stable pseudonym of the office's own client reference, for records that leave
        intake: nobody without the master key can link it back."""
        digest = hmac.new(self._pseudonym_key, person_ref.encode(), hashlib.sha256).hexdigest()
        return f"p-{digest[:24]}"

    def seal(self, session: Session, person_ref: str, purpose: str, data: dict[str, Any]) -> bytes:
        """Encrypt under the person's current key; the key id travels in front."""
        key_id, key = self._current_key(session, person_ref)
        plain = json.dumps(data, ensure_ascii=False).encode()
        return key_id.encode() + b"." + _encrypt(key, _ad(person_ref, purpose), plain)

    def open(self, session: Session, person_ref: str, purpose: str, blob: bytes) -> dict[str, Any]:
        key_id, _, sealed = blob.partition(b".")
        row = session.get(PersonKey, key_id.decode())
        if row is None or row.person_ref != person_ref:
            raise VaultError(f"no key {key_id!r} for {person_ref}")
        if row.wrapped is None:
            raise PersonErased(f"the data of {person_ref} has been erased")
        key = AESGCM(_decrypt(self._master, _ad(person_ref, "key"), row.wrapped))
        return dict(json.loads(_decrypt(key, _ad(person_ref, purpose), sealed)))

    def shred(self, session: Session, person_ref: str) -> int:
        """Destroy every key of the person; how many were destroyed."""
        rows = session.exec(
            select(PersonKey).where(
                PersonKey.person_ref == person_ref, col(PersonKey.wrapped).is_not(None)
            )
        ).all()
        for row in rows:
            row.wrapped, row.destroyed_at = None, datetime.now(UTC)
            session.add(row)
        return len(rows)

    def erased(self, session: Session, person_ref: str, blob: bytes) -> bool:
        """Whether what `blob` holds can no longer be opened (its key was destroyed), without
        opening it."""
        row = session.get(PersonKey, blob.partition(b".")[0].decode())
        return row is None or row.person_ref != person_ref or row.wrapped is None

    def has_key(self, session: Session, person_ref: str) -> bool:
        """Whether the person has a usable key (i.e. their data is readable)."""
        stmt = select(PersonKey.id).where(
            PersonKey.person_ref == person_ref, col(PersonKey.wrapped).is_not(None)
        )
        return session.exec(stmt).first() is not None

    def _current_key(self, session: Session, person_ref: str) -> tuple[str, AESGCM]:
        row = session.exec(
            select(PersonKey).where(
                PersonKey.person_ref == person_ref, col(PersonKey.wrapped).is_not(None)
            )
        ).first()
        if row is not None and row.wrapped is not None:
            return row.id, AESGCM(_decrypt(self._master, _ad(person_ref, "key"), row.wrapped))
        key = AESGCM.generate_key(bit_length=256)
        row = PersonKey(
            id=secrets.token_hex(16),
            person_ref=person_ref,
            wrapped=_encrypt(self._master, _ad(person_ref, "key"), key),
        )
        session.add(row)
        session.flush()
        return row.id, AESGCM(key)


def _ad(person_ref: str, purpose: str) -> bytes:
    return f"wegweiser/intake/{person_ref}/{purpose}".encode()


def _encrypt(aead: AESGCM, ad: bytes, plain: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE)
    return nonce + aead.encrypt(nonce, plain, ad)


def _decrypt(aead: AESGCM, ad: bytes, blob: bytes) -> bytes:
    try:
        return aead.decrypt(blob[:NONCE], blob[NONCE:], ad)
    except InvalidTag:
        raise VaultError("stored data does not decrypt: altered, or another master key") from None

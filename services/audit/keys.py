"""The audit log's signing key as the audit service keeps it in the key folder (`keys_dir/audit/`):
`log-signing.pem`, its public half `log-signing.pub.pem` (what `wegweiser audit key` prints and
the web app pins), the signed handovers of its rotations in `rotations.json`, oldest first, and
each retired key as `log-signing.<fingerprint>.pem` (see rotation.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from services.audit.verification import fingerprint
from wegweiser.platform.keys import KeyRing, load_or_create_ed25519, pem_public_path


def folder(ring: KeyRing) -> Path:
    return ring.dir / "audit"


def signing_path(ring: KeyRing) -> Path:
    return folder(ring) / "log-signing.pem"


def public_path(ring: KeyRing) -> Path:
    return pem_public_path(signing_path(ring))


def rotations_path(ring: KeyRing) -> Path:
    return folder(ring) / "rotations.json"


def retired_path(ring: KeyRing, fingerprint: str) -> Path:
    """Where the key with this fingerprint (`sha256:<hex>`) is kept once a newer one took over."""
    return folder(ring) / f"log-signing.{fingerprint.removeprefix('sha256:')}.pem"


def signing(ring: KeyRing) -> Ed25519PrivateKey:
    """The log's current private key, made on first use with its public half."""
    return load_or_create_ed25519(signing_path(ring))


def read_public(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file; ValueError if the file holds another kind."""
    loaded = load_pem_public_key(path.read_bytes())
    if not isinstance(loaded, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return loaded


class NoAuditKey(LookupError):
    """The audit service has not made the log's key in this key folder yet."""

    def __init__(self, ring: KeyRing) -> None:
        super().__init__(f"no audit key in {folder(ring)}")


@dataclass(frozen=True)
class Published:
    """The log's public key as a verifier keeps it: the PEM text and its fingerprint."""

    pem: str
    fingerprint: str


def published(ring: KeyRing) -> Published:
    """The log's current public key, to pin; NoAuditKey before the audit service made it."""
    path = public_path(ring)
    if not path.exists():
        raise NoAuditKey(ring)
    return Published(path.read_text().strip(), fingerprint(read_public(path)))

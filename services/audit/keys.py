"""The audit log's signing key as the audit service keeps it in the key folder (`keys_dir/audit/`):
`log-signing.pem`, its public half `log-signing.pub.pem` (what `wegweiser audit key` prints and
the web app pins), the signed handovers of its rotations in `rotations.json`, oldest first, and
each retired key as `log-signing.<fingerprint>.pem` (see rotation.py)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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

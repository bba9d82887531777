"""Key files: agencies' X25519 key pairs, the office's Ed25519 signing key, as JWK files; a
service's own Ed25519 key as PEM (the service names its file)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from jwcrypto import jwk

from wegweiser.platform import files


def generate_encryption_key() -> jwk.JWK:
    """A new X25519 key pair for receiving sealed data."""
    return jwk.JWK.generate(kty="OKP", crv="X25519")


def generate_signing_key() -> jwk.JWK:
    """A new Ed25519 key pair for signing sealed data."""
    return jwk.JWK.generate(kty="OKP", crv="Ed25519")


def public_dict(key: jwk.JWK) -> dict[str, Any]:
    """The public half as a JWK dict (what a directory may publish)."""
    return dict(key.export_public(as_dict=True))


def from_dict(data: dict[str, Any]) -> jwk.JWK:
    return jwk.JWK(**data)


def public_path(private: Path) -> Path:
    return private.with_name(private.name.removesuffix(".jwk") + ".pub.jwk")


def load(path: Path) -> jwk.JWK:
    """A JWK from a file (private or public)."""
    return jwk.JWK.from_json(path.read_text())


def write_once(path: Path, data: bytes) -> bytes:
    """Create `path` (owner-only) holding `data` unless it exists; return what it holds.
    Safe when processes race at first start: the file is written aside, then linked into
    place, so it appears whole and only the first writer's content wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd, aside = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            with contextlib.suppress(FileExistsError):
                os.link(aside, path)
        finally:
            os.unlink(aside)
    return path.read_bytes()


def pem_public_path(private: Path) -> Path:
    return private.with_name(private.name.removesuffix(".pem") + ".pub.pem")


def load_or_create_ed25519(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key in `path` (PKCS#8 PEM), made on first use, its public half beside it
    (`pem_public_path`); of instances that start together, the first key written wins."""
    fresh = Ed25519PrivateKey.generate()
    pem = write_once(path, fresh.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    loaded = load_pem_private_key(pem, password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    public = loaded.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    write_once(pem_public_path(path), public)
    return loaded


def load_or_create(path: Path, make: Any) -> jwk.JWK:
    """The key in `path`, made on first use, its public half beside it. Instances that start
    together each make one, but only the first written is kept and every one of them loads
    that: two instances of intake signing with keys of their own refused each other's
    tokens (a 401 in the fault test, whose clients reach either instance)."""
    if not path.exists():
        write_once(path, make().export_private().encode())
    key = load(path)
    public = public_path(path)
    if not public.exists() or load(public).thumbprint() != key.thumbprint():
        files.write_private(public, json.dumps(public_dict(key)))  # made anew with its key
    return key


class KeyRing:
    """Where the embedded setup keeps keys: `keys_dir/{office,office-sealing,agencies}/<id>.jwk`."""

    def __init__(self, keys_dir: Path) -> None:
        self.dir = keys_dir

    def office_signing(self, office_id: str) -> jwk.JWK:
        return load_or_create(self.dir / "office" / f"{office_id}.jwk", generate_signing_key)

    def office_public(self) -> dict[str, jwk.JWK]:
        """kid -> public signing key of every office whose key is on file."""
        return {
            p.name.removesuffix(".pub.jwk"): load(p)
            for p in sorted((self.dir / "office").glob("*.pub.jwk"))
        }

    def office_sealing(self, office_id: str) -> jwk.JWK:
        """The office's X25519 key pair: agencies seal their comments to its public half."""
        return load_or_create(
            self.dir / "office-sealing" / f"{office_id}.jwk", generate_encryption_key
        )

    def office_sealing_public(self) -> dict[str, jwk.JWK]:
        """office id -> public sealing key of every office whose key is on file."""
        return {
            p.name.removesuffix(".pub.jwk"): load(p)
            for p in sorted((self.dir / "office-sealing").glob("*.pub.jwk"))
        }

    def agency_path(self, agency_id: str) -> Path:
        return self.dir / "agencies" / f"{agency_id}.jwk"

    def agency_private(self, agency_id: str) -> jwk.JWK:
        return load(self.agency_path(agency_id))

    def ensure_agency(self, agency_id: str) -> jwk.JWK:
        """Create the agency's key pair if it has none (the embedded demo plays every agency)."""
        return load_or_create(self.agency_path(agency_id), generate_encryption_key)

    def agency_public_keys(self) -> dict[str, dict[str, Any]]:
        return {
            p.name.removesuffix(".pub.jwk"): json.loads(p.read_text())
            for p in sorted((self.dir / "agencies").glob("*.pub.jwk"))
        }


def trace_reads(keys_dir: Path, log: Path, who: str) -> None:
    """Record every file this process opens under `keys_dir` in `log` (one path per line):
    how the tests prove which keys each service reads (`WEGWEISER_TRACE_KEY_READS`)."""
    import sys

    root = str(keys_dir.resolve())

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event != "open" or not isinstance(args[0], str | Path):
            return
        path = os.path.abspath(args[0])
        if path.startswith(root + os.sep):
            with open(log, "a", encoding="utf-8") as out:  # not under keys_dir: no recursion
                out.write(f"{who}\t{os.path.relpath(path, root)}\n")

    sys.addaudithook(hook)

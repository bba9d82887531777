"""The archive: a tar of the backup's files and its manifest, encrypted with age.

Inside the tar:
    manifest.json              what the archive holds: each file's SHA-256 and size, the point
    databases/<service>.sqlite SQLite's online backup of the service's database
    databases/<service>.pgdump `pg_dump --format=custom` of a PostgreSQL database
    stream/meta.json           the stream's configuration and state, as the snapshot API gave
    stream/snapshot.tar.s2     JetStream's own snapshot of the stream and its consumers
    stream/tail.jsonl          the messages after the snapshot, up to the backup's point
    keys/...                   the keys folder, as it was
    settings/wegweiser.toml    the settings file, if there was one

age (pyrage) encrypts it either to X25519 recipients (`age1...`: the backup host needs only
the public half; the identity is kept offline) or with a passphrase (scrypt).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Literal

import pyrage
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pyrage import passphrase as by_passphrase
from pyrage import x25519

FORMAT = 1
"""The archive format this version writes and the newest it reads."""
MANIFEST = "manifest.json"


class Refused(Exception):
    """The archive or the target cannot be used; nothing was changed. The message says why."""


class FileEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    sha256: str
    size: int


class DatabaseEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["sqlite", "postgresql"]
    revision: str | None
    """Its schema revision (Alembic), so that an older Wegweiser refuses a newer database."""
    published: list[str] = []
    """Events its outbox still held at the point that the stream already had: forgotten on
    restore, or the relay would publish them a second time."""


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    format: int = FORMAT
    wegweiser_version: str
    created_at: datetime
    stream: str
    snapshot_sequence: int = Field(description="the stream's last sequence in its snapshot")
    point_sequence: int = Field(description="the backup's point: every database's instant")
    tail_messages: int
    audit_head: dict[str, object] | None = None
    """The newest signed tree head in the audit database at the point (size, root, time)."""
    databases: dict[str, DatabaseEntry]
    files: dict[str, FileEntry]


def digest(path: Path) -> FileEntry:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return FileEntry(sha256=sha.hexdigest(), size=path.stat().st_size)


def describe(folder: Path) -> dict[str, FileEntry]:
    """Every file under `folder`, by its path relative to it."""
    return {
        p.relative_to(folder).as_posix(): digest(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


class Key:
    """How an archive is encrypted or opened: age recipients and identities, or a passphrase."""

    def __init__(
        self,
        recipients: list[str] | None = None,
        identities: list[str] | None = None,
        passphrase: str | None = None,
    ) -> None:
        if passphrase is not None and (recipients or identities):
            raise Refused("give either a passphrase or age keys, not both")
        self.passphrase = passphrase
        try:
            self.recipients = [x25519.Recipient.from_str(r.strip()) for r in recipients or []]
        except pyrage.RecipientError as exc:
            raise Refused(f"not an age recipient (age1...): {exc}") from None
        try:
            self.identities = [x25519.Identity.from_str(i.strip()) for i in identities or []]
        except pyrage.IdentityError as exc:
            raise Refused(f"not an age identity (AGE-SECRET-KEY-1...): {exc}") from None

    @classmethod
    def from_files(
        cls,
        recipients: list[str],
        recipients_file: Path | None,
        identity_file: Path | None,
        passphrase_file: Path | None,
    ) -> Key:
        """The key as the command line names it (files as age writes them: one key a line,
        `#` comments)."""
        listed = list(recipients)
        if recipients_file is not None:
            listed += _keys_in(recipients_file)
        identities = _keys_in(identity_file) if identity_file is not None else []
        secret = None
        if passphrase_file is not None:
            secret = passphrase_file.read_text().rstrip("\n")
            if not secret:
                raise Refused(f"the passphrase file is empty: {passphrase_file}")
        return cls(listed, identities, secret)

    def can_encrypt(self) -> bool:
        return self.passphrase is not None or bool(self.recipients)

    def can_decrypt(self) -> bool:
        return self.passphrase is not None or bool(self.identities)


def _keys_in(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def new_identity() -> tuple[str, str]:
    """A new age identity and its recipient (the public half)."""
    identity = x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def seal(folder: Path, manifest: Manifest, out: Path, key: Key) -> None:
    """Write `folder` (and its manifest) as an encrypted archive at `out`, whole or not at all."""
    if not key.can_encrypt():
        raise Refused("no key to encrypt with: give --recipient, --recipients-file or a passphrase")
    (folder / MANIFEST).write_text(manifest.model_dump_json(indent=2))
    work = Path(tempfile.mkdtemp(prefix=".wegweiser-backup-", dir=out.parent))
    try:
        plain = work / "archive.tar"
        with tarfile.open(plain, "w") as tar:
            tar.add(folder / MANIFEST, arcname=MANIFEST)
            for name in manifest.files:
                tar.add(folder / name, arcname=name)
        sealed = work / "archive.age"
        if key.passphrase is not None:  # age's scrypt recipient: pyrage has it in memory only
            sealed.write_bytes(by_passphrase.encrypt(plain.read_bytes(), key.passphrase))
        else:
            pyrage.encrypt_file(str(plain), str(sealed), key.recipients)
        os.chmod(sealed, 0o600)
        os.replace(sealed, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def open_archive(archive: Path, into: Path, key: Key) -> Manifest:
    """Decrypt `archive` into the empty folder `into` and check every file against the
    manifest; Refused (and `into` left empty) if anything is wrong."""
    if not key.can_decrypt():
        raise Refused("no key to open the archive with: give --identity or a passphrase")
    plain = into / ".archive.tar"
    try:
        try:
            if key.passphrase is not None:
                plain.write_bytes(by_passphrase.decrypt(archive.read_bytes(), key.passphrase))
            else:
                pyrage.decrypt_file(str(archive), str(plain), key.identities)
        except (pyrage.DecryptError, OSError) as exc:  # OSError: damage found mid-stream
            raise Refused(
                f"cannot decrypt {archive}: the wrong passphrase or identity, or not an age "
                f"archive ({exc})"
            ) from None
        manifest = _extract(plain, into)
    except BaseException:
        _empty(into)
        raise
    finally:
        plain.unlink(missing_ok=True)
    return manifest


def _extract(plain: Path, into: Path) -> Manifest:
    try:
        with tarfile.open(plain) as tar:
            tar.extractall(into, filter="data")  # no links out, no absolute paths, no devices
    except tarfile.TarError as exc:
        raise Refused(f"the archive is damaged: {exc}") from None
    try:
        raw = json.loads((into / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise Refused(f"the archive has no readable manifest: {exc}") from None
    if isinstance(raw, dict) and isinstance(raw.get("format"), int) and raw["format"] > FORMAT:
        raise Refused(
            f"the archive is of format {raw['format']}, made by a newer Wegweiser "
            f"({raw.get('wegweiser_version')}); this one reads format {FORMAT} at most: "
            "restore with that version or newer"
        )
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        raise Refused(f"the archive's manifest is not valid: {exc.errors()[0]['msg']}") from None
    found = describe(into)
    found.pop(plain.name, None)
    if found != manifest.files:
        damaged = sorted(
            name
            for name in set(found) | set(manifest.files)
            if found.get(name) != manifest.files.get(name)
        )
        raise Refused(f"the archive is damaged: these files differ from its manifest: {damaged}")
    return manifest


def _empty(folder: Path) -> None:
    for child in folder.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()

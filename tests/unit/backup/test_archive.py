"""The archive: what it holds comes back only with the right key, only whole and unchanged,
and only if this version can read it; every refusal says why and leaves nothing behind."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from pyrage import x25519

from tests.support.backup import PUBLIC, SECRET, a_folder, manifest_of
from wegweiser.backup.archive import (
    FORMAT,
    MANIFEST,
    Key,
    Manifest,
    Refused,
    describe,
    new_identity,
    open_archive,
    seal,
)


def sealed(tmp_path: Path, key: Key | None = None) -> Path:
    folder = a_folder(tmp_path)
    out = tmp_path / "backup.age"
    seal(folder, manifest_of(folder), out, key or Key(recipients=[PUBLIC]))
    return out


def opened(archive: Path, tmp_path: Path, key: Key) -> tuple[Manifest, Path]:
    into = tmp_path / "opened"
    into.mkdir(exist_ok=True)
    return open_archive(archive, into, key), into


def test_an_archive_opens_with_its_identity_whole_and_unchanged(tmp_path):
    archive = sealed(tmp_path)
    assert archive.stat().st_mode & 0o777 == 0o600
    assert b"SUAEXAMPLE" not in archive.read_bytes()
    manifest, into = opened(archive, tmp_path, Key(identities=[SECRET]))
    assert (into / "keys" / "nats" / "admin.nk").read_text() == "SUAEXAMPLE\n"
    assert manifest.files == describe(into)
    assert manifest.point_sequence == 12


def test_several_recipients_can_each_open_it(tmp_path):
    other_secret, other_public = new_identity()
    archive = sealed(tmp_path, Key(recipients=[PUBLIC, other_public]))
    manifest, _ = opened(archive, tmp_path, Key(identities=[other_secret]))
    assert manifest.tail_messages == 2


def test_another_identity_cannot_open_it_and_nothing_is_left(tmp_path):
    archive = sealed(tmp_path)
    stranger, _ = new_identity()
    with pytest.raises(Refused, match="cannot decrypt"):
        opened(archive, tmp_path, Key(identities=[stranger]))
    assert list((tmp_path / "opened").iterdir()) == []


def test_a_passphrase_archive_refuses_the_wrong_passphrase(tmp_path):
    archive = sealed(tmp_path, Key(passphrase="correct horse"))
    with pytest.raises(Refused, match="wrong passphrase"):
        opened(archive, tmp_path, Key(passphrase="incorrect horse"))
    manifest, _ = opened(archive, tmp_path, Key(passphrase="correct horse"))
    assert manifest.format == FORMAT


def test_a_damaged_byte_is_refused(tmp_path):
    archive = sealed(tmp_path)
    body = bytearray(archive.read_bytes())
    body[len(body) // 2] ^= 0x01
    archive.write_bytes(bytes(body))
    with pytest.raises(Refused, match="cannot decrypt"):
        opened(archive, tmp_path, Key(identities=[SECRET]))


def resealed(tmp_path: Path, members: dict[str, bytes]) -> Path:
    """An archive with exactly these members, encrypted to the test's recipient: what someone
    holding the public key (not the identity) could make."""
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = tmp_path / "resealed.age"
    out.write_bytes(x25519_encrypt(plain.getvalue()))
    return out


def x25519_encrypt(data: bytes) -> bytes:
    import pyrage

    return bytes(pyrage.encrypt(data, [x25519.Recipient.from_str(PUBLIC)]))


def test_a_file_changed_after_the_manifest_was_written_is_refused(tmp_path):
    folder = a_folder(tmp_path)
    manifest = manifest_of(folder)
    archive = resealed(
        tmp_path,
        {
            MANIFEST: manifest.model_dump_json().encode(),
            "databases/intake.sqlite": b"SQLite format 3\0" + bytes(299) + b"!",
            "keys/nats/admin.nk": b"SUAEXAMPLE\n",
        },
    )
    with pytest.raises(Refused, match=r"differ from its manifest: \['databases/intake.sqlite'\]"):
        opened(archive, tmp_path, Key(identities=[SECRET]))
    assert list((tmp_path / "opened").iterdir()) == []


def test_a_file_the_manifest_does_not_list_is_refused(tmp_path):
    folder = a_folder(tmp_path)
    manifest = manifest_of(folder)
    members = {MANIFEST: manifest.model_dump_json().encode()}
    members |= {name: (folder / name).read_bytes() for name in manifest.files}
    members["keys/nats/intruder.nk"] = b"SUAINTRUDER\n"
    with pytest.raises(Refused, match=r"intruder\.nk"):
        opened(resealed(tmp_path, members), tmp_path, Key(identities=[SECRET]))


def test_an_archive_of_a_newer_format_is_refused_with_the_version_to_use(tmp_path):
    folder = a_folder(tmp_path)
    newer = json.loads(manifest_of(folder).model_dump_json())
    newer |= {"format": FORMAT + 1, "wegweiser_version": "9.0.0", "something_new": True}
    archive = resealed(tmp_path, {MANIFEST: json.dumps(newer).encode()})
    with pytest.raises(Refused, match=r"newer Wegweiser \(9.0.0\)"):
        opened(archive, tmp_path, Key(identities=[SECRET]))


def test_an_archive_without_a_manifest_or_escaping_its_folder_is_refused(tmp_path):
    with pytest.raises(Refused, match="no readable manifest"):
        opened(resealed(tmp_path, {"keys/a": b"x"}), tmp_path, Key(identities=[SECRET]))
    escaping = resealed(tmp_path, {"../outside": b"x", MANIFEST: b"{}"})
    with pytest.raises(Refused, match="damaged"):
        opened(escaping, tmp_path, Key(identities=[SECRET]))
    assert not (tmp_path / "outside").exists()


def test_keys_that_are_not_keys_are_refused(tmp_path):
    with pytest.raises(Refused, match="not an age recipient"):
        Key(recipients=["age1nonsense"])
    with pytest.raises(Refused, match="not an age identity"):
        Key(identities=["AGE-SECRET-KEY-1NONSENSE"])
    with pytest.raises(Refused, match="either a passphrase or age keys"):
        Key(recipients=[PUBLIC], passphrase="both")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(Refused, match="passphrase file is empty"):
        Key.from_files([], None, None, empty)
    folder = a_folder(tmp_path)
    with pytest.raises(Refused, match="no key to encrypt"):
        seal(folder, manifest_of(folder), tmp_path / "x.age", Key())


def test_identity_and_recipient_files_are_read_as_age_writes_them(tmp_path):
    identity = tmp_path / "identity.txt"
    identity.write_text(f"# created: today\n# public key: {PUBLIC}\n{SECRET}\n")
    recipients = tmp_path / "recipients.txt"
    recipients.write_text(f"# the county's backup key\n{PUBLIC}\n\n")
    key = Key.from_files([], recipients, None, None)
    archive = sealed(tmp_path, key)
    manifest, _ = opened(archive, tmp_path, Key.from_files([], None, identity, None))
    assert manifest.stream == "WEGWEISER"

"""The ombudsperson's offline check from files: an export against the pinned key and the head
kept from the last check, which a passing export replaces, and a proof checked over it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.audit import export, offline, proofs
from services.audit.ledger import Ledger, TreeHead, canonical
from services.audit.verification import SeenHead

KEY = Ed25519PrivateKey.generate()


def log_of(size: int) -> Ledger:
    log = Ledger()
    for seq in range(size):
        log.append({"type": "de.wegweiser.referral.accepted.v1", "seq": seq})
    return log


def write_export(path: Path, log: Ledger, key: Ed25519PrivateKey = KEY) -> Path:
    head = TreeHead("wegweiser-audit", log.size, log.root(), "2026-12-01T09:00:00Z").sign(key)
    path.write_text(json.dumps(export.build(log.entries, head, key.public_key())))
    return path


@pytest.fixture
def pinned(tmp_path: Path) -> Path:
    pem = tmp_path / "audit-key.pem"
    pem.write_bytes(KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return pem


def test_a_genuine_export_passes_and_its_head_is_kept_for_the_next_check(
    tmp_path: Path, pinned: Path
) -> None:
    state = tmp_path / "seen.json"
    first = offline.verify(write_export(tmp_path / "first.json", log_of(5)), pinned, state)
    assert first.verdict.ok and first.proof_kind is None
    assert SeenHead(**json.loads(state.read_text())).size == 5
    later = offline.verify(write_export(tmp_path / "later.json", log_of(9)), pinned, state)
    assert later.verdict.ok and "extends the head of 5 entries" in later.verdict.message
    assert SeenHead(**json.loads(state.read_text())).size == 9


def test_a_rolled_back_export_fails_and_leaves_the_kept_head(tmp_path: Path, pinned: Path) -> None:
    state = tmp_path / "seen.json"
    offline.verify(write_export(tmp_path / "first.json", log_of(9)), pinned, state)
    rolled = offline.verify(write_export(tmp_path / "rolled.json", log_of(5)), pinned, state)
    assert not rolled.verdict.ok and rolled.verdict.kind == "rolled-back"
    assert SeenHead(**json.loads(state.read_text())).size == 9


def test_an_export_signed_by_another_key_fails(tmp_path: Path, pinned: Path) -> None:
    forged = write_export(tmp_path / "forged.json", log_of(5), Ed25519PrivateKey.generate())
    assert offline.verify(forged, pinned).verdict.kind == "wrong-key"


def test_an_altered_entry_is_named(tmp_path: Path, pinned: Path) -> None:
    path = write_export(tmp_path / "export.json", log_of(6))
    doc = json.loads(path.read_text())
    doc["entries"][3] = canonical({**json.loads(doc["entries"][3]), "seq": 99}).decode()
    path.write_text(json.dumps(doc))
    verdict = offline.verify(path, pinned).verdict
    assert (verdict.ok, verdict.first_bad, verdict.kind) == (False, 4, "altered")


def test_a_proof_is_checked_over_the_export(tmp_path: Path, pinned: Path) -> None:
    path = write_export(tmp_path / "export.json", log_of(6))
    proof = tmp_path / "proof.json"
    doc = proofs.inclusion(export.load(path), 2)
    proof.write_text(json.dumps(doc))
    assert offline.verify(path, pinned, proof=proof) == offline.Checked(
        offline.verify(path, pinned).verdict, "inclusion", True
    )
    proof.write_text(json.dumps({**doc, "index": 3}))
    assert offline.verify(path, pinned, proof=proof).proof_ok is False


@pytest.mark.parametrize("broken", ["key", "export", "state", "proof"])
def test_an_input_that_is_not_one_is_unreadable(tmp_path: Path, pinned: Path, broken: str) -> None:
    files = {
        "key": pinned,
        "export": write_export(tmp_path / "export.json", log_of(3)),
        "state": tmp_path / "seen.json",
        "proof": tmp_path / "proof.json",
    }
    files["proof"].write_text(json.dumps(proofs.consistency(export.load(files["export"]), 1)))
    files[broken] = tmp_path / "nonsense.txt"
    files[broken].write_text("not what it should be")
    with pytest.raises(offline.Unreadable):
        offline.verify(files["export"], files["key"], files["state"], files["proof"])

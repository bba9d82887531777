"""Proof documents over an export: made from it, kept as JSON, checked against it, and refused
when the entry, the root or the prior root they name is not the log's."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit import export, proofs
from services.audit.export import Export
from services.audit.ledger import Ledger, TreeHead, canonical

KEY = Ed25519PrivateKey.generate()
SIZE = 13


def exported(size: int = SIZE, kind: str = "accepted") -> Export:
    """An export of a log of `size` entries, as the audit service builds and a verifier reads it."""
    log = Ledger()
    for seq in range(size):
        log.append({"type": f"de.wegweiser.referral.{kind}.v1", "seq": seq})
    head = TreeHead("wegweiser-audit", size, log.root(), "2026-12-01T09:00:00Z").sign(KEY)
    return export.parse(export.build(log.entries, head, KEY.public_key()))


def kept(doc: dict[str, Any]) -> dict[str, Any]:
    """A proof document as it comes back from the file it was printed to."""
    return dict(json.loads(json.dumps(doc, indent=1)))


@pytest.mark.parametrize("index", [1, 2, 7, SIZE])
def test_an_inclusion_proof_of_each_entry_checks_against_its_export(index: int) -> None:
    found = exported()
    doc = kept(proofs.inclusion(found, index))
    assert doc["kind"] == "inclusion" and doc["size"] == SIZE
    assert doc["entry"].encode() == found.entries[index - 1]
    assert proofs.check(doc, found)


@pytest.mark.parametrize("index", [1, 7, SIZE])
def test_an_inclusion_proof_of_a_tampered_entry_fails(index: int) -> None:
    found = exported()
    doc = kept(proofs.inclusion(found, index))
    doc["entry"] = canonical({**json.loads(doc["entry"]), "seq": 99}).decode()
    assert not proofs.check(doc, found)


def test_an_inclusion_proof_to_another_root_fails() -> None:
    found = exported()
    doc = kept(proofs.inclusion(found, 3))
    doc["root"] = exported(kind="declined").head.root
    assert not proofs.check(doc, found)


def test_an_inclusion_proof_of_another_log_fails_against_this_export() -> None:
    other = exported(kind="declined")
    assert proofs.check(kept(proofs.inclusion(other, 3)), other)
    assert not proofs.check(kept(proofs.inclusion(other, 3)), exported())


@pytest.mark.parametrize("since", [1, 5, 12, SIZE])
def test_a_consistency_proof_from_an_earlier_size_checks(since: int) -> None:
    found = exported()
    doc = kept(proofs.consistency(found, since))
    assert (doc["kind"], doc["prior_size"], doc["size"]) == ("consistency", since, SIZE)
    assert doc["prior_root"] == Ledger.read(found.entries).root(since)
    assert proofs.check(doc, found)


@pytest.mark.parametrize("since", [1, 5, 12])
def test_a_consistency_proof_from_a_wrong_prior_root_fails(since: int) -> None:
    found = exported()
    doc = kept(proofs.consistency(found, since))
    doc["prior_root"] = Ledger.read(exported(kind="declined").entries).root(since)
    assert not proofs.check(doc, found)


def test_a_consistency_proof_of_another_head_fails_against_this_export() -> None:
    longer = exported(SIZE + 4)
    doc = kept(proofs.consistency(longer, 5))
    assert proofs.check(doc, longer)
    assert not proofs.check(doc, exported())

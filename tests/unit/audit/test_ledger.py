"""The audit ledger: RFC 9162 roots, proofs, and offline detection of any tampering."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree

from services.audit.ledger import Ledger, TreeHead, canonical, check_consistency, check_inclusion
from services.audit.verification import verify_entries

# RFC 6962/9162 reference vectors (as used by certificate-transparency-go and Trillian)
LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
KEY = Ed25519PrivateKey.generate()


def test_the_tree_reproduces_the_rfc_reference_roots():
    tree = InmemoryTree(algorithm="sha256")
    for leaf, root in zip(LEAVES, ROOTS, strict=True):
        tree.append_entry(bytes.fromhex(leaf))
        assert tree.get_root().hex() == root


def test_a_log_read_whole_has_the_rfc_reference_roots_at_every_size():
    read = Ledger.read([bytes.fromhex(leaf) for leaf in LEAVES])
    assert [read.root(size) for size in range(1, len(LEAVES) + 1)] == ROOTS


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=300), st.data())
def test_a_log_read_whole_gives_the_roots_and_proofs_of_the_log_grown_entry_by_entry(n, data):
    grown = ledger(n)
    read = Ledger.read(grown.entries)
    assert read.size == n and read.root() == grown.root()
    if n:
        size = data.draw(st.integers(min_value=1, max_value=n))
        index = data.draw(st.integers(min_value=1, max_value=size))
        assert read.root(size) == grown.root(size)
        assert read.prove_inclusion(index, size) == grown.prove_inclusion(index, size)
        assert read.prove_consistency(index, size) == grown.prove_consistency(index, size)
        assert check_inclusion(read.entries[index - 1], read.prove_inclusion(index, size),
                               read.root(size), index, size)  # fmt: skip


def ledger(n: int) -> Ledger:
    log = Ledger()
    for i in range(n):
        log.append(
            {
                "type": "de.wegweiser.referral.accepted.v1",
                "referral": f"r{i % 7}",
                "agency": "lup-jobcenter",
                "state": "accepted",
                "seq": i,
            }
        )
    return log


def head(log: Ledger, size: int | None = None) -> TreeHead:
    size = log.size if size is None else size
    return TreeHead("wegweiser-audit", size, log.root(size), "2026-11-21T09:00:00Z").sign(KEY)


def test_an_untouched_export_verifies():
    log = ledger(20)
    verdict = verify_entries(log.entries, head(log), KEY.public_key())
    assert verdict.ok and verdict.message == "20 entries verified against the signed head"


def test_a_consistently_rewritten_entry_is_named_itself():
    log = ledger(6)
    entries = list(log.entries)
    forged = json.loads(entries[2])
    forged["state"] = "rejected"  # re-encoded canonically, so it parses and looks well-formed
    entries[2] = canonical(forged)
    verdict = verify_entries(entries, head(log), KEY.public_key())
    # entry 4 committed to the true root: so entry 3, not 4, is the one that does not match
    assert not verdict.ok and verdict.first_bad == 3 and verdict.kind == "altered"


@pytest.mark.parametrize(
    ("tamper", "first_bad"),
    [
        (lambda e: e[:3] + e[4:], 4),  # removed
        (lambda e: [*e[:2], e[3], e[2], *e[4:]], 3),  # swapped
        (lambda e: [*e[:5], e[1], *e[5:]], 6),  # a copy inserted
        (lambda e: e[:-1], 10),  # the last one removed
        (lambda e: [*e, e[0]], 11),  # appended after the head
    ],
    ids=["removed", "swapped", "inserted", "truncated", "appended"],
)
def test_removing_reordering_or_inserting_entries_is_detected(tamper, first_bad):
    log = ledger(10)
    verdict = verify_entries(tamper(list(log.entries)), head(log), KEY.public_key())
    assert not verdict.ok and verdict.first_bad == first_bad, verdict


def test_a_forged_tree_head_is_refused():
    log = ledger(3)
    forged = TreeHead("wegweiser-audit", 3, log.root(), "2026-11-21T09:00:00Z").sign(
        Ed25519PrivateKey.generate()
    )
    assert not verify_entries(log.entries, forged, KEY.public_key()).ok


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.data())
def test_inclusion_and_consistency_proofs_verify_for_many_sizes(size, data):
    log = ledger(size)
    index = data.draw(st.integers(1, size))
    proof = log.prove_inclusion(index)
    assert check_inclusion(log.entries[index - 1], proof, log.root(), index, size)
    other = log.entries[index % size] if size > 1 else b"not in the log"
    assert not check_inclusion(other, proof, log.root(), index, size)  # wrong leaf
    assert not check_inclusion(log.entries[index - 1], proof, log.root(), index, size + 1)
    if size > 1:
        assert not check_inclusion(
            log.entries[index - 1], proof, log.root(), index % size + 1, size
        )  # wrong index
    prior = data.draw(st.integers(1, size))
    consistency = log.prove_consistency(prior)
    assert check_consistency(log.root(prior), prior, log.root(), size, consistency)
    rewritten = Ledger()  # the same history up to prior - 1, then a different entry
    for raw in log.entries[: prior - 1]:
        rewritten.entries.append(raw)
        rewritten.tree.append_entry(raw)
    rewritten.append({"type": "forged"})
    assert not check_consistency(rewritten.root(), prior, log.root(), size, consistency)
    assert not check_consistency(log.root(prior), prior, log.root(), size + 1, consistency)

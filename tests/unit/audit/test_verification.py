"""Verifying the log as an outsider: against the pinned key (and its signed rotations), naming
the exact entry and the kind of change, and against the heads a verifier saw before."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.ledger import Ledger, TreeHead, canonical
from services.audit.verification import (
    Rotation,
    SeenHead,
    check_extends,
    check_key,
    fingerprint,
    key_in_effect,
    verify_entries,
)

KEY = Ed25519PrivateKey.generate()
TIME = "2026-12-01T09:00:00Z"


def ledger(n: int) -> Ledger:
    log = Ledger()
    for i in range(n):
        log.append({"type": "de.wegweiser.referral.accepted.v1", "seq": i})
    return log


def head(log: Ledger, size: int | None = None, key: Ed25519PrivateKey = KEY) -> TreeHead:
    size = log.size if size is None else size
    return TreeHead("wegweiser-audit", size, log.root(size), TIME).sign(key)


def rewritten(entries: list[bytes], position: int, **changes: object) -> list[bytes]:
    """Entries with one entry's fields changed and re-encoded canonically."""
    out = list(entries)
    out[position - 1] = canonical({**json.loads(out[position - 1]), **changes})
    return out


@pytest.mark.parametrize(
    ("tamper", "first_bad", "kind"),
    [
        (lambda e: rewritten(e, 3, seq=99), 3, "altered"),
        (lambda e: rewritten(e, 10, seq=99), 10, "altered"),
        (lambda e: rewritten(e, 5, prev_root="0" * 64), 5, "altered"),
        (lambda e: rewritten(e, 5, index=4), 5, "altered"),
        (lambda e: e[:3] + e[4:], 4, "removed"),
        (lambda e: e[:3] + e[6:], 4, "removed"),
        (lambda e: [*e[:2], e[3], e[2], *e[4:]], 3, "reordered"),
        (lambda e: [*e[:5], e[1], *e[5:]], 6, "inserted"),
        (lambda e: e[:-2], 9, "truncated"),
        (lambda e: [*e, e[0]], 11, "appended"),
    ],
    ids=[
        "altered",
        "last-altered",
        "link-altered",
        "position-altered",
        "removed",
        "three-removed",
        "swapped",
        "inserted",
        "truncated",
        "appended",
    ],
)
def test_verify_names_the_first_entry_that_does_not_match_and_what_was_done(
    tamper, first_bad, kind
):
    log = ledger(10)
    verdict = verify_entries(tamper(list(log.entries)), head(log), KEY.public_key())
    assert (verdict.ok, verdict.first_bad, verdict.kind) == (False, first_bad, kind), verdict
    assert str(first_bad) in verdict.message


def test_a_byte_changed_anywhere_is_named_at_its_own_entry():
    """Every 7th byte of every entry, and each entry's last bytes (the closing of its JSON)."""
    log = ledger(8)
    for index in range(8):
        raw = bytearray(log.entries[index])
        for position in [*range(0, len(raw), 7), len(raw) - 2, len(raw) - 1]:
            entries = list(log.entries)
            changed = bytearray(raw)
            changed[position] ^= 0x01
            entries[index] = bytes(changed)
            verdict = verify_entries(entries, head(log), KEY.public_key())
            assert not verdict.ok and verdict.first_bad == index + 1, (index, position, verdict)


def test_a_log_rebuilt_and_resigned_with_another_key_is_a_forgery():
    log = ledger(6)
    shortened = Ledger()
    for entry in log.entries[:2] + log.entries[3:]:
        shortened.append(
            {k: v for k, v in json.loads(entry).items() if k not in ("index", "prev_root")}
        )
    forger = Ed25519PrivateKey.generate()
    forged_head = head(shortened, key=forger)
    # what the old offline check did: trust the key in the export
    assert verify_entries(shortened.entries, forged_head, forger.public_key()).ok
    key, mismatch = check_key(KEY.public_key(), forger.public_key(), [])
    assert mismatch is not None and mismatch.kind == "wrong-key"
    assert fingerprint(forger.public_key()) in mismatch.message
    assert fingerprint(KEY.public_key()) in mismatch.message
    verdict = verify_entries(shortened.entries, forged_head, key)
    assert not verdict.ok and verdict.kind == "bad-signature"


def test_a_rotation_signed_by_the_old_key_hands_over_and_no_other_does():
    new, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    handover = Rotation.make("wegweiser-audit", KEY, new.public_key(), TIME)
    assert handover.verified_by(KEY.public_key())
    current = key_in_effect(KEY.public_key(), [handover])
    assert fingerprint(current) == fingerprint(new.public_key())
    usurper = Rotation.make("wegweiser-audit", stranger, stranger.public_key(), TIME)
    forged = Rotation(**{**handover.__dict__, "new_key": usurper.new_key})
    for rotations in ([usurper], [forged]):
        assert fingerprint(key_in_effect(KEY.public_key(), rotations)) == fingerprint(
            KEY.public_key()
        )
    # a head signed by the new key verifies once the export carries the handover
    log = ledger(3)
    key, mismatch = check_key(KEY.public_key(), new.public_key(), [handover])
    assert mismatch is None and verify_entries(log.entries, head(log, key=new), key).ok


def test_a_log_that_shrank_since_a_seen_head_was_rolled_back():
    log = ledger(10)
    seen = SeenHead.of(head(log), KEY.public_key())
    shorter = ledger(7)
    verdict = check_extends(seen, head(shorter), shorter.entries)
    assert verdict is not None and verdict.kind == "rolled-back"
    assert "10 were seen" in verdict.message


def test_a_history_rewritten_since_a_seen_head_is_a_fork_even_if_it_grew():
    log = ledger(5)
    seen = SeenHead.of(head(log), KEY.public_key())
    other = Ledger()
    for i in range(8):
        other.append({"type": "de.wegweiser.referral.accepted.v1", "seq": 100 + i})
    verdict = check_extends(seen, head(other), other.entries)
    assert verdict is not None and verdict.kind == "forked"
    same_size = check_extends(seen, head(other, 5), other.entries[:5])
    assert same_size is not None and same_size.kind == "forked"


def test_a_grown_log_extends_the_seen_head_by_entries_or_by_consistency_proof():
    log = ledger(20)
    seen = SeenHead.of(head(log, 12), KEY.public_key())
    assert check_extends(seen, head(log), log.entries) is None
    proof = log.prove_consistency(12)
    assert check_extends(seen, head(log), proof=proof) is None
    wrong = ledger(21).prove_consistency(12)
    other = Ledger()
    for entry in log.entries[:11]:
        other.accept(entry)
    other.append({"type": "forged"})
    assert check_extends(SeenHead.of(head(other), KEY.public_key()), head(log), proof=wrong)

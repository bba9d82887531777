"""The audit ledger at scale: append rate, full offline verification time, inclusion proof
size and verification time, the time to name the entry altered when it is the last (the worst
case: the whole chain is walked), and the consistency proof between two heads far apart (what a
witness checks: from the head of 1,000 entries to the head of all of them).
Run: .venv/bin/python bench/audit.py [--entries 1000000]"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.ledger import Ledger, TreeHead, check_consistency, check_inclusion
from services.audit.verification import verify_entries


def entry(i: int) -> dict[str, object]:
    """A realistic metadata record (about the size the audit service writes)."""
    return {
        "id": f"{i:08d}-6c1f-4c55-9a63-0d1f2e3a4b5c",
        "type": "de.wegweiser.referral.accepted.v1",
        "source": "/wegweiser/referral",
        "subject": f"ref-{i % 50000:06d}",
        "time": "2026-11-21T09:00:00.000000Z",
        "correlationid": f"req-{i % 20000:06d}",
        "causationid": None,
        "nats_subject": "ww.referral.lup-mbe-ludwigslust.accepted",
        "stream_sequence": i,
        "data": {
            "referral_id": f"ref-{i % 50000:06d}",
            "agency_id": "lup-mbe-ludwigslust",
            "status": "accepted",
            "version": 3,
            "reason_given": False,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    n = parser.parse_args().entries
    ledger = Ledger()
    start = time.perf_counter()
    for i in range(n):
        ledger.append(entry(i))
    append_s = time.perf_counter() - start
    key = Ed25519PrivateKey.generate()
    head = TreeHead("bench", ledger.size, ledger.root(), "2026-11-21T09:00:00Z").sign(key)
    start = time.perf_counter()
    verdict = verify_entries(ledger.entries, head, key.public_key())
    verify_s = time.perf_counter() - start
    assert verdict.ok, verdict
    start = time.perf_counter()
    for raw in ledger.entries:  # the floor: each entry hashed once, no tree, no check
        hashlib.sha256(raw).digest()
    raw_hash_s = time.perf_counter() - start
    altered = [*ledger.entries[:-1], ledger.entries[-1].replace(b"accepted", b"rejected", 1)]
    start = time.perf_counter()
    diagnosis = verify_entries(altered, head, key.public_key())
    diagnose_s = time.perf_counter() - start
    assert not diagnosis.ok and diagnosis.first_bad == n, diagnosis
    index = n // 2 + 1
    proof = ledger.prove_inclusion(index)
    start = time.perf_counter()
    for _ in range(100):
        assert check_inclusion(ledger.entries[index - 1], proof, ledger.root(), index, n)
    check_ms = (time.perf_counter() - start) / 100 * 1000
    prior = min(1000, n)
    start = time.perf_counter()
    consistency = ledger.prove_consistency(prior)
    prove_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    for _ in range(100):
        assert check_consistency(ledger.root(prior), prior, ledger.root(), n, consistency)
    consistency_ms = (time.perf_counter() - start) / 100 * 1000
    figures = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "entries": n,
        "mean_entry_bytes": round(sum(map(len, ledger.entries[:1000])) / min(n, 1000)),
        "append_per_s": round(n / append_s),
        "full_verification_s": round(verify_s, 1),
        "raw_sha256_of_entries_s": round(raw_hash_s, 1),
        "naming_the_last_entry_altered_s": round(diagnose_s, 1),
        "inclusion_proof_hashes": len(proof["path"]),
        "inclusion_proof_json_bytes": len(json.dumps(proof)),
        "inclusion_verify_ms": round(check_ms, 3),
        "consistency_from_size": prior,
        "consistency_proof_hashes": len(consistency["path"]),
        "consistency_proof_json_bytes": len(json.dumps(consistency)),
        "consistency_prove_ms": round(prove_ms, 3),
        "consistency_verify_ms": round(consistency_ms, 3),
    }
    print("== audit ledger benchmark ==")
    for name, value in figures.items():
        print(f"{name:<28} {value}")


if __name__ == "__main__":
    main()

"""A self-contained export of the audit log, verifiable offline, and proofs over it.

An export carries the entries its head covers, the signed head, the public key that signed
it and the signed key rotations leading to that key; optionally the RFC 9162 consistency
proof from a size the verifier saw before. A verifier never trusts the key it carries: it
checks against the key it pinned (`verify`).
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.ledger import Ledger, TreeHead
from services.audit.verification import (
    Rotation,
    SeenHead,
    Verdict,
    check_extends,
    check_key,
    raw_key,
    verify_entries,
)

FORMAT = "wegweiser-audit-export/2"
FORMATS = ("wegweiser-audit-export/1", FORMAT)


def head_document(head: TreeHead) -> dict[str, Any]:
    return {
        "log_id": head.log_id,
        "size": head.size,
        "root": head.root,
        "time": head.time,
        "signature": head.signature,
    }


def build(
    entries: list[bytes],
    head: TreeHead,
    public_key: Ed25519PublicKey,
    rotations: list[Rotation] | None = None,
    since: int | None = None,
) -> dict[str, Any]:
    """The export document; with `since`, the consistency proof from that size to the head."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "tree_head": head_document(head),
        "public_key_ed25519": base64.b64encode(raw_key(public_key)).decode(),
        "key_rotations": [asdict(r) for r in rotations or []],
        "entries": [e.decode() for e in entries[: head.size]],
    }
    if since is not None and 0 < since <= head.size:
        ledger = Ledger.read(entries[: head.size])
        doc["consistency"] = {
            "prior_size": since,
            "prior_root": ledger.root(since),
            "proof": ledger.prove_consistency(since),
        }
    return doc


@dataclass(frozen=True)
class Export:
    """An export as read: what it holds and what it claims."""

    entries: list[bytes]
    head: TreeHead
    key: Ed25519PublicKey
    rotations: list[Rotation]
    consistency: dict[str, Any] | None


def load(path: Path) -> Export:
    """Read an export; ValueError if it is not one."""
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path} is not a Wegweiser audit export") from None


def parse(doc: dict[str, Any]) -> Export:
    if doc.get("format") not in FORMATS:
        raise ValueError("not a Wegweiser audit export")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(doc["public_key_ed25519"]))
    return Export(
        [e.encode() for e in doc["entries"]],
        TreeHead(**doc["tree_head"]),
        key,
        [Rotation(**r) for r in doc.get("key_rotations", [])],
        doc.get("consistency"),
    )


def verify(found: Export, pinned: Ed25519PublicKey, seen: SeenHead | None = None) -> Verdict:
    """Check an export against the pinned key and, if given, the head seen before."""
    key, mismatch = check_key(pinned, found.key, found.rotations)
    if mismatch is not None:
        return mismatch
    log = Ledger.read(found.entries)
    verdict = verify_entries(log, found.head, key)
    if not verdict.ok:
        return verdict
    proof = None
    if found.consistency and seen and found.consistency.get("prior_size") == seen.size:
        proof = found.consistency.get("proof")
    history = check_extends(seen, found.head, log, proof)
    if history is not None:
        return history
    extends = f"; it extends the head of {seen.size} entries seen at {seen.time}" if seen else ""
    return Verdict(True, verdict.message + extends)

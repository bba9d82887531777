"""A self-contained export of the audit log, verifiable offline, and proofs over it."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.audit.ledger import Ledger, TreeHead, Verdict, verify_entries


def build(entries: list[bytes], head: TreeHead, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """The export document: the entries the head covers, the signed head, the public key."""
    raw_key = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "format": "wegweiser-audit-export/1",
        "tree_head": {
            "log_id": head.log_id,
            "size": head.size,
            "root": head.root,
            "time": head.time,
            "signature": head.signature,
        },
        "public_key_ed25519": base64.b64encode(raw_key).decode(),
        "entries": [e.decode() for e in entries[: head.size]],
    }


def load(path: Path) -> tuple[list[bytes], TreeHead, Ed25519PublicKey]:
    """Read an export; ValueError if it is not one."""
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except ValueError:
        raise ValueError(f"{path} is not a Wegweiser audit export") from None


def parse(doc: dict[str, Any]) -> tuple[list[bytes], TreeHead, Ed25519PublicKey]:
    """An export document's entries, signed head and the public key it names."""
    if doc.get("format") != "wegweiser-audit-export/1":
        raise ValueError("not a Wegweiser audit export")
    head = TreeHead(**doc["tree_head"])
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(doc["public_key_ed25519"]))
    return [e.encode() for e in doc["entries"]], head, key


def verify(path: Path) -> Verdict:
    entries, head, key = load(path)
    return verify_entries(entries, head, key)


def ledger_of(entries: list[bytes]) -> Ledger:
    ledger = Ledger()
    for entry in entries:
        ledger.accept(entry)
    return ledger

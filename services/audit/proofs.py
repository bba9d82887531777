"""Proof documents over an export, for a third party who holds one entry or an older head.

An inclusion proof shows one entry (1-based `index`) is in the tree the export's head signed;
a consistency proof shows that head's tree extends, append-only, the tree of `prior_size`
entries. Each is a JSON document that names its `kind` and carries what it proves, so that
it can be checked later against the export alone (`check`).
"""

from __future__ import annotations

from typing import Any

from services.audit.export import Export
from services.audit.ledger import Ledger, check_consistency, check_inclusion


def inclusion(found: Export, index: int) -> dict[str, Any]:
    """The proof that entry `index` is in the tree of the export's head."""
    return {
        "kind": "inclusion",
        "index": index,
        "size": found.head.size,
        "root": found.head.root,
        "entry": found.entries[index - 1].decode(),
        "proof": Ledger.read(found.entries).prove_inclusion(index),
    }


def consistency(found: Export, since: int) -> dict[str, Any]:
    """The proof that the export's head extends the log as it was at `since` entries."""
    ledger = Ledger.read(found.entries)
    return {
        "kind": "consistency",
        "prior_size": since,
        "prior_root": ledger.root(since),
        "size": found.head.size,
        "root": found.head.root,
        "proof": ledger.prove_consistency(since),
    }


def check(doc: dict[str, Any], found: Export) -> bool:
    """Whether a proof document holds, and about this export's log: an inclusion proof's
    root must be the export's tree at the proof's size, a consistency proof's its head."""
    if doc["kind"] == "inclusion":
        return check_inclusion(
            doc["entry"].encode(), doc["proof"], doc["root"], doc["index"], doc["size"]
        ) and doc["root"] == Ledger.read(found.entries).root(doc["size"])
    return (
        check_consistency(
            doc["prior_root"], doc["prior_size"], doc["root"], doc["size"], doc["proof"]
        )
        and doc["root"] == found.head.root
    )

"""The audit log as an RFC 9162 Merkle tree (pymerkle) whose every entry also commits to the
tree's root before it, so that a verifier can name the first entry that was altered, removed,
reordered or inserted (see `verification`); tree heads are signed with Ed25519.

Pure: no database, no NATS. Entries are canonical JSON (sorted keys, no spaces, UTF-8;
values are strings, integers, booleans, null or lists of those: no floats, so the encoding
is RFC 8785 canonical for them).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pymerkle import InmemoryTree, InvalidProof, verify_consistency, verify_inclusion
from pymerkle.core import BaseMerkleTree
from pymerkle.proof import ConsistencyProof, InclusionProof

EMPTY_ROOT: str = InmemoryTree(algorithm="sha256").get_root().hex()  # RFC 9162: hash of ""


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The bytes a leaf hashes: sorted keys, no whitespace, UTF-8."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class _LeafDigests(BaseMerkleTree):  # type: ignore[misc]  # pymerkle ships no types
    """pymerkle's RFC 9162 tree over nothing but its leaves' digests, hashed in one pass: what
    a log read whole needs (roots and proofs), without a node object per leaf and per pair."""

    def __init__(self, entries: Sequence[bytes]) -> None:
        super().__init__("sha256")
        sha256 = hashlib.sha256
        self.digests = [sha256(b"\x00" + entry).digest() for entry in entries]

    def _encode_entry(self, data: bytes) -> bytes:
        return data

    def _store_leaf(self, _data: bytes, digest: bytes) -> int:
        self.digests.append(digest)
        return len(self.digests)

    def _get_leaf(self, index: int) -> bytes:
        return self.digests[index - 1]

    def _get_leaves(self, offset: int, width: int) -> list[bytes]:
        return self.digests[offset : offset + width]

    def _get_size(self) -> int:
        return len(self.digests)


class Ledger:
    """An append-only log in memory; the audit service keeps the same entries in its store."""

    def __init__(self) -> None:
        self.tree: BaseMerkleTree = InmemoryTree(algorithm="sha256")
        self.entries: list[bytes] = []

    @classmethod
    def read(cls, entries: Sequence[bytes]) -> Ledger:
        """The ledger of a log read whole (an export to verify or to prove from). It keeps only
        the leaves' digests, hashed in one pass: 1,000,000 entries in about 1.3 s, where
        appending them one by one to a tree of nodes takes ten times as long (bench/audit.py).
        Appending to it works, but each root costs more than on a ledger grown entry by entry."""
        ledger = cls()
        ledger.entries = list(entries)
        ledger.tree = _LeafDigests(ledger.entries)
        return ledger

    @property
    def size(self) -> int:
        return len(self.entries)

    def root(self, size: int | None = None) -> str:
        if (size if size is not None else self.size) == 0:
            return EMPTY_ROOT
        return str(self.tree.get_root(size).hex())

    def next_entry(self, metadata: Mapping[str, Any]) -> bytes:
        """The canonical bytes the next entry would have: it records the root before it."""
        return canonical({**metadata, "index": self.size + 1, "prev_root": self.root()})

    def accept(self, entry: bytes) -> None:
        """Add an entry made by `next_entry` (once it is safely stored)."""
        self.tree.append_entry(entry)
        self.entries.append(entry)

    def truncate(self, size: int) -> None:
        """Forget the entries after `size` (accepted for a transaction that did not commit).
        The tree is built anew from the entries kept: rare, and linear in the log's size."""
        if size < self.size:
            self.entries = self.entries[:size]
            self.tree = InmemoryTree.init_from_entries(self.entries, algorithm="sha256")

    def append(self, metadata: Mapping[str, Any]) -> bytes:
        """Append an entry that records the root before it; returns its canonical bytes."""
        entry = self.next_entry(metadata)
        self.accept(entry)
        return entry

    def prove_inclusion(self, index: int, size: int | None = None) -> dict[str, Any]:
        return dict(self.tree.prove_inclusion(index, size).serialize())

    def prove_consistency(self, prior: int, later: int | None = None) -> dict[str, Any]:
        return dict(self.tree.prove_consistency(prior, later).serialize())


@dataclass(frozen=True)
class TreeHead:
    """A signed statement: the log held `size` entries with this root at `time`."""

    log_id: str
    size: int
    root: str
    time: str
    signature: str = ""

    def signed_bytes(self) -> bytes:
        return canonical(
            {"log_id": self.log_id, "size": self.size, "root": self.root, "time": self.time}
        )

    def sign(self, key: Ed25519PrivateKey) -> TreeHead:
        signature = base64.b64encode(key.sign(self.signed_bytes())).decode()
        return TreeHead(self.log_id, self.size, self.root, self.time, signature)

    def verify(self, key: Ed25519PublicKey) -> bool:
        try:
            key.verify(base64.b64decode(self.signature), self.signed_bytes())
        except (InvalidSignature, ValueError):
            return False
        return True


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256 over 0x00 and the entry."""
    return hashlib.sha256(b"\x00" + entry).digest()


def check_inclusion(entry: bytes, proof: dict[str, Any], root: str, index: int, size: int) -> bool:
    """Does this proof show `entry` at `index` in the tree of `size` entries with this root?"""
    try:
        verify_inclusion(
            leaf_hash(entry),
            bytes.fromhex(root),
            InclusionProof.deserialize(proof),
            index=index,
            size=size,
        )
    except (InvalidProof, KeyError, ValueError):
        return False
    return True


def check_consistency(
    prior_root: str, prior_size: int, later_root: str, later_size: int, proof: dict[str, Any]
) -> bool:
    """Does this proof show the later tree extends the prior one, append-only?"""
    try:
        verify_consistency(
            bytes.fromhex(prior_root),
            bytes.fromhex(later_root),
            ConsistencyProof.deserialize(proof),
            prior_size=prior_size,
            later_size=later_size,
        )
    except (InvalidProof, KeyError, ValueError):
        return False
    return True

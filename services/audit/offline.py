"""The ombudsperson's check of an export on a machine of their own, from files alone.

The export is checked against the key they pinned (a PEM file, never the key the export
carries) and, with a state file, against the head they accepted last; a log that passes
leaves its head, and the key that signed it, in the state file for the next check. A proof
file (`proofs`) is checked over the export only once the export itself has passed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from services.audit import export, keys, proofs
from services.audit.verification import SeenHead, Verdict, key_in_effect
from wegweiser.platform.files import write_private


class Unreadable(Exception):
    """A file the check needs (the key, the export, the state, the proof) is not one."""


@dataclass(frozen=True)
class Checked:
    """What the check found: the export's verdict and, when a proof was given and the export
    passed, the proof's kind and whether it holds."""

    verdict: Verdict
    proof_kind: str | None = None
    proof_ok: bool = False


def verify(
    export_file: Path, key: Path, state: Path | None = None, proof: Path | None = None
) -> Checked:
    """Check an export against the pinned key and the head seen before (kept in `state`,
    made on first use), then the proof if one is given; Unreadable if an input is not."""
    try:
        pinned = keys.read_public(key)
        found = export.load(export_file)
        seen = SeenHead(**json.loads(state.read_text())) if state and state.exists() else None
        claim: dict[str, Any] | None = json.loads(proof.read_text()) if proof else None
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise Unreadable(str(exc)) from None
    verdict = export.verify(found, pinned, seen)
    if not verdict.ok:
        return Checked(verdict)
    if state is not None:
        signer = key_in_effect(pinned, found.rotations)
        write_private(state, json.dumps(asdict(SeenHead.of(found.head, signer)), indent=1))
    if claim is None:
        return Checked(verdict)
    return Checked(verdict, claim["kind"], proofs.check(claim, found))

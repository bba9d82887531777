"""The web app's own check of the audit log: an export verified against the audit key this
installation pinned and against the head this check accepted before."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit import export
from services.audit.keys import read_public
from services.audit.verification import SeenHead
from services.web.clients import Unavailable
from wegweiser.platform.files import write_private


@dataclass(frozen=True)
class Verification:
    """What checking the log from the page found."""

    ok: bool
    message: str
    size: int
    root: str
    signed_at: str
    first_bad: int | None
    key_pinned: bool
    kind: str | None = None


def pinned_key(path: Path) -> Ed25519PublicKey:
    """The audit log's public key as pinned at `path` in the key directory (the web app never
    reads the private half); Unavailable until the audit service has made its key."""
    try:
        return read_public(path)
    except FileNotFoundError:
        raise Unavailable(f"no audit key at {path} yet: start the audit service") from None


class SeenHeads:
    """The head the web app's check accepted last, kept in its own file: a log rolled back or
    rewritten since is caught even if the operator re-signs it (they would need the key too)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def last(self) -> SeenHead | None:
        try:
            return SeenHead(**json.loads(self.path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def keep(self, head: SeenHead) -> None:
        write_private(self.path, json.dumps(asdict(head)))


def check_export(
    doc: dict[str, Any], pinned: Ed25519PublicKey, seen: SeenHead | None = None
) -> Verification:
    """Verify an export against the audit key this installation pinned, not the key the
    export carries (a forger who re-signs the log with their own key is caught too), and
    against the head this check accepted before."""
    found = export.parse(doc)
    verdict = export.verify(found, pinned, seen)
    return Verification(
        ok=verdict.ok,
        message=verdict.message,
        size=found.head.size,
        root=found.head.root,
        signed_at=found.head.time,
        first_bad=verdict.first_bad,
        key_pinned=verdict.kind != "wrong-key",
        kind=verdict.kind,
    )

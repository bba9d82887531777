"""The audit log's signing key in the key folder: made once, rotated with a signed handover."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from services.audit import keys, rotation
from services.audit.verification import fingerprint, key_in_effect
from wegweiser.platform.keys import KeyRing


def test_the_log_key_is_made_once_with_its_public_half_beside_it(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path)
    first = keys.signing(ring)
    assert fingerprint(keys.signing(ring).public_key()) == fingerprint(first.public_key())
    assert fingerprint(rotation.public_key(ring)) == fingerprint(first.public_key())
    assert sorted(p.name for p in keys.folder(ring).iterdir()) == [
        "log-signing.pem",
        "log-signing.pub.pem",
    ]


def test_a_rotation_keeps_the_old_key_and_leads_from_it_to_the_new(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path)
    pinned = keys.signing(ring).public_key()
    handover = rotation.rotate(ring, datetime(2026, 1, 5, tzinfo=UTC))
    new = rotation.public_key(ring)
    assert fingerprint(new) != fingerprint(pinned) == handover.old_fingerprint
    assert fingerprint(keys.signing(ring).public_key()) == fingerprint(new)
    assert keys.retired_path(ring, fingerprint(pinned)).exists()
    assert rotation.rotations(ring) == [handover]
    assert fingerprint(key_in_effect(pinned, rotation.rotations(ring))) == fingerprint(new)

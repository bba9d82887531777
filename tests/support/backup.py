"""An archive's parts for the backup tests: an age key pair, a small folder, its manifest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from wegweiser.backup.archive import Manifest, describe, new_identity

SECRET, PUBLIC = new_identity()


def a_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "made"
    (folder / "databases").mkdir(parents=True)
    (folder / "keys" / "nats").mkdir(parents=True)
    (folder / "databases" / "intake.sqlite").write_bytes(b"SQLite format 3\0" + bytes(300))
    (folder / "keys" / "nats" / "admin.nk").write_text("SUAEXAMPLE\n")
    return folder


def manifest_of(folder: Path, **changes: object) -> Manifest:
    fields: dict[str, object] = {
        "wegweiser_version": "0.1.0",
        "created_at": datetime(2026, 12, 5, 10, tzinfo=UTC),
        "stream": "WEGWEISER",
        "snapshot_sequence": 10,
        "point_sequence": 12,
        "tail_messages": 2,
        "databases": {},
        "files": describe(folder),
    }
    return Manifest.model_validate(fields | changes)

"""`wegweiser backup`: one consistent, encrypted archive of a running installation (the
design: wegweiser/backup/__init__.py)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal, cast

from nats.aio.client import Client
from nats.js import JetStreamContext

from schemas.subjects import STREAM
from wegweiser.backup import databases, jetstream
from wegweiser.backup.archive import DatabaseEntry, Key, Manifest, Refused, describe, seal
from wegweiser.platform.connect import connect
from wegweiser.registry import NAMES
from wegweiser.settings import Settings

HOLD_ATTEMPTS = 200
CLOCK_MARGIN = 5.0
"""Seconds by which the broker's clock may run ahead of the databases' (the outbox's staging
time is compared with the stream's timestamps)."""


def settings_file() -> Path:
    """The settings file this process read (if any): the archive keeps it."""
    return Path(os.environ.get("WEGWEISER_SETTINGS_FILE", "wegweiser.toml"))


@dataclass
class Point:
    """The databases held at one instant, and the stream's last sequence at that instant."""

    holds: dict[str, databases.Hold]
    sequence: int

    def release(self) -> None:
        for held in self.holds.values():
            held.release()


async def hold_everything(settings: Settings, js: JetStreamContext) -> Point:
    """Hold every database at one instant at which the stream stood still: its last sequence
    read before the first hold and after the last agree, so every event was published either
    before every database's instant or after all of them. Tried again while events come in."""
    for attempt in range(HOLD_ATTEMPTS):
        before = await jetstream.last_sequence(js, STREAM)
        holds: dict[str, databases.Hold] = {}
        try:
            for name in NAMES:
                if (held := databases.hold(settings.db_url(name))) is not None:
                    holds[name] = held
            after = await jetstream.last_sequence(js, STREAM)
        except BaseException:
            Point(holds, 0).release()
            raise
        if before == after:
            return Point(holds, after)
        Point(holds, 0).release()
        await asyncio.sleep(0.005 * (attempt % 10))
    raise Refused(
        f"the stream never stood still while the databases were held ({HOLD_ATTEMPTS} tries); "
        "the system is very busy: try again later"
    )


def take(settings: Settings, url: str, out: Path, key: Key) -> Manifest:
    """Write the archive to `out` (never over an existing file), reading the stream at `url`
    as the administrator: the only user the broker lets snapshot it."""
    if out.exists():
        raise Refused(f"{out} exists: a backup never overwrites a file")
    if not key.can_encrypt():
        raise Refused("no key to encrypt with: give --recipient, --recipients-file or a passphrase")
    out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".wegweiser-backup-", dir=out.parent))
    try:
        (work / "stream").mkdir()
        (work / "databases").mkdir()
        manifest = asyncio.run(_gather(settings, url, work))
        seal(work, manifest, out, key)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def _gather(settings: Settings, url: str, work: Path) -> Manifest:
    nc = await connect(url, "wegweiser-backup", settings.nats_seed_path, attempts=5)
    try:
        return await _gather_from(settings, nc, work)
    finally:
        await nc.drain()


async def _gather_from(settings: Settings, nc: Client, work: Path) -> Manifest:
    js = nc.jetstream()
    meta = await jetstream.snapshot(nc, STREAM, work / "stream" / "snapshot.tar.s2")
    snapshot_sequence = int(meta["state"]["last_seq"])
    point = await hold_everything(settings, js)
    try:
        held = {name: databases.outbox(h) for name, h in point.holds.items()}
        revisions = {name: databases.revision(h) for name, h in point.holds.items()}
        kinds = {name: h.kind for name, h in point.holds.items()}
        audit = point.holds.get("audit")
        head = databases.audit_head(audit) if audit is not None else None
        for name, h in point.holds.items():
            h.copy(work / "databases" / name)
    finally:
        point.release()
    messages = await _since(js, snapshot_sequence, point.sequence, held)
    in_stream = set(jetstream.ids_of(messages))
    tail = [m for m in messages if m["seq"] > snapshot_sequence]
    (work / "stream" / "meta.json").write_text(json.dumps(meta, indent=2))
    (work / "stream" / "tail.jsonl").write_text("".join(json.dumps(m) + "\n" for m in tail))
    if settings.keys_path.exists():
        shutil.copytree(settings.keys_path, work / "keys")
    if settings_file().is_file():
        (work / "settings").mkdir()
        shutil.copyfile(settings_file(), work / "settings" / "wegweiser.toml")
    return Manifest(
        wegweiser_version=version("wegweiser"),
        created_at=datetime.now(UTC),
        stream=STREAM,
        snapshot_sequence=snapshot_sequence,
        point_sequence=point.sequence,
        tail_messages=len(tail),
        audit_head=head,
        databases={
            name: DatabaseEntry(
                kind=cast(Literal["sqlite", "postgresql"], kinds[name]),
                revision=revisions[name],
                published=sorted(i for i, _ in held[name] if i in in_stream),
            )
            for name in point.holds
        },
        files=describe(work),
    )


async def _since(
    js: JetStreamContext,
    snapshot_sequence: int,
    point: int,
    held: dict[str, list[tuple[str, datetime]]],
) -> list[dict[str, Any]]:
    """The stream's messages up to the point, from the first after the snapshot or the first
    that an outbox may still have held (published, not yet deleted), whichever is earlier."""
    first = snapshot_sequence + 1
    staged = [when for rows in held.values() for _, when in rows]
    if staged:
        since = min(staged).timestamp() - CLOCK_MARGIN
        first = min(first, await jetstream.first_since(js, STREAM, since))
    return await jetstream.read(js, STREAM, first, point)

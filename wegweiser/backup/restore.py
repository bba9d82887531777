"""`wegweiser restore`: rebuild an installation from an archive, on an empty data directory
(and empty databases, and a broker without the stream). Everything is checked before anything
is written: the target is empty, the archive opens with the key, every file matches the
manifest, and this Wegweiser knows every schema revision the archive's databases are at. If a
later step fails, what the restore wrote is removed again."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from alembic.util import CommandError

from schemas.subjects import STREAM
from wegweiser.backup import databases, jetstream
from wegweiser.backup.archive import Key, Manifest, Refused, open_archive
from wegweiser.platform import migrations
from wegweiser.platform.connect import connect
from wegweiser.registry import NAMES, service
from wegweiser.settings import Settings

RESTORED_SETTINGS = "restored-wegweiser.toml"


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    stream_last_sequence: int
    republished: int
    settings_file: Path | None


def occupied(settings: Settings) -> list[str]:
    """What a restore would overwrite here (empty: nothing)."""
    found = []
    data_dir = settings.data_dir.resolve()
    if data_dir.exists() and any(data_dir.iterdir()):
        found.append(f"{data_dir} is not empty")
    keys = settings.keys_path
    if keys.exists() and any(keys.iterdir()) and not keys.is_relative_to(data_dir):
        found.append(f"{keys} is not empty")
    for name in NAMES:
        url = settings.db_url(name)
        if databases.is_sqlite(url) and databases.sqlite_path(url).is_relative_to(data_dir):
            continue  # said once, with the data directory
        if (reason := databases.occupied(url)) is not None:
            found.append(reason)
    return found


STREAM_FILES = ("stream/meta.json", "stream/snapshot.tar.s2", "stream/tail.jsonl")


def database_file(name: str, kind: str) -> str:
    return f"databases/{name}.{'sqlite' if kind == 'sqlite' else 'pgdump'}"


def complete(manifest: Manifest) -> None:
    """Refused if the archive lacks a file a restore needs."""
    needed = [*STREAM_FILES, *(database_file(n, e.kind) for n, e in manifest.databases.items())]
    if missing := [name for name in needed if name not in manifest.files]:
        raise Refused(f"the archive is incomplete: it lacks {', '.join(missing)}")


def known_revisions(manifest: Manifest) -> None:
    """Refused if a database of the archive is at a schema revision this version lacks."""
    for name, entry in manifest.databases.items():
        if entry.revision is None:
            continue
        scripts = ScriptDirectory.from_config(migrations.config(service(name).revisions))
        try:
            scripts.get_revision(entry.revision)
        except CommandError:
            raise Refused(
                f"the archive's {name} database is at schema revision {entry.revision}, which "
                f"this Wegweiser does not know: it was made by a newer version "
                f"({manifest.wegweiser_version}); restore with that version or newer"
            ) from None


def restore(settings: Settings, archive: Path, key: Key) -> Restored:
    """Rebuild this installation from `archive`; Refused, with nothing changed, if it cannot."""
    if not archive.is_file():
        raise Refused(f"no archive at {archive}")
    if reasons := occupied(settings):
        raise Refused("a restore only fills an empty installation: " + "; ".join(reasons))
    data_dir = settings.data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".wegweiser-restore-", dir=data_dir.parent))
    made: list[Path] = []
    try:
        manifest = open_archive(archive, work, key)
        known_revisions(manifest)
        complete(manifest)
        fresh = not data_dir.exists()
        try:
            return _put_back(settings, manifest, work, made)
        except BaseException:
            _undo(data_dir, fresh, made)
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _put_back(settings: Settings, manifest: Manifest, work: Path, made: list[Path]) -> Restored:
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if (work / "keys").is_dir():
        if not settings.keys_path.is_relative_to(data_dir):
            made.append(settings.keys_path)
        shutil.copytree(work / "keys", settings.keys_path, dirs_exist_ok=True)
    for name, entry in manifest.databases.items():
        copy = work / database_file(name, entry.kind)
        databases.put_back(copy, settings.db_url(name), entry.published)
    settings_file = None
    if (work / "settings" / "wegweiser.toml").is_file():
        settings_file = data_dir / RESTORED_SETTINGS
        shutil.copyfile(work / "settings" / "wegweiser.toml", settings_file)
    meta = json.loads((work / "stream" / "meta.json").read_text())
    tail = [json.loads(line) for line in (work / "stream" / "tail.jsonl").read_text().splitlines()]
    snapshot = work / "stream" / "snapshot.tar.s2"
    stored, republished = asyncio.run(_stream(settings, meta, snapshot, tail))
    return Restored(manifest, stored, republished, settings_file)


def _undo(data_dir: Path, fresh: bool, made: list[Path]) -> None:
    """Remove what a failed restore wrote: the data directory (or, if it existed empty, what
    is in it) and keys kept elsewhere. PostgreSQL databases it filled are left as they are."""
    for path in made:
        shutil.rmtree(path, ignore_errors=True)
    if fresh:
        shutil.rmtree(data_dir, ignore_errors=True)
    elif data_dir.exists():
        for child in data_dir.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()


async def _stream(
    settings: Settings, meta: dict[str, Any], snapshot: Path, tail: list[dict[str, Any]]
) -> tuple[int, int]:
    """Restore the stream onto the broker the settings name, or onto the embedded one (started
    here for the purpose, with the restored keys and accounts, and stopped again)."""
    from wegweiser import provisioning
    from wegweiser.supervisor import embedded_broker

    broker = embedded_broker(settings)
    if broker is not None:
        broker.authorization = provisioning.accounts(settings)
        broker.start()
    try:
        url = broker.url if broker is not None else str(settings.nats_url)
        nc = await connect(url, "wegweiser-restore", settings.nats_seed_path, attempts=5)
        try:
            js = nc.jetstream()
            if STREAM in {s.config.name for s in await js.streams_info()}:
                raise Refused(
                    f"the broker already has the stream {STREAM}: restore only onto one without it"
                )
            state = await jetstream.restore(nc, meta, snapshot, settings.stream_replicas or 1)
            restored_to = int(state.get("last_seq", 0))
            republished = await jetstream.republish(js, [m for m in tail if m["seq"] > restored_to])
            return await jetstream.last_sequence(js, STREAM), republished
        finally:
            await nc.drain()
    finally:
        if broker is not None:
            broker.stop()

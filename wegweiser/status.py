"""`wegweiser status`: each service, the stream, the consumers and the dead letters."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import httpx
import nats
import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from schemas import subjects
from wegweiser import provisioning
from wegweiser.platform import outbox
from wegweiser.platform.connect import credentials
from wegweiser.platform.nats_server import servers
from wegweiser.settings import Settings
from wegweiser.supervisor import runtime_info

FULL = 0.9
"""Share of the stream's byte limit from which status reports it nearly full."""
STUCK_AFTER = 30.0
"""Seconds an event may wait in an outbox before status reports the outbox not draining."""


def _alive(pid: object) -> bool:
    try:
        os.kill(int(pid), 0)  # type: ignore[call-overload]
    except (OSError, TypeError, ValueError):
        return False
    return True


async def _quiet(_exc: Exception) -> None:
    """A failed try is what status reports, once, not a traceback per try."""


async def status(settings: Settings) -> tuple[bool, list[str]]:
    """Lines to print, and whether everything is healthy."""
    info = runtime_info(settings.data_dir)
    ok, lines = True, []
    for name, pid in dict(info.get("services", {})).items():  # type: ignore[call-overload]
        up = _alive(pid)
        ok &= up
        lines.append(f"service {name:<10} {'up' if up else 'DOWN'}  pid {pid}")
    if not info:
        lines.append(f"no `wegweiser up` found for data dir {settings.data_dir}")
    intake = str(info.get("intake_url") or settings.intake_url)
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            health = (await http.get(f"{intake}/health")).status_code == 200
    except httpx.HTTPError:
        health = False
    ok &= health
    lines.append(f"intake HTTP {intake} {'ok' if health else 'NOT ANSWERING'}")
    url = str(info.get("nats_url") or settings.nats_url or "")
    try:
        nc = await nats.connect(
            servers(url),
            connect_timeout=2,
            max_reconnect_attempts=1,  # 0 would mean "forever" to nats-py
            reconnect_time_wait=0.2,
            error_cb=_quiet,
            **credentials(settings.nats_seed_path),
        )
    except Exception as exc:  # noqa: BLE001 - any failure is what status reports
        return False, [*lines, f"NATS {url} UNREACHABLE: {exc!r}"]
    try:
        ok &= await _broker(nc.jetstream(timeout=3), settings, lines)
    finally:
        await nc.close()
    ok &= _outboxes(settings, lines)
    return ok, lines


async def _broker(js: JetStreamContext, settings: Settings, lines: list[str]) -> bool:
    """The stream (missing, full) and every declared consumer (missing)."""
    try:
        stream = await js.stream_info(subjects.STREAM, subjects_filter="ww.deadletter.>")
    except NotFoundError:
        lines.append(f"stream {subjects.STREAM} MISSING: nothing can be published or delivered")
        return False
    except nats.errors.Error as exc:
        lines.append(f"stream {subjects.STREAM} unavailable: {exc!r}")
        return False
    ok = True
    dead = sum((stream.state.subjects or {}).values())
    limit = stream.config.max_bytes or 0
    used = f", {stream.state.bytes / limit:.0%} of its {limit} byte limit" if limit > 0 else ""
    lines.append(
        f"stream {subjects.STREAM}: {stream.state.messages} messages, "
        f"{stream.state.bytes} bytes{used}, {stream.state.consumer_count} consumers, "
        f"{dead} dead letters"
    )
    if limit > 0 and stream.state.bytes >= FULL * limit:
        ok = False
        lines.append(
            f"  stream NEARLY FULL: at its limit it refuses new events (discard "
            f"{stream.config.discard}); the outboxes keep them until there is room"
        )
    found = {c.name: c for c in await js.consumers_info(subjects.STREAM)}
    for name, consumer in sorted(found.items()):
        lines.append(
            f"  consumer {name:<28} pending {consumer.num_pending:>6}  "
            f"unacked {consumer.num_ack_pending:>5}  redelivered {consumer.num_redelivered}"
        )
    declared = provisioning.declared_consumers(provisioning.known_agencies(settings))
    for spec in declared:
        if spec.durable not in found:
            ok = False
            lines.append(f"  consumer {spec.durable:<28} MISSING (the broker watch recreates it)")
    return ok


def _outboxes(settings: Settings, lines: list[str]) -> bool:
    """Events each service has staged but not yet published (a growing number: the stream
    refuses them, or the service cannot reach it)."""
    from wegweiser import registry

    ok = True
    for name in registry.ON_THE_BROKER:
        url = settings.db_url(name)
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
            continue
        database = registry.service(name).database(settings)
        try:
            waiting, oldest = database.run_sync(outbox.backlog)
        except Exception as exc:  # noqa: BLE001 - a store status cannot read is what it reports
            lines.append(f"outbox {name:<10} unreadable: {exc!r}")
            ok = False
            continue
        finally:
            database.dispose()
        if waiting and oldest is not None:
            age = (datetime.now(UTC) - oldest).total_seconds()
            stuck = age > STUCK_AFTER
            ok &= not stuck
            state = "NOT DRAINING" if stuck else "draining"
            lines.append(f"outbox {name:<10} {waiting} events waiting, oldest {age:.0f} s: {state}")
    return ok

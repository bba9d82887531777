"""`wegweiser status`: each service, the stream, the consumers and the dead letters."""

from __future__ import annotations

import os

import httpx
import nats
import nats.errors

from schemas import subjects
from wegweiser.platform.connect import credentials
from wegweiser.platform.nats_server import servers
from wegweiser.settings import Settings
from wegweiser.supervisor import runtime_info


def _alive(pid: object) -> bool:
    try:
        os.kill(int(pid), 0)  # type: ignore[call-overload]
    except (OSError, TypeError, ValueError):
        return False
    return True


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
            max_reconnect_attempts=0,
            **credentials(settings.nats_seed_path),
        )
    except Exception as exc:  # noqa: BLE001 - any failure is what status reports
        return False, [*lines, f"NATS {url} UNREACHABLE: {exc!r}"]
    try:
        js = nc.jetstream()
        stream = await js.stream_info(subjects.STREAM, subjects_filter="ww.deadletter.>")
        dead = sum((stream.state.subjects or {}).values())
        lines.append(
            f"stream {subjects.STREAM}: {stream.state.messages} messages, "
            f"{stream.state.bytes} bytes, {stream.state.consumer_count} consumers, "
            f"{dead} dead letters"
        )
        for consumer in await js.consumers_info(subjects.STREAM):
            lines.append(
                f"  consumer {consumer.name:<28} pending {consumer.num_pending:>6}  "
                f"unacked {consumer.num_ack_pending:>5}  redelivered {consumer.num_redelivered}"
            )
    except nats.errors.Error as exc:
        ok = False
        lines.append(f"stream {subjects.STREAM} unavailable: {exc!r}")
    finally:
        await nc.close()
    return ok, lines

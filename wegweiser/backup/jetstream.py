"""The stream's part of a backup: JetStream's own snapshot and restore API, and the tail.

The snapshot API (`$JS.API.STREAM.SNAPSHOT.<stream>`) streams the stream's store and its
consumers' state as chunks to an inbox, each to be acknowledged (flow control), and ends with
an empty message (status 204, or an error status). Restore (`$JS.API.STREAM.RESTORE.<stream>`)
answers with a subject to send the chunks to, each as a request, then an empty request. This
is what the `nats` CLI's `stream backup` and `restore` do (nats-io/jsm.go, snapshots.go);
nats-py has no client for it. Only the administrator may call either.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from wegweiser.backup.archive import Refused

CHUNK = 128 * 1024
SEND_CHUNK = 64 * 1024


async def _api(nc: Client, subject: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    reply = json.loads((await nc.request(subject, json.dumps(body).encode(), timeout)).data)
    if isinstance(reply, dict) and reply.get("error"):
        error = reply["error"]
        raise Refused(f"the broker refused {subject}: {error.get('description', error)}")
    return dict(reply)


async def snapshot(nc: Client, stream: str, out: Path, timeout: float = 30.0) -> dict[str, Any]:
    """Write the stream's snapshot (with its consumers) to `out`; its config and state."""
    inbox = nc.new_inbox()
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with out.open("wb") as data:

        async def chunk(msg: Msg) -> None:
            if not msg.data:
                status = (msg.headers or {}).get("Status", "")
                if status and "204" not in status and not finished.done():
                    reason = (msg.headers or {}).get("Description", "")
                    finished.set_exception(Refused(f"the snapshot failed: {status} {reason}"))
                elif not finished.done():
                    finished.set_result(None)
                return
            data.write(msg.data)
            if msg.reply:
                await nc.publish(msg.reply, b"")

        sub = await nc.subscribe(inbox, cb=chunk)
        try:
            meta = await _api(
                nc,
                f"$JS.API.STREAM.SNAPSHOT.{stream}",
                {"deliver_subject": inbox, "no_consumers": False, "chunk_size": CHUNK},
                timeout,
            )
            await asyncio.wait_for(finished, timeout=None)
        finally:
            await sub.unsubscribe()
    return {"config": meta["config"], "state": meta["state"]}


async def restore(
    nc: Client, meta: dict[str, Any], data: Path, replicas: int, timeout: float = 30.0
) -> dict[str, Any]:
    """Rebuild the stream (with its consumers) from a snapshot; the new stream's state.
    `replicas`: as many copies as the broker it is restored to keeps (a backup of a cluster
    restores onto one server, and the other way round)."""
    config = {**meta["config"], "num_replicas": replicas}
    answer = await _api(
        nc,
        f"$JS.API.STREAM.RESTORE.{config['name']}",
        {"config": config, "state": meta["state"]},
        timeout,
    )
    deliver = answer["deliver_subject"]
    with data.open("rb") as chunks:
        for piece in iter(lambda: chunks.read(SEND_CHUNK), b""):
            reply = await nc.request(deliver, piece, timeout)
            if reply.data:
                raise Refused(f"the broker refused a chunk of the snapshot: {reply.data[:200]!r}")
    done = json.loads((await nc.request(deliver, b"", timeout=600)).data)
    if done.get("error"):
        raise Refused(f"the broker could not restore the stream: {done['error']}")
    return dict(done.get("state", {}))


async def last_sequence(js: JetStreamContext, stream: str) -> int:
    return int((await js.stream_info(stream)).state.last_seq)


async def read(js: JetStreamContext, stream: str, first: int, last: int) -> list[dict[str, Any]]:
    """The messages with sequence first..last (those deleted are skipped), as JSON-ready
    records: sequence, subject, headers, data (base64)."""
    found = []
    seq = first
    while seq <= last:
        try:
            msg = await js.get_msg(stream, seq=seq, subject=">", next=True)
        except NotFoundError:
            break
        if msg.seq is None or msg.seq > last:
            break
        found.append(
            {
                "seq": msg.seq,
                "subject": msg.subject,
                "headers": dict(msg.headers or {}),
                "data": base64.b64encode(msg.data or b"").decode(),
            }
        )
        seq = msg.seq + 1
    return found


def ids_of(messages: list[dict[str, Any]]) -> Iterator[str]:
    """The message ids (`Nats-Msg-Id`, the event's id) of these messages."""
    for message in messages:
        if event_id := message["headers"].get("Nats-Msg-Id"):
            yield event_id


async def first_since(js: JetStreamContext, stream: str, since: float) -> int:
    """The first sequence of a message stored at or after `since` (epoch seconds): a binary
    search over the stream, whose timestamps grow with its sequence."""
    info = (await js.stream_info(stream)).state
    low, high = int(info.first_seq), int(info.last_seq) + 1
    while low < high:
        middle = (low + high) // 2
        try:
            msg = await js.get_msg(stream, seq=middle, subject=">", next=True)
        except NotFoundError:
            high = middle
            continue
        if seconds_of(msg.time) >= since:
            high = middle
        else:
            low = int(msg.seq or middle) + 1
    return low


def seconds_of(stamp: Any) -> float:
    """A stored message's time (nats-py gives it as text or as a datetime) in epoch seconds."""
    if isinstance(stamp, datetime):
        return stamp.timestamp()
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


async def republish(js: JetStreamContext, messages: list[dict[str, Any]]) -> int:
    """Publish the tail again, in order, under its message ids; how many were stored."""
    stored = 0
    for message in messages:
        ack = await js.publish(
            message["subject"], base64.b64decode(message["data"]), headers=message["headers"]
        )
        stored += 0 if ack.duplicate else 1
    return stored

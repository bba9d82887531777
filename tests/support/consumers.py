"""Reading a consumer by hand in a test: one pull of an owned consumer, one message through a
service's consumer edge (the services read with `wegweiser.platform.pull.Pull`), and every
message the stream holds on a subject."""

from __future__ import annotations

import json
import time
from typing import TypeVar

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import Header

from schemas import subjects
from schemas.envelope import Payload
from wegweiser.platform.consumer import ConsumerEdge, Handler, Route, at_work, routed
from wegweiser.platform.topology import OWNER_GROUP

P = TypeVar("P", bound=Payload)


async def handle_one(
    edge: ConsumerEdge, msg: Msg, consumer: str, contract: type[P], handler: Handler[P]
) -> None:
    """Process one message on its own through the edge, reporting it in progress meanwhile,
    as a service's pull loop hands it a batch of one: it is acked or dead-lettered."""
    async with at_work(msg, edge.heartbeat):
        await edge.handle_batch(consumer, [routed(msg, [Route(">", contract, handler)])])


async def fetch(
    nc: Client, durable: str, batch: int = 1, timeout: float = 2.0, prefix: str = "$JS.API"
) -> list[Msg]:
    """Up to `batch` messages of an owned consumer, in one pull of its owner group, as a
    test takes them (a service reads with `pull.Pull`). The server pins this pull's client
    if no one owns the consumer; else it gives nothing and the pull expires."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    request = {"batch": batch, "expires": int(timeout * 1e9), "group": OWNER_GROUP}
    msgs: list[Msg] = []
    try:
        subject = f"{prefix}.CONSUMER.MSG.NEXT.{subjects.STREAM}.{durable}"
        await nc.publish(subject, json.dumps(request).encode(), reply=inbox)
        deadline = time.monotonic() + timeout + 0.5
        while len(msgs) < batch and (left := deadline - time.monotonic()) > 0:
            try:
                msg = await sub.next_msg(timeout=left)
            except nats.errors.TimeoutError:
                break
            status = msg.headers.get(Header.STATUS) if msg.headers else None
            if status is None:
                msgs.append(msg)
            elif status != "100":
                break
    finally:
        await sub.unsubscribe()
    return msgs


async def stored_messages(
    js: JetStreamContext, subject: str, idle: float = 0.5, within: float = 30.0
) -> list[Msg]:
    """Every message the stream holds on `subject`, in stream order, read through an ordered
    consumer: all those it held when the consumer was made, however long a busy machine takes
    to deliver them (each within `within` seconds, else the test fails), then any that follow
    less than `idle` seconds apart."""
    sub = await js.subscribe(subject, ordered_consumer=True)
    try:
        info = await sub.consumer_info()
        held = (info.num_pending or 0) + (info.delivered.consumer_seq if info.delivered else 0)
        out: list[Msg] = []
        while True:
            try:
                out.append(await sub.next_msg(timeout=within if len(out) < held else idle))
            except nats.errors.TimeoutError:
                if len(out) < held:
                    raise AssertionError(
                        f"{subject}: {len(out)} of {held} stored messages came within {within} s"
                    ) from None
                return out
    finally:
        await sub.unsubscribe()

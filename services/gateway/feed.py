"""One agency's referral events, read from its own durable consumer, one at a time, in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from schemas import subjects
from wegweiser.platform import topology
from wegweiser.platform.consumer import ConsumerEdge, event_id_of
from wegweiser.platform.pull import one_at_a_time
from wegweiser.platform.tracing import carried_by

log = structlog.get_logger()

Handle = Callable[[Msg], Awaitable[str | None]]
"""Hand one event on; None when done, or the reason to give up on it (it is dead-lettered)."""


class Feed:
    """Runs `handle` on each of the agency's events; a handler that raises gets the event again
    after `retry_delay` seconds, until max_deliver, then it is dead-lettered."""

    def __init__(
        self,
        js: JetStreamContext,
        agency_id: str,
        handle: Handle,
        edge: ConsumerEdge,
        retry_delay: float = 5.0,
        provision: bool = True,
    ) -> None:
        self.js, self.agency_id, self.handle, self.edge = js, agency_id, handle, edge
        self.spec = topology.agency_consumer(agency_id)
        self.retry_delay = retry_delay
        self.provision = provision
        """Create the agency's consumer (a broker without accounts), else wait for it."""

    async def run(self) -> None:
        await topology.require(self.js, [self.spec], self.edge.max_deliver, self.provision)
        sub = await self.js.pull_subscribe_bind(self.spec.durable, subjects.STREAM)
        try:
            async for msg in one_at_a_time(sub, self.spec.durable):
                await self.one(msg)
        finally:
            # a pull subscription left behind holds the connection's drain at shutdown
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def one(self, msg: Msg) -> None:
        event_id = event_id_of(msg.data)
        structlog.contextvars.bind_contextvars(agency=self.agency_id, event_id=event_id)
        try:
            # the delivery to the agency (webhook, e-mail), in the trace of the event
            with self.edge.tracing.consuming(
                msg.subject, self.spec.durable, lambda: carried_by(msg.data)
            ):
                reason = await self.handle(msg)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("gateway.handler_failed", subject=msg.subject)
            if msg.metadata.num_delivered >= self.edge.max_deliver:
                await self.edge.dead_letter(
                    msg,
                    self.spec.durable,
                    f"gave up after {msg.metadata.num_delivered} "
                    f"attempts: {exc.__class__.__name__}: {exc}",
                    event_id,
                )
            else:
                await msg.nak(delay=self.retry_delay)
            return
        if reason is None:
            await msg.ack()
        else:
            await self.edge.dead_letter(msg, self.spec.durable, reason, event_id)

"""One agency's referral events, read from its own durable consumer, one at a time, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import aclosing

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg

from wegweiser.platform import topology
from wegweiser.platform.consumer import ConsumerEdge, at_work, event_id_of
from wegweiser.platform.grants import JS_API_PREFIX
from wegweiser.platform.pull import Pull
from wegweiser.platform.tracing import carried_by

log = structlog.get_logger()

Handle = Callable[[Msg], Awaitable[str | None]]
"""Hand one event on; None when done, or the reason to give up on it (it is dead-lettered)."""


class Feed:
    """Runs `handle` on each of the agency's events, in order, one at a time (see `one`)."""

    def __init__(
        self,
        nc: Client,
        agency_id: str,
        handle: Handle,
        edge: ConsumerEdge,
        provision: bool = True,
    ) -> None:
        self.nc, self.agency_id, self.handle, self.edge = nc, agency_id, handle, edge
        self.spec = topology.agency_consumer(agency_id)
        self.retry = topology.retry("handler")
        self.provision = provision
        """Create the agency's consumer (a broker without accounts), else wait for it; with
        accounts the gateway reaches JetStream through its account's imports."""
        self.prefix = "$JS.API" if provision else JS_API_PREFIX
        self.js = nc.jetstream(prefix=self.prefix)

    async def run(self) -> None:
        await topology.require(self.js, [self.spec], self.edge.max_deliver, self.provision)
        pull = Pull(self.nc, self.js, self.spec.durable, owned=False, prefix=self.prefix)
        async with aclosing(pull.messages()) as messages:
            async for msg in messages:
                await self.one(msg)

    async def one(self, msg: Msg) -> None:
        """Hand one event on, reported in progress meanwhile. A handler that raises is tried
        again in place (`retry`, the handlers' figures), a delivery that a crash cut short
        counted as an attempt; after max_deliver attempts the event is dead-lettered."""
        event_id = event_id_of(msg.data)
        structlog.contextvars.bind_contextvars(agency=self.agency_id, event_id=event_id)
        attempt = msg.metadata.num_delivered
        async with at_work(msg, self.spec.ack_wait / 4):
            while True:
                try:
                    # the delivery to the agency (webhook, e-mail), in the trace of the event
                    with self.edge.tracing.consuming(
                        msg.subject, self.spec.durable, lambda: carried_by(msg.data)
                    ):
                        reason = await self.handle(msg)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.exception("gateway.handler_failed", subject=msg.subject, attempt=attempt)
                    if attempt >= self.edge.max_deliver:
                        failure = (
                            f"gave up after {attempt} attempts: {exc.__class__.__name__}: {exc}"
                        )
                        await self.edge.dead_letter(
                            msg, self.spec.durable, failure, event_id, attempt
                        )
                        return
                    await asyncio.sleep(self.retry.pause(attempt))
                    attempt += 1
            if reason is None:
                await msg.ack()
            else:
                await self.edge.dead_letter(msg, self.spec.durable, reason, event_id)

"""One agency's referral events, read from its own durable consumer, one at a time, in order."""

from __future__ import annotations

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
        again in place as a service's is (`ConsumerEdge.attempt`); the deliveries that a crash
        cut short count as attempts, since the server drops an event past its max_deliver."""
        event_id = event_id_of(msg.data)
        structlog.contextvars.bind_contextvars(agency=self.agency_id, event_id=event_id)

        async def once() -> str | None:
            # the delivery to the agency (webhook, e-mail), in the trace of the event
            with self.edge.tracing.consuming(
                msg.subject, self.spec.durable, lambda: carried_by(msg.data)
            ):
                return await self.handle(msg)

        tried = msg.metadata.num_delivered - 1
        async with at_work(msg, self.spec.ack_wait / 4):
            done, reason = await self.edge.attempt(msg, self.spec.durable, event_id, once, tried)
            if not done:
                return  # dead-lettered
            if reason is None:
                await msg.ack()
            else:
                await self.edge.dead_letter(msg, self.spec.durable, reason, event_id)

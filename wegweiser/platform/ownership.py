"""A service's consumers, owned: batches in stream order, one owner at a time, by partition.

`own` runs every partition of a service consumer (infra/jetstream.toml) through the one pull
loop (`pull.Pull`, owned: the rules that keep stream order across instances and crashes are
there) and spreads the partitions over the service's instances. See infra/CLUSTER.md, "Order
and ownership".
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from contextlib import aclosing
from functools import partial

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from wegweiser.platform.consumer import ConsumerEdge, Work, key_of
from wegweiser.platform.pull import Pull
from wegweiser.platform.topology import ConsumerSpec

log = structlog.get_logger()


async def own(
    nc: Client,
    js: JetStreamContext,
    edge: ConsumerEdge,
    specs: list[ConsumerSpec],
    work: Callable[[Msg], Work],
    committed: Callable[[], None] = lambda: None,
    instance: tuple[int, int] = (1, 1),
    prefix: str = "$JS.API",
) -> None:
    """Run every partition of one service consumer for as long as the caller waits. This
    instance pulls each; the server pins one instance per partition. `instance` is (which,
    of how many): an instance prefers the partitions p with p mod count = which - 1 and
    stands back from the others once it owns more than its share and another instance
    waits, so that the partitions spread over the instances and move back after a restart.

    Each partition handles the messages whose key is its own (`ConsumerSpec.handles`) in
    batches, through `edge`; the others it acknowledges as they arrive, unhandled."""
    which, count = instance
    share = math.ceil(len(specs) / count)
    pulls: list[Pull] = []

    def crowded() -> bool:
        return sum(p.owning for p in pulls) > share

    pulls += [
        Pull(
            nc,
            js,
            spec.durable,
            batch=spec.batch,
            room=spec.max_ack_pending,
            heartbeat=edge.heartbeat,
            prefix=prefix,
            stand_back=None if spec.partition % count == (which - 1) % count else crowded,
            rest=2 * (spec.owner_timeout or 1.0),
            elsewhere=None if spec.partitions == 1 else partial(_elsewhere, spec),
        )
        for spec in specs
    ]

    async def partition(spec: ConsumerSpec, pull: Pull) -> None:
        async with aclosing(pull.batches()) as batches:
            async for msgs in batches:
                await handle(spec, pull, msgs)

    async def handle(spec: ConsumerSpec, pull: Pull, msgs: list[Msg]) -> None:
        await edge.handle_batch(spec.group, [work(m) for m in msgs], committed)
        pull.done(msgs)

    async with asyncio.TaskGroup() as group:  # one partition failing stops them all
        for spec, pull in zip(specs, pulls, strict=True):
            group.create_task(partition(spec, pull))


def _elsewhere(spec: ConsumerSpec, data: bytes) -> bool:
    """Whether a message of this partition's consumer has a key another partition handles."""
    return not spec.handles(key_of(data))

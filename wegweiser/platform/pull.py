"""The agency's pull loop: its consumer's messages one at a time, for as long as it reads.

(A service's consumers are read by `ownership`, in batches, one owner at a time.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext

log = structlog.get_logger()


async def one_at_a_time(sub: JetStreamContext.PullSubscription, durable: str) -> AsyncIterator[Msg]:
    """Each message of a bound pull subscription, in the consumer's order, forever (an
    agency's consumer, which hands out one message at a time).

    An empty fetch is normal. A consumer or stream that is gone for a moment (the network's
    provisioning recreates it, see `healer`) or a connection that is reconnecting is waited
    out with growing pauses; the consumer then goes on from its acknowledged position, so
    nothing acknowledged comes again and nothing unacknowledged is skipped.
    """
    pause = 0.5
    while True:
        stop_if_cancelled()
        try:
            msgs = await sub.fetch(1, timeout=1.0)
        except (nats.errors.TimeoutError, TimeoutError):  # nats-py raises either
            continue
        except nats.errors.Error as exc:
            log.warning("consumer.unavailable", durable=durable, error=repr(exc), retry_in=pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 10.0)
            continue
        pause = 0.5
        for msg in msgs:
            yield msg


def stop_if_cancelled() -> None:
    """End the loop if its task was cancelled: on Python 3.11 a cancellation that meets a
    fetch's timeout can be swallowed (asyncio.wait_for, fixed in 3.12), and this loop would
    then hold its service's shutdown forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError

"""Connecting to NATS the same way in every process."""

from __future__ import annotations

import nats
import structlog
from nats.aio.client import Client

log = structlog.get_logger()


async def connect(url: str, name: str) -> Client:
    """A connection that reconnects forever and logs why it dropped."""

    async def disconnected() -> None:
        log.warning("nats.disconnected")

    async def reconnected() -> None:
        log.info("nats.reconnected")

    async def error(exc: Exception) -> None:
        log.warning("nats.error", error=repr(exc))

    return await nats.connect(
        url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
    )

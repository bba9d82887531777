"""Connecting to NATS the same way in every process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nats
import structlog
from nats.aio.client import Client

from wegweiser.platform.nats_server import servers

log = structlog.get_logger()


class NotAuthorized(Exception):
    """The server refused the credentials (or their absence); retrying will not help."""


def credentials(seed: Path | None, inbox_prefix: str | None = None) -> dict[str, Any]:
    """Connection options for an nkey user (none when `seed` is None)."""
    options: dict[str, Any] = {}
    if seed is not None:
        options["nkeys_seed"] = str(seed)
    if inbox_prefix is not None:
        options["inbox_prefix"] = inbox_prefix
    return options


async def connect(
    url: str, name: str, seed: Path | None = None, inbox_prefix: str | None = None
) -> Client:
    """A connection that reconnects forever and logs why it dropped; `seed` is the nkey seed
    file to authenticate with, `inbox_prefix` the only inboxes a restricted user may use."""

    async def disconnected() -> None:
        log.warning("nats.disconnected")

    async def reconnected() -> None:
        log.info("nats.reconnected")

    connected = False

    async def error(exc: Exception) -> None:
        if not connected and "authorization violation" in str(exc).lower():
            # retrying cannot help: raised out of nats.connect instead of looping forever
            raise NotAuthorized(
                f"NATS at {url} refused the credentials of {name!r}"
                + ("" if seed else " (none given: pass an nkey seed)")
            ) from exc
        log.warning("nats.error", error=repr(exc))

    client = await nats.connect(
        servers(url),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
        **credentials(seed, inbox_prefix),
    )
    connected = True
    return client

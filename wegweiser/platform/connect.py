"""Connecting to NATS the same way in every process."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import nats
import structlog
from nats.aio.client import Client

from wegweiser.platform.grants import JS_API_PREFIX
from wegweiser.platform.nats_server import servers

log = structlog.get_logger()


class NotAuthorized(Exception):
    """The server refused the credentials (or their absence); retrying will not help."""


def jetstream_options(seed: Path | None) -> dict[str, Any]:
    """How a service or agency reaches JetStream: through its account's imports of the stream
    account's API (see `grants.JS_API_PREFIX`) when it has credentials; the administrator and
    a broker without accounts use `$JS.API` itself."""
    return {"prefix": JS_API_PREFIX} if seed is not None else {}


def secret_from(seed: Path, purpose: str) -> bytes:
    """A secret of this principal's own for `purpose`, derived from its nkey seed (which no one
    else holds), so that it needs no file of its own and stays the same across restarts."""
    return hashlib.sha256(f"wegweiser {purpose}\0".encode() + seed.read_bytes().strip()).digest()


def credentials(seed: Path | None, inbox_prefix: str | None = None) -> dict[str, Any]:
    """Connection options for an nkey user (none when `seed` is None)."""
    options: dict[str, Any] = {}
    if seed is not None:
        options["nkeys_seed"] = str(seed)
    if inbox_prefix is not None:
        options["inbox_prefix"] = inbox_prefix
    return options


async def connect(
    url: str,
    name: str,
    seed: Path | None = None,
    inbox_prefix: str | None = None,
    attempts: int | None = None,
) -> Client:
    """A connection that reconnects forever and logs why it dropped; `seed` is the nkey seed
    file to authenticate with, `inbox_prefix` the only inboxes a restricted user may use.
    `attempts`: give up (NoServersError) after that many tries of each server, for a command
    that should say "unreachable" rather than wait for the broker forever."""

    client: Client | None = None

    async def disconnected() -> None:
        if client is not None and (client.is_closed or client.is_draining):
            return  # our own close or drain: nothing went wrong
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
        if not connected and attempts is not None:
            log.debug("nats.not_yet_connected", error=repr(exc))  # said once, when it gives up
            return
        log.warning("nats.error", error=repr(exc))

    client = await nats.connect(
        servers(url),
        name=name,
        # nats-py counts the first connection as reconnects too; 0 would mean "forever"
        max_reconnect_attempts=-1 if attempts is None else max(attempts - 1, 1),
        reconnect_time_wait=0.5,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
        **credentials(seed, inbox_prefix),
    )
    connected = True
    return client

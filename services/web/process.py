"""The web app as a process: its database migrated, its HTTP server on a socket further
instances can share, marked ready while it serves, its timers running, until SIGINT or SIGTERM;
then everything closed in the reverse order. What it serves and runs is wired in bootstrap.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import structlog
import uvicorn
from fastapi import FastAPI

from wegweiser.platform.db import Database
from wegweiser.platform.lifecycle import mark_ready, reusable_socket, stop_on_signals
from wegweiser.settings import Settings

log = structlog.get_logger()
Job = Callable[[], Awaitable[Any]]


class WebProcess:
    """Serve `app` on the web app's address, with `db` migrated before and disposed after."""

    def __init__(self, settings: Settings, db: Database, app: FastAPI) -> None:
        self.settings, self.db, self.app = settings, db, app
        self._timers: list[tuple[float, Job]] = []
        self._closing: list[Callable[[], Awaitable[None]]] = []

    def every(self, seconds: float, job: Job) -> None:
        """Run `job` now and then every `seconds` while serving; a failure is logged."""
        self._timers.append((seconds, job))

    def on_close(self, close: Callable[[], Awaitable[None]]) -> None:
        """Await `close` when the process stops (a client's connections)."""
        self._closing.append(close)

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        settings = self.settings
        stop = stop or stop_on_signals()
        async with AsyncExitStack() as stack:
            await asyncio.to_thread(self.db.migrate)
            stack.callback(self.db.dispose)
            for close in self._closing:
                stack.push_async_callback(close)
            config = uvicorn.Config(
                self.app,
                log_config=None,
                access_log=False,  # a person's link is in the path: it is never logged
                lifespan="off",
                proxy_headers=True,
                forwarded_allow_ips=settings.web_trusted_proxies,
            )
            server = uvicorn.Server(config)
            sock = reusable_socket(settings.web_host, settings.web_port)
            stack.callback(sock.close)
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn sets a flag
                await asyncio.sleep(0.05)
            stack.callback(mark_ready(settings.data_dir, "web", settings.instance))
            log.info("service.started", service="web", url=settings.web_url)
            waiter = asyncio.create_task(stop.wait())
            timers = [asyncio.create_task(_repeat(s, job)) for s, job in self._timers]
            await asyncio.wait([waiter, serving], return_when=asyncio.FIRST_COMPLETED)
            server.should_exit = True
            for timer in timers:
                timer.cancel()
            await asyncio.gather(serving, *timers, return_exceptions=True)
            waiter.cancel()
            log.info("service.stopping", service="web")


async def _repeat(seconds: float, job: Job) -> None:
    while True:
        try:
            await job()
        except Exception as exc:  # noqa: BLE001 - tried again at the next turn
            log.warning("web.job_failed", job=getattr(job, "__name__", "job"), error=repr(exc))
        await asyncio.sleep(seconds)

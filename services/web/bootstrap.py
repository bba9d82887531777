"""Composition root of the web app: its own database (users, sessions), the clients of intake
and audit, and the HTTP server. It does not touch NATS: it sees cases only through intake's
API and the log only through the ombudsperson's audit API."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from functools import partial

import structlog
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlmodel import Session

from services.audit.access import ombudsperson_token
from services.web import accounts
from services.web.clients import AuditClient, DirectoryAdminClient, IntakeClient, Unavailable
from services.web.http import Web, create_app
from services.web.integrity import SeenHeads
from services.web.signin import SignIn
from wegweiser import registry
from wegweiser.platform.db import Database
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.lifecycle import mark_ready, reusable_socket, stop_on_signals
from wegweiser.settings import Settings

log = structlog.get_logger()


def audit_public_key(settings: Settings) -> Ed25519PublicKey:
    """The audit log's public key, pinned in the key directory (the web app never reads the
    private half); Unavailable until the audit service has made its key."""
    path = KeyRing(settings.keys_path).audit_public_path
    try:
        key = load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise Unavailable(f"no audit key at {path} yet: start the audit service") from None
    assert isinstance(key, Ed25519PublicKey)
    return key


def database(settings: Settings) -> Database:
    return registry.service("web").database(settings)


class WebProcess:
    """The web app as a process: serve until SIGINT/SIGTERM, marked ready while it serves."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = database(settings)

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        settings = self.settings
        stop = stop or stop_on_signals()
        async with AsyncExitStack() as stack:
            await asyncio.to_thread(self.db.migrate)
            stack.callback(self.db.dispose)
            intake = IntakeClient(settings.intake_url, settings.web_intake_credential_path)
            audit = AuditClient(
                f"http://{settings.audit_host}:{settings.audit_port}",
                ombudsperson_token(settings),
            )
            directory = DirectoryAdminClient(
                settings.directory_url, settings.web_directory_token_path
            )
            stack.push_async_callback(intake.close)
            stack.push_async_callback(audit.close)
            stack.push_async_callback(directory.close)
            web = Web(
                run=self.db.run,
                intake=intake,
                audit=audit,
                audit_key=partial(audit_public_key, settings),
                offices=settings.all_offices,
                sign_in=SignIn(read=self.db.read, run=self.db.run),
                directory=directory,
                seen_heads=SeenHeads(settings.data_dir / "web" / "audit-head-seen.json"),
                policy=accounts.SessionPolicy(
                    idle=settings.web_session_idle, lifetime=settings.web_session_lifetime
                ),
                secure_cookies=settings.environment == "production",
                public_url=settings.web_public_url,
            )
            config = uvicorn.Config(
                create_app(web),
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
            tidying = asyncio.create_task(self.forget_ended_sessions(web.policy))
            await asyncio.wait([waiter, serving], return_when=asyncio.FIRST_COMPLETED)
            server.should_exit = True
            tidying.cancel()
            await asyncio.gather(serving, tidying, return_exceptions=True)
            waiter.cancel()
            log.info("service.stopping", service="web")

    async def forget_ended_sessions(self, policy: accounts.SessionPolicy) -> None:
        """Every ten minutes, the sessions whose browsers never came back to end them."""

        def forget(session: Session) -> int:
            return accounts.forget_ended_sessions(session, datetime.now(UTC), policy)

        while True:
            try:
                ended = await self.db.run(forget)
            except Exception as exc:  # noqa: BLE001 - tried again in ten minutes
                log.warning("web.session_cleanup_failed", error=repr(exc))
            else:
                if ended:
                    log.info("web.sessions_forgotten", sessions=ended)
            await asyncio.sleep(600)


def build(settings: Settings) -> WebProcess:
    return WebProcess(settings)

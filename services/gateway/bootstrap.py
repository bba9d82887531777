"""Composition root of the partner gateway: one feed per webhook or e-mail agency, the mail
sender, and the HTTP side (callbacks, portal)."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime

import httpx
import structlog

from schemas import subjects
from schemas.queries import AgencyCard, AgencyList, ListAgencies
from services.gateway import handlers, http, mail, webhook
from services.gateway.feed import Feed
from wegweiser import registry
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.runtime import ServiceRuntime
from wegweiser.settings import Settings

log = structlog.get_logger()
CHANNELS = ("webhook", "email")


def build(settings: Settings) -> ServiceRuntime:
    runtime = ServiceRuntime(registry.service("gateway"), settings)
    ring = KeyRing(settings.keys_path)
    mailer = mail.Mailer(
        settings.mail_sender,
        settings.smtp_host,
        settings.smtp_port,
        settings.data_dir / "mail",
        settings.gateway_url,
        settings.portal_link_valid_for,
    )
    agencies: dict[str, AgencyCard] = {}
    feeds: dict[str, asyncio.Task[None]] = {}
    context = ssl.create_default_context(cafile=settings.webhook_ca_file)
    client = httpx.AsyncClient(verify=context, timeout=30)

    secrets = webhook.SecretFolder(settings.webhook_secrets_path)

    def secret(agency_id: str) -> str | None:
        card = agencies.get(agency_id)
        if card is None or card.channel != "webhook":
            return None
        return secrets.get(agency_id)

    def mail_agency(agency_id: str) -> handlers.MailAgency | None:
        card = agencies.get(agency_id)
        if card is None or card.channel != "email" or not card.referral_address:
            return None
        return handlers.MailAgency(card.agency_id, card.name, card.referral_address)

    def agency_key(agency_id: str):  # type: ignore[no-untyped-def]
        path = ring.agency_path(agency_id)
        return ring.agency_private(agency_id) if mail_agency(agency_id) and path.exists() else None

    async def send_mail() -> None:
        await mailer.send_pending(runtime.db.run, datetime.now(UTC))

    def feed_for(card: AgencyCard) -> Feed | None:
        if card.channel == "email" and (agency := mail_agency(card.agency_id)) is not None:

            async def tell(msg) -> None:  # type: ignore[no-untyped-def]
                await runtime.db.run(
                    lambda s: handlers.tell_by_mail(
                        s, agency, msg.subject, msg.data, datetime.now(UTC)
                    )
                )
                await send_mail()

            return Feed(
                runtime.js, card.agency_id, tell, runtime.edge, provision=runtime.provisions
            )
        hook = secret(card.agency_id)
        if card.channel == "webhook" and hook and card.referral_address:
            handle = webhook.handler(
                client,
                card.referral_address,
                hook,
                settings.webhook_give_up_after.total_seconds(),
            )
            return Feed(
                runtime.js, card.agency_id, handle, runtime.edge, provision=runtime.provisions
            )
        log.warning(
            "gateway.agency_not_served",
            agency=card.agency_id,
            channel=card.channel,
            why="no address, or no webhook secret: run `wegweiser agency credentials`",
        )
        return None

    async def refresh() -> None:
        """Learn the directory's webhook and e-mail agencies; start a feed for each new one,
        and stop serving one the directory no longer lists (a revoked agency)."""
        query = ListAgencies(channels=CHANNELS).model_dump_json().encode()
        reply = await runtime.nc.request(subjects.DIRECTORY_AGENCIES, query, timeout=5)
        found = AgencyList.model_validate_json(reply.data).agencies
        for gone in set(agencies) - {card.agency_id for card in found}:  # revoked, or removed
            del agencies[gone]  # its callbacks and portal links are refused from now on
            if (task := feeds.pop(gone, None)) is not None:
                task.cancel()
            log.warning("gateway.agency_withdrawn", agency=gone)
        agencies.update({card.agency_id: card for card in found})
        for card in found:
            running = feeds.get(card.agency_id)
            if running is not None and not running.done():
                continue
            feed = feed_for(card)
            if feed is not None:
                feeds[card.agency_id] = asyncio.create_task(feed.run())
                log.info("gateway.serving", agency=card.agency_id, channel=card.channel)

    async def keep_refreshing() -> None:
        """Refresh for as long as the service runs; the feeds end with it (left running,
        their fetches would keep the connection from draining at shutdown)."""
        try:
            while True:
                try:
                    await refresh()
                    delay = settings.gateway_refresh_every
                except Exception as exc:  # noqa: BLE001 - the directory may not answer yet
                    log.warning("gateway.directory_unavailable", error=repr(exc))
                    delay = 2.0
                await asyncio.sleep(delay)
        finally:
            for task in feeds.values():
                task.cancel()
            await asyncio.gather(*feeds.values(), return_exceptions=True)

    runtime.also(keep_refreshing)
    runtime.every(60.0, send_mail)
    app = http.create_app(
        runtime.db.run,
        webhook_secret=secret,
        mail_agency=mail_agency,
        agency_key=agency_key,
        signers=ring.office_public,
        secure_cookie=settings.gateway_url.startswith("https"),
    )
    runtime.serve_http(app, settings.gateway_host, settings.gateway_port)
    return runtime

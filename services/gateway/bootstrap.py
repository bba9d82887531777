"""Composition root of the partner gateway: one feed per webhook, e-mail or FHIR agency, the
mail sender, and the HTTP side (callbacks, portal, the FHIR endpoints under /fhir)."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime

import httpx
from nats.aio.msg import Msg

from schemas import subjects
from schemas.queries import AgencyCard, AgencyList, ListAgencies
from services.gateway import handlers, http, links, mail, webhook
from services.gateway.feed import Feed, Handle
from services.gateway.fhir import adapter as fhir_adapter
from services.gateway.fhir import http as fhir_http
from services.gateway.fhir.access import TokenFolder
from services.gateway.fhir.subscriptions import Notifier
from services.gateway.partners import CHANNELS, Partners
from wegweiser import registry
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.runtime import ServiceRuntime
from wegweiser.settings import Settings


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
    context = ssl.create_default_context(cafile=settings.webhook_ca_file)
    client = httpx.AsyncClient(verify=context, timeout=30)

    async def send_mail() -> None:
        await mailer.send_pending(runtime.db.run, datetime.now(UTC))

    def by_mail(agency: handlers.MailAgency) -> Handle:
        async def tell(msg: Msg) -> None:
            now = datetime.now(UTC)
            await runtime.db.run(
                lambda s: handlers.tell_by_mail(s, agency, msg.subject, msg.data, now)
            )
            await send_mail()

        return tell

    def by_webhook(url: str, secret: str) -> Handle:
        give_up = settings.webhook_give_up_after.total_seconds()
        return webhook.handler(client, url, secret, give_up)

    async def serve(agency_id: str, handle: Handle) -> None:
        await Feed(runtime.nc, agency_id, handle, runtime.edge, provision=runtime.provisions).run()

    notifier = Notifier(
        runtime.db.run,
        client,
        lambda agency_id: partners.signing_secret(agency_id),
        lambda agency_id: f"{settings.gateway_url}/fhir/{agency_id}",
    )

    def by_fhir(agency_id: str) -> Handle:
        return fhir_adapter.handler(runtime.db.run, agency_id, notifier)

    partners = Partners(
        webhook.SecretFolder(settings.webhook_secrets_path),
        ring,
        serve,
        by_mail,
        by_webhook,
        tokens=TokenFolder.under(settings.keys_path),
        by_fhir=by_fhir,
    )

    async def listed() -> tuple[AgencyCard, ...]:
        query = ListAgencies(channels=CHANNELS).model_dump_json().encode()
        reply = await runtime.nc.request(subjects.DIRECTORY_AGENCIES, query, timeout=5)
        return AgencyList.model_validate_json(reply.data).agencies

    async def keep_learning() -> None:
        await partners.keep_learning(listed, settings.gateway_refresh_every)

    async def prune_links() -> None:
        now = datetime.now(UTC)
        await runtime.db.run(lambda s: links.prune(s, now, settings.inbox_keep))

    runtime.also(keep_learning)
    runtime.every(60.0, send_mail)
    runtime.every(3600.0, prune_links)
    app = http.create_app(
        runtime.db.run,
        webhook_secret=partners.secret,
        mail_agency=partners.mail_agency,
        agency_key=partners.agency_key,
        signers=ring.office_public,
        office_keys=ring.office_sealing_public,
        secure_cookie=settings.gateway_url.startswith("https"),
    )
    fhir = fhir_http.create_app(
        runtime.db.run,
        partners.fhir_admits,
        notifier,
        ring.office_sealing_public,
        notify_to=partners.fhir_address,
    )
    app.mount("/fhir", fhir)
    runtime.serve_http(app, settings.gateway_host, settings.gateway_port)
    return runtime

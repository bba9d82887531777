"""Composition root of the partner gateway: its use cases (application.py) wired to one feed
per webhook, e-mail or FHIR agency (partners.py), the timers, and the HTTP side (callbacks,
portal, the FHIR endpoints under /fhir)."""

from __future__ import annotations

import ssl
from functools import partial

import httpx

from services.gateway import http, mail, webhook
from services.gateway.application import Gateway
from services.gateway.feed import Feed, Handle
from services.gateway.fhir import http as fhir_http
from services.gateway.fhir.access import TokenFolder
from services.gateway.fhir.subscriptions import Notifier
from services.gateway.partners import Partners, listed
from wegweiser import registry
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.runtime import ServiceRuntime
from wegweiser.settings import Settings


def build(settings: Settings) -> ServiceRuntime:
    runtime = ServiceRuntime(registry.service("gateway"), settings)
    ring = KeyRing(settings.keys_path)
    context = ssl.create_default_context(cafile=settings.webhook_ca_file)
    client = httpx.AsyncClient(verify=context, timeout=30)
    give_up = settings.webhook_give_up_after.total_seconds()

    async def serve(agency_id: str, handle: Handle) -> None:
        await Feed(runtime.nc, agency_id, handle, runtime.edge, provision=runtime.provisions).run()

    partners = Partners(
        webhook.SecretFolder(settings.webhook_secrets_path),
        ring,
        serve,
        by_mail=lambda agency: partial(gateway.tell_by_mail, agency),
        by_webhook=lambda url, secret: webhook.handler(client, url, secret, give_up),
        tokens=TokenFolder.under(settings.keys_path),
        by_fhir=lambda agency_id: partial(gateway.tell_fhir_agency, agency_id),
    )
    gateway = Gateway(
        runtime.db,
        partners,
        ring,
        mail.Mailer.of(settings),
        Notifier(
            runtime.db.run,
            client,
            partners.signing_secret,
            lambda agency_id: f"{settings.gateway_url}/fhir/{agency_id}",
        ),
        links_keep=settings.inbox_keep,
    )
    runtime.also(
        lambda: partners.keep_learning(lambda: listed(runtime.nc), settings.gateway_refresh_every)
    )
    runtime.every(60.0, gateway.send_mail)
    runtime.every(3600.0, gateway.prune_links)
    app = http.create_app(gateway, secure_cookie=settings.gateway_url.startswith("https"))
    app.mount("/fhir", fhir_http.create_app(gateway))
    runtime.serve_http(app, settings.gateway_host, settings.gateway_port)
    return runtime

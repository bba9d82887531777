"""Composition root of the intake service: HTTP API, projection consumer, outbox relay."""

from __future__ import annotations

import contextlib
from functools import partial

from sqlalchemy.exc import IntegrityError

from schemas.catalogue import CATALOGUE, subject_suffix
from schemas.events import DeletionEvent, ReferralChange, TransitionRefused
from services.intake import access, handlers
from services.intake.directory_client import DirectoryClient
from services.intake.http import Deps, create_app
from services.intake.store import TABLES
from services.intake.vault import Vault, master_key
from wegweiser.platform import keys
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.runtime import Route, ServiceRuntime
from wegweiser.settings import Settings


def build(settings: Settings) -> ServiceRuntime:
    """Wire intake: the referral-event projection and the HTTP server."""
    runtime = ServiceRuntime("intake", settings, TABLES)
    routes = [Route("ww.referral.*.refused", TransitionRefused, handlers.project_refusal)]
    routes += [
        Route(f"ww.referral.*.{subject_suffix(spec.model)}", spec.model, handlers.project_deletion)
        for spec in CATALOGUE
        if issubclass(spec.model, DeletionEvent)
    ]
    routes += [
        Route(f"ww.referral.*.{subject_suffix(spec.model)}", spec.model, handlers.project_change)
        for spec in CATALOGUE
        if issubclass(spec.model, ReferralChange)
    ]
    runtime.consume("intake-referral-events", routes)
    app = create_app(settings.intake_allowed_hosts, frozenset(settings.intake_origins))

    async def wire() -> None:
        if settings.environment == "development":
            await development_clients(runtime, settings)
        ring = KeyRing(settings.keys_path)
        token_key = keys.load_or_create(
            settings.keys_path / "intake" / "token-signing.jwk", keys.generate_signing_key
        )
        vault = Vault(master_key(settings.intake_master_key, settings.keys_path))
        app.state.deps = Deps(
            run=runtime.db.run,
            read=runtime.db.read,
            directory=DirectoryClient(runtime.nc),
            wake_relay=runtime.relay.wake,
            contexts={
                office_id: handlers.Context(
                    office_id=office_id,
                    controller=name,
                    vault=vault,
                    signer=ring.office_signing(office_id),
                )
                for office_id, name in settings.all_offices.items()
            },
            default_office=settings.office_id,
            tokens=access.Tokens(token_key),
            revocations=access.Revocations(lambda: runtime.db.read(access.revoked_ids)),
        )

    runtime.before_start(wire)
    runtime.serve_http(app, settings.intake_host, settings.intake_port)
    return runtime


async def development_clients(runtime: ServiceRuntime, settings: Settings) -> None:
    """In development, the web app's and `wegweiser demo`'s credentials: made on first start
    in their own key folders, registered here (production: `wegweiser api-client add`)."""
    made = [
        ("web app", settings.web_intake_credential_path, list(settings.all_offices)),
        ("wegweiser demo", settings.demo_intake_credential_path, [settings.office_id]),
    ]
    for name, path, offices in made:
        credential = access.development_credential(path, offices)
        with contextlib.suppress(IntegrityError):  # another instance registered it first
            await runtime.db.run(partial(access.register, name=name, credential=credential))

"""Composition root of the intake service: HTTP API, projection consumer, outbox relay."""

from __future__ import annotations

from schemas.catalogue import CATALOGUE, subject_suffix
from schemas.events import DeletionEvent, ReferralChange, TransitionRefused
from services.intake import handlers
from services.intake.directory_client import DirectoryClient
from services.intake.http import Deps, create_app
from services.intake.store import TABLES
from services.intake.vault import Vault, master_key
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
    app = create_app()

    async def wire() -> None:
        ring = KeyRing(settings.keys_path)
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
        )

    runtime.before_start(wire)
    runtime.serve_http(app, settings.intake_host, settings.intake_port)
    return runtime

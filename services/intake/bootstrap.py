"""Composition root of the intake service: HTTP API, projection consumer, outbox relay."""

from __future__ import annotations

import uvicorn

from schemas.catalogue import CATALOGUE, subject_suffix
from schemas.events import ReferralChange, TransitionRefused
from services.intake import handlers
from services.intake.directory_client import DirectoryClient
from services.intake.http import Deps, create_app
from services.intake.store import TABLES
from wegweiser.platform.runtime import Route, ServiceRuntime
from wegweiser.settings import Settings


def build(settings: Settings) -> ServiceRuntime:
    """Wire intake: the referral-event projection and the HTTP server."""
    runtime = ServiceRuntime("intake", settings, TABLES)
    routes = [Route("ww.referral.*.refused", TransitionRefused, handlers.project_refusal)]
    routes += [
        Route(f"ww.referral.*.{subject_suffix(spec.model)}", spec.model, handlers.project_change)
        for spec in CATALOGUE
        if issubclass(spec.model, ReferralChange)
    ]
    runtime.consume("intake-referral-events", routes)
    app = create_app()

    async def serve_http() -> None:
        app.state.deps = Deps(
            run=runtime.db.run,
            directory=DirectoryClient(runtime.nc),
            wake_relay=runtime.relay.wake,
            office_id=settings.office_id,
        )
        config = uvicorn.Config(
            app,
            host=settings.intake_host,
            port=settings.intake_port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        await uvicorn.Server(config).serve()

    runtime.also(serve_http)
    return runtime

"""Composition root of the directory service: queries over core NATS request/reply."""

from __future__ import annotations

import structlog

from schemas import subjects
from schemas.events import AgencyCapacityUpdated
from schemas.queries import CheckPlace, ListAgencies, LookupAgency, ResolveAgencies
from services.directory import admin_api
from services.directory.access import AdminTokens
from services.directory.admin import Administration
from services.directory.application import AgencyDirectory
from services.directory.http import create_app
from services.directory.sample import SAMPLE_PATH
from wegweiser import registry
from wegweiser.platform import topology
from wegweiser.platform.consumer import Route
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.runtime import ServiceRuntime
from wegweiser.platform.secrets import SecretFolder
from wegweiser.settings import Settings

log = structlog.get_logger()


def build(settings: Settings, seed_sample: bool = True) -> ServiceRuntime:
    """Wire the directory: it seeds the sample catalogue into an empty store."""
    runtime = ServiceRuntime(registry.service("directory"), settings)
    directory = AgencyDirectory(runtime.db, KeyRing(settings.keys_path))
    runtime.answer(subjects.DIRECTORY_RESOLVE, ResolveAgencies, directory.resolve)
    runtime.answer(subjects.DIRECTORY_AGENCY, LookupAgency, directory.lookup)
    runtime.answer(subjects.DIRECTORY_AGENCIES, ListAgencies, directory.list_agencies)
    runtime.answer(subjects.DIRECTORY_PLACE, CheckPlace, directory.check_place)
    runtime.consume(
        "directory-agency-facts",
        [Route("ww.agency.*.capacity", AgencyCapacityUpdated, directory.update_capacity)],
    )

    async def start() -> None:
        await directory.seed(SAMPLE_PATH if seed_sample else None)
        if runtime.provisions:  # else the administrator's provisioning makes them
            agencies = await directory.nats_agencies()
            specs = [topology.agency_consumer(agency) for agency in agencies]
            await topology.ensure_consumers(runtime.js, specs, settings.max_deliver)
            log.info("directory.agency_consumers", nats_agencies=len(specs))

    runtime.before_start(start)
    administration = Administration(runtime.db, SecretFolder(settings.webhook_secrets_path))
    admin = admin_api.router(administration, AdminTokens(settings.directory_admin_tokens_path))
    app = create_app(directory.hsds, directory, admin)
    runtime.serve_http(app, settings.directory_host, settings.directory_port)
    return runtime

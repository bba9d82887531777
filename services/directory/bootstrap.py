"""Composition root of the directory service: queries over core NATS request/reply."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError

from schemas import subjects
from schemas.events import AgencyCapacityUpdated
from schemas.queries import CheckPlace, ListAgencies, LookupAgency, ResolveAgencies
from services.directory import admin_api, handlers, identities, importer, store
from services.directory.access import AdminTokens
from services.directory.admin import Administration
from services.directory.hsds.records import Assembler
from services.directory.http import create_app
from services.directory.sample import SAMPLE_PATH
from services.gateway.webhook import SecretFolder
from wegweiser import registry
from wegweiser.platform import keys, topology
from wegweiser.platform.consumer import Route
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.runtime import ServiceRuntime
from wegweiser.settings import Settings

log = structlog.get_logger()


def build(settings: Settings, seed_sample: bool = True) -> ServiceRuntime:
    """Wire the directory: it seeds the sample catalogue into an empty store."""
    runtime = ServiceRuntime(registry.service("directory"), settings)
    snapshot = handlers.Snapshot()

    runtime.answer(
        subjects.DIRECTORY_RESOLVE,
        ResolveAgencies,
        lambda s, query, _subject: handlers.suggest(s, query, snapshot),
    )
    runtime.answer(
        subjects.DIRECTORY_AGENCY, LookupAgency, lambda s, q, _subject: handlers.lookup(s, q)
    )
    runtime.answer(
        subjects.DIRECTORY_AGENCIES,
        ListAgencies,
        lambda s, q, _subject: handlers.list_agencies(s, q),
    )
    runtime.answer(
        subjects.DIRECTORY_PLACE,
        CheckPlace,
        lambda _s, q, _subject: handlers.check_place(snapshot.gazetteer, q),
    )

    runtime.consume(
        "directory-agency-facts",
        [Route("ww.agency.*.capacity", AgencyCapacityUpdated, handlers.update_capacity)],
    )

    async def seed() -> None:
        if seed_sample and await runtime.db.run(store.count) == 0:
            try:
                report = await runtime.db.run(lambda s: importer.import_file(s, SAMPLE_PATH))
            except IntegrityError:
                if await runtime.db.run(store.count) == 0:
                    raise
                log.info("directory.seeded_by_another_instance")
            else:
                if not report.ok:
                    raise RuntimeError(f"sample directory: {report.problems[0]}")
                log.info("directory.seeded", summary=report.summary())
        keys = KeyRing(settings.keys_path).agency_public_keys()
        added = await runtime.db.run(lambda s: identities.publish_on_file(s, keys))
        log.info("directory.public_keys", on_file=len(keys), added=added)
        if runtime.provisions:  # else the administrator's provisioning makes them
            agencies = await runtime.db.run(store.all_agencies)
            specs = [topology.agency_consumer(a.id) for a in agencies if a.channel == "nats"]
            await topology.ensure_consumers(runtime.js, specs, settings.max_deliver)
            log.info("directory.agency_consumers", nats_agencies=len(specs))

    runtime.before_start(seed)

    async def hsds() -> Assembler:
        return await runtime.db.read(snapshot.hsds)

    def office_keys() -> dict[str, dict[str, Any]]:
        """What an approved agency is given of the offices: their signing keys (every case is
        signed by one) and their sealing keys (its comments are sealed to one)."""
        ring = KeyRing(settings.keys_path)
        return {
            "office_keys": {kid: keys.public_dict(k) for kid, k in ring.office_public().items()},
            "office_sealing_keys": {
                office: keys.public_dict(k) for office, k in ring.office_sealing_public().items()
            },
        }

    administration = Administration(runtime.db, SecretFolder(settings.webhook_secrets_path))
    admin = admin_api.router(administration, AdminTokens(settings.directory_admin_tokens_path))
    app = create_app(hsds, runtime.db.run, runtime.db.read, office_keys, admin)
    runtime.serve_http(app, settings.directory_host, settings.directory_port)
    return runtime

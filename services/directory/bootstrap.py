"""Composition root of the directory service: queries over core NATS request/reply."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from faststream.nats import NatsMessage
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from schemas import subjects
from schemas.events import AgencyCapacityUpdated
from schemas.queries import CheckPlace, ListAgencies, LookupAgency, QueryFailed, ResolveAgencies
from services.directory import admin_api, handlers, identities, importer, store
from services.directory.access import AdminTokens
from services.directory.admin import Administration
from services.directory.hsds.records import Assembler
from services.directory.http import create_app
from services.directory.sample import SAMPLE_PATH
from services.gateway.webhook import SecretFolder
from wegweiser import registry
from wegweiser.platform import keys, topology
from wegweiser.platform.consumer import describe
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.runtime import Route, ServiceRuntime
from wegweiser.settings import Settings

Q = TypeVar("Q", bound=BaseModel)
log = structlog.get_logger()


def build(settings: Settings, seed_sample: bool = True) -> ServiceRuntime:
    """Wire the directory: it seeds the sample catalogue into an empty store."""
    runtime = ServiceRuntime(registry.service("directory"), settings)
    snapshot = handlers.Snapshot()

    def answer(contract: type[Q], handler: Callable[[Session, Q], BaseModel]) -> Any:
        async def on_query(msg: NatsMessage) -> Any:
            try:
                query = contract.model_validate_json(msg.body)
            except ValidationError as exc:
                log.warning("directory.bad_query", error=describe(exc))
                return QueryFailed(error=f"malformed {contract.__name__}: {describe(exc)}")
            return await runtime.db.read(lambda s: handler(s, query))

        return on_query

    resolve_sub = runtime.broker.subscriber(subjects.DIRECTORY_RESOLVE, queue="directory")
    resolve_sub(answer(ResolveAgencies, lambda s, query: handlers.suggest(s, query, snapshot)))
    lookup_sub = runtime.broker.subscriber(subjects.DIRECTORY_AGENCY, queue="directory")
    lookup_sub(answer(LookupAgency, handlers.lookup))
    list_sub = runtime.broker.subscriber(subjects.DIRECTORY_AGENCIES, queue="directory")
    list_sub(answer(ListAgencies, handlers.list_agencies))
    place_sub = runtime.broker.subscriber(subjects.DIRECTORY_PLACE, queue="directory")
    place_sub(answer(CheckPlace, lambda _s, query: handlers.check_place(snapshot.gazetteer, query)))

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

"""The directory's use cases, one method each: fill an empty store from the sample catalogue
and publish the agencies' keys at start, answer the office's questions (resolve, look up,
list, check a place), take in an agency's capacity, and serve the HSDS records and the
offices' public keys to the read API. The bootstrap only wires this to NATS subjects, a
consumer and the HTTP app; the tests drive it with a real store and no broker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from schemas import queries as q
from schemas.enrolment import EnrolmentRequest, KeyRotation
from schemas.events import AgencyCapacityUpdated
from services.directory import enrolment, handlers, identities, importer, store
from services.directory.hsds.records import Assembler
from services.directory.store import EnrolmentRow
from wegweiser.platform import keys
from wegweiser.platform.consumer import Delivery
from wegweiser.platform.db import Database
from wegweiser.platform.keys import KeyRing

log = structlog.get_logger()


@dataclass
class AgencyDirectory:
    """One county's register of agencies: its store, the snapshot its answers are computed
    from, and the key folder that holds the agencies' and offices' public keys."""

    db: Database
    ring: KeyRing
    snapshot: handlers.Snapshot = field(default_factory=handlers.Snapshot)

    async def seed(self, sample: Path | None) -> None:
        """At start: fill an empty store from `sample` (another instance may do it at the same
        moment: then its import stands), and put every agency key on file into the store."""
        if sample is not None and await self.db.run(store.count) == 0:
            try:
                report = await self.db.run(lambda s: importer.import_file(s, sample))
            except IntegrityError:
                if await self.db.run(store.count) == 0:
                    raise
                log.info("directory.seeded_by_another_instance")
            else:
                if not report.ok:
                    raise RuntimeError(f"sample directory: {report.problems[0]}")
                log.info("directory.seeded", summary=report.summary())
        on_file = self.ring.agency_public_keys()
        added = await self.db.run(lambda s: identities.publish_on_file(s, on_file))
        log.info("directory.public_keys", on_file=len(on_file), added=added)

    async def nats_agencies(self) -> list[str]:
        """The agencies that receive their referrals by NATS (each needs its consumer)."""
        agencies = await self.db.run(store.all_agencies)
        return [a.id for a in agencies if a.channel == "nats"]

    # The office's questions, each in a read of the store.

    def resolve(self, session: Session, query: q.ResolveAgencies, _subject: str) -> q.Suggestions:
        return handlers.suggest(session, query, self.snapshot)

    @staticmethod
    def lookup(session: Session, query: q.LookupAgency, _subject: str) -> q.AgencyLookup:
        return handlers.lookup(session, query)

    @staticmethod
    def list_agencies(session: Session, query: q.ListAgencies, _subject: str) -> q.AgencyList:
        return handlers.list_agencies(session, query)

    def check_place(self, _session: Session, query: q.CheckPlace, _subject: str) -> q.PlaceCheck:
        return handlers.check_place(self.snapshot.gazetteer, query)

    @staticmethod
    def update_capacity(session: Session, delivery: Delivery[AgencyCapacityUpdated]) -> None:
        handlers.update_capacity(session, delivery)

    # The agencies' own side: their keys, their enrolment, their key rotations.

    async def keys_of(self, agency_id: str) -> dict[str, Any] | None:
        """The agency's public keys in effect, to come or retiring (a JWK Set); None for an
        agency the directory does not know."""

        def found(session: Session) -> dict[str, Any] | None:
            if store.get(session, agency_id) is None:
                return None
            return dict(identities.jwks(session, agency_id))

        return await self.db.read(found)

    async def rotate_keys(self, agency_id: str, body: KeyRotation) -> list[str]:
        """An enrolled agency's new keys, signed by its current key and the new one: their
        kids, published from their start (enrolment.Refused if they are not acceptable)."""
        kids: list[str] = await self.db.run(lambda s: enrolment.rotate(s, agency_id, body))
        return kids

    async def request_enrolment(self, body: EnrolmentRequest) -> EnrolmentRow:
        """An agency's enrolment with its own keys, waiting for the county's decision."""
        row: EnrolmentRow = await self.db.run(lambda s: enrolment.request(s, body))
        return row

    async def enrolment_state(self, enrolment_id: str) -> dict[str, Any]:
        """The enrolment's state; once approved, what the agency needs to take part."""
        state: dict[str, Any] = await self.db.read(
            lambda s: enrolment.view(s, enrolment_id, self.office_keys())
        )
        return state

    # What the read API serves.

    async def hsds(self) -> Assembler:
        return await self.db.read(self.snapshot.hsds)

    def office_keys(self) -> dict[str, dict[str, Any]]:
        """What an approved agency is given of the offices: their signing keys (every case is
        signed by one) and their sealing keys (its comments are sealed to one)."""
        return {
            "office_keys": {
                kid: keys.public_dict(k) for kid, k in self.ring.office_public().items()
            },
            "office_sealing_keys": {
                office: keys.public_dict(k)
                for office, k in self.ring.office_sealing_public().items()
            },
        }

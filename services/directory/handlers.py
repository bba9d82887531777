"""The directory's queries: resolve a need to ranked agencies, look one agency up."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from schemas import queries as q
from schemas import subjects
from schemas.events import AgencyCapacityUpdated, ExclusionCount
from services.directory import identities, store
from services.directory.catalogue import Agency, Candidate, Query, Reason, Resolution
from services.directory.gazetteer import SAMPLE, Gazetteer
from services.directory.hsds.records import Assembler
from services.directory.resolution import Directory
from wegweiser.platform.consumer import Delivery, Unprocessable


class Snapshot:
    """The agencies and their keys as of the store's generation, reloaded when it moves on
    (and the keys when one comes into or goes out of effect)."""

    def __init__(self, gazetteer: Gazetteer = SAMPLE) -> None:
        self.gazetteer = gazetteer
        self.generation = -1
        self.directory = Directory((), gazetteer)
        self.keys: dict[str, dict[str, Any]] = {}
        self.keys_until: datetime | None = None
        self._hsds: tuple[int, Assembler] | None = None

    def current(self, session: Session) -> Snapshot:
        generation = store.generation(session)
        now = datetime.now(UTC)
        if generation != self.generation:
            gc.unfreeze()
            self.directory = Directory(store.all_agencies(session), self.gazetteer)
            self.generation = generation
            # tens of thousands of long-lived agencies: keep full collections from walking them
            gc.freeze()
            self.keys_until = now
        if self.keys_until is not None and now >= self.keys_until:
            self.keys = identities.sealing_keys(session, now)
            self.keys_until = identities.next_change(session, now)
        return self

    def hsds(self, session: Session) -> Assembler:
        """The HSDS records for the read API, reloaded when the directory changed."""
        generation = store.generation(session)
        if self._hsds is None or self._hsds[0] != generation:
            self._hsds = (generation, Assembler(store.load_records(session)))
        return self._hsds[1]


def card(agency: Agency, public_key: dict[str, Any] | None = None) -> q.AgencyCard:
    """What the office may see of an agency (never a confidential address)."""
    return q.AgencyCard(
        public_key=public_key,
        agency_id=agency.id,
        name=agency.name,
        kind=agency.kind,
        channel=agency.channel,
        referral_address=agency.referral_address,
        capacity=agency.capacity,
        waiting_days=agency.waiting_days,
        active=agency.active,
    )


def suggest(session: Session, query: q.ResolveAgencies, snapshot: Snapshot) -> q.Suggestions:
    """The best candidates and the first exclusions, at most `query.limit` of each, each with
    its reasons, and how many there were in all."""
    current = snapshot.current(session)
    resolution = current.directory.resolve(
        Query(
            need=query.need,
            languages=query.languages,
            municipality=query.municipality,
            postcode=query.postcode,
            age=query.age,
            urgency=query.urgency,
        ),
        limit=query.limit,
    )
    return suggestions(resolution, current.keys)


def suggestions(resolution: Resolution, keys: dict[str, dict[str, Any]]) -> q.Suggestions:
    """A resolution as the wire contract carries it, each agency with its public key if it
    has one on file."""
    said: dict[int, q.MatchReason] = {}  # one reason object serves many agencies: said once

    def reasons(of: tuple[Reason, ...]) -> tuple[q.MatchReason, ...]:
        return tuple(said.get(id(r)) or said.setdefault(id(r), match_reason(r)) for r in of)

    def candidate(c: Candidate) -> q.Candidate:
        agency = card(c.agency, keys.get(c.agency.id))
        return q.Candidate(agency=agency, rank=c.rank, score=c.score, reasons=reasons(c.reasons))

    return q.Suggestions(
        candidates=tuple(candidate(c) for c in resolution.candidates),
        excluded=tuple(
            q.Excluded(agency=card(e.agency, keys.get(e.agency.id)), reasons=reasons(e.reasons))
            for e in resolution.excluded
        ),
        bridges=tuple(
            q.Bridge(candidate=candidate(b.candidate), interpreter=candidate(b.interpreter))
            for b in resolution.bridges
        ),
        candidates_total=resolution.candidates_total,
        excluded_total=resolution.excluded_total,
        excluded_by_reason=tuple(
            ExclusionCount(code=code, agencies=n) for code, n in resolution.excluded_by_reason
        ),
    )


def list_agencies(session: Session, query: q.ListAgencies) -> q.AgencyList:
    """The agencies that receive referrals by the given adapters, with their addresses (a
    revoked agency is served by no adapter)."""
    keys = identities.sealing_keys(session)
    return q.AgencyList(
        agencies=tuple(
            card(a, keys.get(a.id))
            for a in sorted(store.all_agencies(session), key=lambda a: a.id)
            if a.channel in query.channels and not identities.is_revoked(session, a.id)
        )
    )


def check_place(gazetteer: Gazetteer, query: q.CheckPlace) -> q.PlaceCheck:
    """What the gazetteer knows of a place: the municipality by its key, the postcode, and
    whether the one lies in the other."""
    municipality = gazetteer.municipalities.get(query.municipality) if query.municipality else None
    postcode_known = (
        bool(gazetteer.counties_of_postcode(query.postcode)) if query.postcode else None
    )
    return q.PlaceCheck(
        municipality_known=None if query.municipality is None else municipality is not None,
        municipality_name=municipality.name if municipality else None,
        postcode_known=postcode_known,
        postcode_in_municipality=(
            query.postcode in municipality.postcodes
            if municipality is not None and query.postcode and postcode_known
            else None
        ),
    )


def lookup(session: Session, query: q.LookupAgency) -> q.AgencyLookup:
    found = store.get(session, query.agency_id)
    if found is None:
        return q.AgencyLookup(found=False, agency=None)
    return q.AgencyLookup(
        found=True, agency=card(found, identities.sealing_keys(session).get(found.id))
    )


def update_capacity(session: Session, delivery: Delivery[AgencyCapacityUpdated]) -> None:
    """An agency's new capacity and waiting time, served from the next query on."""
    update = delivery.event.data
    if subjects.agency_from_subject(delivery.subject) != update.agency_id:
        raise Unprocessable(f"capacity for {update.agency_id} came from another agency's subject")
    if not store.set_capacity(session, update.agency_id, update.capacity, update.waiting_days):
        raise Unprocessable(f"unknown agency {update.agency_id!r}: not in the directory")


def match_reason(reason: Reason) -> q.MatchReason:
    """A reason as the wire contract carries it (its facts JSON: lists, not tuples)."""
    facts = {k: list(v) if isinstance(v, tuple) else v for k, v in reason.facts.items()}
    return q.MatchReason(code=reason.code, text=reason.text, facts=facts)

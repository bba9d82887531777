"""Wegweiser's HSDS profile: what referrals need of a service that HSDS has no field for.

A service that can receive referrals carries a `wegweiser` object:

    {"agency_id": "lup-mbe-ludwigslust",          # its address on the network (default: its id)
     "kind": "migration-counselling",             # an AgencyKind, for consent by kind
     "referral": {"adapter": "nats", "address": null},   # how it receives referrals
     "capacity": 4, "waiting_days": 7,            # updated live by the agency's events
     "sample": true}                              # sample data, not a real agency's

and links to terms of the needs taxonomy through its attributes. Its service areas name official
keys as URNs, `urn:de:ags:13076090` (municipality), `urn:de:ags:13076` (county), `urn:de:ags:13`
(Land), or postcodes, `urn:de:plz:19288`; a virtual location means it also helps remotely. A
location whose `wegweiser` object says `"confidential": true` (a women's shelter) keeps no
address: the directory drops its addresses and coordinates on import and never shows them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.vocabulary import AgencyKind, Need
from services.directory import needs
from services.directory.catalogue import Agency
from services.directory.gazetteer import Gazetteer
from services.directory.hsds.records import Assembler, Record
from services.directory.hsds.schema import Problem

EXTENSION = "wegweiser"
AREA = re.compile(r"urn:de:(?:ags:(?P<ags>\d{2}|\d{5}|\d{8})|plz:(?P<plz>\d{5}))")
AGENCY_ID = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
CONFIDENTIAL_FIELDS = ("latitude", "longitude", "transportation", "external_identifier")
"""Fields of a confidential location that could place it; dropped with its addresses."""


class Referral(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    adapter: Literal["nats", "webhook", "email", "fhir"]
    address: str | None = None


class ServiceProfile(BaseModel):
    """The `wegweiser` object of a service."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    agency_id: str | None = Field(default=None, pattern=AGENCY_ID, max_length=64)
    kind: AgencyKind
    referral: Referral
    capacity: int = Field(ge=0)
    waiting_days: int = Field(ge=0)
    sample: bool = False


class LocationProfile(BaseModel):
    """The `wegweiser` object of a location."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    confidential: bool = False


def is_confidential(location: Record) -> bool:
    raw = location.get(EXTENSION)
    return raw is not None and LocationProfile.model_validate(raw).confidential


def check(
    records: dict[str, dict[str, Record]], origin: dict[tuple[str, str], str]
) -> Iterator[Problem]:
    """Every way the records break the profile: extension objects and area URNs."""
    for kind, model in (("service", ServiceProfile), ("location", LocationProfile)):
        for record_id, record in records.get(kind, {}).items():
            if EXTENSION in record:
                try:
                    model.model_validate(record[EXTENSION])
                except ValidationError as exc:
                    where = origin.get((kind, record_id), f"{kind} {record_id}")
                    for error in exc.errors():
                        path = ".".join(str(part) for part in error["loc"])
                        yield Problem(f"{where}.{EXTENSION}.{path}", error["msg"])
    for record_id, area in records.get("service_area", {}).items():
        uri = area.get("uri")
        if uri is not None and uri.startswith("urn:de:") and not AREA.fullmatch(uri):
            where = origin.get(("service_area", record_id), f"service_area {record_id}")
            yield Problem(
                f"{where}.uri", f"{uri!r} is not urn:de:ags:<2, 5 or 8 digits> or urn:de:plz:<5>"
            )


def withhold_confidential(records: dict[str, dict[str, Record]]) -> int:
    """Drop what would place a confidential location; returns how many addresses were dropped."""
    confidential = {
        location_id
        for location_id, location in records.get("location", {}).items()
        if is_confidential(location)
    }
    for location_id in confidential:
        location = records["location"][location_id]
        for name in CONFIDENTIAL_FIELDS:
            location.pop(name, None)
    addresses = records.get("address", {})
    dropped = [aid for aid, a in addresses.items() if a.get("location_id") in confidential]
    for address_id in dropped:
        del addresses[address_id]
    return len(dropped)


def agencies(assembler: Assembler, gazetteer: Gazetteer) -> tuple[list[Agency], list[Problem]]:
    """The services that can receive referrals, as resolution sees them."""
    found: list[Agency] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for service_id in assembler.ids("service"):
        service = assembler.get("service", service_id) or {}
        if EXTENSION not in service:
            continue
        agency = _agency(
            assembler, service, ServiceProfile.model_validate(service[EXTENSION]), gazetteer
        )
        where = f"service {service_id}"
        if not agency.needs:
            problems.append(Problem(where, "has a wegweiser profile but no need of the taxonomy"))
        elif not (agency.areas or agency.postcodes):
            problems.append(Problem(where, "has a wegweiser profile but no urn:de: service area"))
        elif agency.id in seen:
            problems.append(
                Problem(where, f"agency_id {agency.id!r} is already service {seen[agency.id]}'s")
            )
        else:
            seen[agency.id] = service_id
            found.append(agency)
    return found, problems


def _agency(
    assembler: Assembler, service: Record, profile: ServiceProfile, gazetteer: Gazetteer
) -> Agency:
    service_id = service["id"]
    offered: set[Need] = set()
    for attribute_id in assembler.children_of("attribute", "link_id", service_id):
        attribute = assembler.get("attribute", attribute_id) or {}
        term = assembler.get("taxonomy_term", attribute.get("taxonomy_term_id", ""))
        need = needs.need_of_term(term) if term else None
        if need is not None:
            offered.add(need)
    languages = {
        str(language["code"]).lower()
        for language_id in assembler.children_of("language", "service_id", service_id)
        if (language := assembler.get("language", language_id) or {}).get("code")
    }
    areas, postcodes = set(), set()
    for area_id in assembler.children_of("service_area", "service_id", service_id):
        match = AREA.fullmatch((assembler.get("service_area", area_id) or {}).get("uri") or "")
        if match and match["ags"]:
            areas.add(match["ags"])
        elif match:
            postcodes.add(match["plz"])
    location_types = {
        (assembler.get("location", sal.get("location_id", "")) or {}).get("location_type")
        for sal_id in assembler.children_of("service_at_location", "service_id", service_id)
        if (sal := assembler.get("service_at_location", sal_id) or {})
    }
    organization = assembler.get("organization", service.get("organization_id") or "") or {}
    return Agency(
        id=profile.agency_id or service_id,
        name=service["name"],
        kind=profile.kind,
        needs=frozenset(offered),
        languages=frozenset(languages),
        areas=frozenset(areas),
        postcodes=frozenset(postcodes),
        counties=frozenset().union(*(gazetteer.counties_of_postcode(pc) for pc in postcodes)),
        remote="virtual" in location_types,
        in_person="physical" in location_types or "virtual" not in location_types,
        min_age=_age(service.get("minimum_age")),
        max_age=_age(service.get("maximum_age")),
        capacity=profile.capacity,
        waiting_days=profile.waiting_days,
        status=service["status"],
        channel=profile.referral.adapter,
        referral_address=profile.referral.address or service.get("email"),
        sample=profile.sample,
        service_id=service_id,
        organization=organization.get("name", ""),
    )


def _age(value: Any) -> int | None:
    return None if value is None else int(value)

"""Which records each list of the HSDS read API holds: the filters of its query parameters,
over the directory's records as they are now (an `Assembler`). The routes (http.py) decode
the parameters, ask here and page what comes back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.directory import profile
from services.directory.hsds.records import Assembler, Record
from services.directory.listing import modified_since


@dataclass(frozen=True)
class ServiceFilter:
    """The filters /services and /service_at_locations share; None asks for no filter."""

    search: str | None = None
    taxonomy_term_id: str | None = None
    taxonomy_id: str | None = None
    organization_id: str | None = None
    modified_after: datetime | None = None

    def fits(self, a: Assembler, service_id: str) -> bool:
        """Whether the service answers every filter."""
        service = get(a, "service", service_id)
        return (
            _matches(service, self.search)
            and (
                self.organization_id is None
                or service.get("organization_id") == self.organization_id
            )
            and _has_term(a, service_id, self.taxonomy_term_id, self.taxonomy_id)
            and modified_since(service, self.modified_after)
        )


def services(a: Assembler, asked: ServiceFilter) -> list[str]:
    return [i for i in a.ids("service") if asked.fits(a, i)]


def organizations(a: Assembler, search: str | None = None) -> list[str]:
    return [i for i in a.ids("organization") if _matches(a.get("organization", i), search)]


def service_at_locations(
    a: Assembler, asked: ServiceFilter, postcode: str | None = None
) -> list[str]:
    """Services at their locations; `modified_after` compares with the service's
    `last_modified` (HSDS gives a service at a location none of its own)."""
    ids = []
    for i in a.ids("service_at_location"):
        sal = get(a, "service_at_location", i)
        if asked.fits(a, sal.get("service_id") or "") and (
            postcode is None or postcode in _postcodes(a, sal.get("location_id"))
        ):
            ids.append(i)
    return ids


def taxonomies(a: Assembler, search: str | None = None) -> list[str]:
    return [i for i in a.ids("taxonomy") if _matches(a.get("taxonomy", i), search)]


def taxonomy_terms(
    a: Assembler,
    search: str | None = None,
    taxonomy_id: str | None = None,
    parent_id: str | None = None,
    top_only: bool = False,
) -> list[str]:
    ids = []
    for i in a.ids("taxonomy_term"):
        term = get(a, "taxonomy_term", i)
        if (
            _matches(term, search)
            and (taxonomy_id is None or term.get("taxonomy_id") == taxonomy_id)
            and (parent_id is None or term.get("parent_id") == parent_id)
            and not (top_only and term.get("parent_id"))
        ):
            ids.append(i)
    return ids


def get(a: Assembler, kind: str, record_id: str) -> Record:
    """A record, or an empty one where there is none."""
    return a.get(kind, record_id) or {}


def _matches(record: Record | None, search: str | None) -> bool:
    if record is None:
        return False
    if not search:
        return True
    needle = search.casefold()
    return any(needle in str(record.get(f) or "").casefold() for f in ("name", "description"))


def _has_term(a: Assembler, service_id: str, term_id: str | None, taxonomy_id: str | None) -> bool:
    if term_id is None and taxonomy_id is None:
        return True
    for attribute_id in a.children_of("attribute", "link_id", service_id):
        linked = get(a, "attribute", attribute_id).get("taxonomy_term_id") or ""
        term = a.get("taxonomy_term", linked) or {}
        if (term_id is None or linked == term_id) and (
            taxonomy_id is None or term.get("taxonomy_id") == taxonomy_id
        ):
            return True
    return False


def _postcodes(a: Assembler, location_id: str | None) -> set[str]:
    """The postcodes of a location's addresses (a confidential location has none)."""
    if location_id is None:
        return set()
    if profile.is_confidential(a.get("location", location_id) or {}):
        return set()
    return {
        str(get(a, "address", i).get("postal_code", ""))
        for i in a.children_of("address", "location_id", location_id)
    }

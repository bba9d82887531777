"""The Task search parameters the endpoint understands, parsed strictly: an unknown
parameter, status or date is refused (FHIR lets a server ignore them, but an agency that
polls with a typo would silently see everything)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from services.gateway.fhir.errors import FhirRefused
from services.gateway.fhir.tasks import COMPARE, Search
from wegweiser.platform.db import as_utc

TASK_STATUSES = frozenset(
    {
        *("draft", "requested", "received", "accepted", "rejected", "ready", "cancelled"),
        *("in-progress", "on-hold", "failed", "completed", "entered-in-error"),
    }
)
"""FHIR R4's TaskStatus value set."""
PARAMETERS = (("status", "token"), ("_lastUpdated", "date"), ("_id", "token"), ("_count", "number"))
LARGEST_PAGE = 500


def _bad(name: str, message: str) -> FhirRefused:
    return FhirRefused(400, "invalid", "fhir.search-parameter", message, name)


def _moment(name: str, value: str) -> tuple[str, datetime]:
    prefix = value[:2] if value[:2] in COMPARE else "eq"
    text = value[2:] if value[:2] in COMPARE else value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _bad(name, f"{name}={value!r}: not a FHIR date or dateTime") from None
    return prefix, as_utc(moment).astimezone(UTC)  # stored in UTC


def parse(items: Iterable[tuple[str, str]]) -> Search:
    """Search terms from the query's (name, value) pairs; the same name twice is an AND,
    commas within one value an OR."""
    statuses: set[str] | None = None
    updated: list[tuple[str, datetime]] = []
    ids: set[str] = set()
    count = 100
    known = ", ".join(name for name, _ in PARAMETERS)
    for name, value in items:
        if name == "status":
            wanted = set(value.split(","))
            unknown = sorted(wanted - TASK_STATUSES)
            if unknown:
                raise _bad(name, f"status {', '.join(unknown)}: not a Task status")
            statuses = wanted if statuses is None else statuses & wanted
        elif name == "_lastUpdated":
            updated.append(_moment(name, value))
        elif name == "_id":
            ids |= set(value.split(","))
        elif name == "_count":
            if not value.isdigit() or not 0 < int(value) <= LARGEST_PAGE:
                raise _bad(name, f"_count={value!r}: a number from 1 to {LARGEST_PAGE}")
            count = int(value)
        else:
            raise _bad(name, f"unknown search parameter {name!r}: this server knows {known}")
    return Search(
        None if statuses is None else frozenset(statuses), tuple(updated), frozenset(ids), count
    )

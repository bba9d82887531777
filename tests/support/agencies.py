"""Agencies of the directory's catalogue built in a line, for the tests of resolution and of
what is said about its results (the sample directory's agencies are services/directory's)."""

from __future__ import annotations

from typing import Any

from schemas.vocabulary import AgencyKind, Need
from services.directory.catalogue import Agency

LUDWIGSLUST = "13076090"
"""The municipality key of Ludwigslust (county Ludwigslust-Parchim), the base agency's area."""

DEFAULTS: dict[str, Any] = {
    "id": "base",
    "name": "Beratungsstelle Beispiel",
    "kind": AgencyKind.MIGRATION_COUNSELLING,
    "needs": frozenset({Need.MIGRATION_COUNSELLING}),
    "languages": frozenset({"de", "ar"}),
    "areas": frozenset({LUDWIGSLUST}),
    "postcodes": frozenset({"19288"}),
    "counties": frozenset(),
    "remote": False,
    "min_age": None,
    "max_age": None,
    "capacity": 3,
    "waiting_days": 5,
    "status": "active",
    "channel": "nats",
    "sample": True,
}


def agency(**changes: Any) -> Agency:
    """A local migration counselling office in Ludwigslust, changed as given.

    Built afresh rather than with `dataclasses.replace`, which would carry over the counties
    derived from the base agency's areas.
    """
    return Agency(**{**DEFAULTS, **changes})

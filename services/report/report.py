"""The monitoring report for a period: its figures and those of the period before, protected
(`protection`), as one document that `render` writes as JSON, CSV with a Data Package, or
one offline HTML file in German and English."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.report import figures as fig
from services.report import privacy
from services.report.protection import (
    K_DEFAULT,
    Protected,
    check_k,
    protect,
    protect_alike,
    protect_linked,
)

SUPPRESSION = "suppression"
"""Small-cell suppression with complementary suppression (`protection`), the default."""

ALIKE = ("unmet-needs-by-area", "unmet-needs-by-language")
"""Tables that break the same groups (unmet needs by need) down two ways."""
LINKED = ("referrals-by-kind", "declines-and-failures-by-reason")
SHARED_COLUMNS = ("declined", "failed")
"""The declined and failed referrals are columns of both tables: their totals are the same
counts, and the second table's grand total is their sum."""


SHARES: dict[str, tuple[str, ...]] = {
    "acknowledged": ("taken-on", "completed", "declined", "failed", "forwarded"),
    "accepted": ("taken-on", "completed", "failed"),
    "completed": ("completed",),
}
"""The shares of a kind's referrals the report gives, and the states each adds up (a
referral declined, forwarded, failed or completed was seen by its agency first; one
withdrawn may or may not have been)."""


@dataclass
class Table:
    """One table of counts as published."""

    name: str
    protected: Protected[str]

    def shares(self, k: int) -> dict[str, dict[str, float]]:
        """By row, the shares of `SHARES` (referrals by kind only): each where the row's
        total is published and at least k and every count it adds is published, so that a
        share says nothing the published counts do not."""
        t = self.protected
        if self.name != "referrals-by-kind":
            return {}
        found: dict[str, dict[str, float]] = {}
        for r in t.rows:
            total = t.row_total(r)
            if total is None or total < k:
                continue
            for share, states in SHARES.items():
                counts = [t.cell(r, c) for c in states if c in t.columns]
                if all(n is not None for n in counts):
                    found.setdefault(str(r), {})[share] = round(sum(counts) / total, 3)  # type: ignore[arg-type]
        return found

    def as_dict(self) -> dict[str, Any]:
        t = self.protected
        return {
            "name": self.name,
            "rows": [str(r) for r in t.rows],
            "columns": [str(c) for c in t.columns],
            "cells": [[t.cell(r, c) for c in t.columns] for r in t.rows],
            "row_totals": [t.row_total(r) for r in t.rows],
            "column_totals": [t.column_total(c) for c in t.columns],
            "total": t.total(),
        }


@dataclass
class Times:
    """Durations in hours by group: median and 90th percentile where the group has k."""

    name: str
    groups: dict[str, tuple[float, float] | None]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": "hours",
            "groups": {
                g: None if v is None else {"median": round(v[0], 1), "p90": round(v[1], 1)}
                for g, v in self.groups.items()
            },
        }


@dataclass
class Part:
    """The protected figures of one period."""

    period: fig.Period
    tables: list[Table]
    times: list[Times]

    @property
    def empty(self) -> bool:
        """Whether the period holds nothing the report counts."""
        return all(t.protected.total() == 0 for t in self.tables)

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)

    def as_dict(self, k: int = K_DEFAULT) -> dict[str, Any]:
        return {
            "period": {"from": self.period.first.isoformat(), "to": self.period.last.isoformat()},
            "tables": [t.as_dict() for t in self.tables],
            "shares": {t.name: shares for t in self.tables if (shares := t.shares(k))},
            "timings": [t.as_dict() for t in self.times],
            "empty": self.empty,
        }


@dataclass
class Report:
    """The report: this period and the one before, side by side."""

    county: str | None
    k: int
    made_at: datetime
    current: Part
    previous: Part
    method: str = SUPPRESSION
    offered: dict[str, int] | None = None
    """How many active agencies speak each language (public: the directory's), if known."""
    spent: privacy.Spent | None = None
    """Under differential privacy: the budget the release spent (OpenDP's privacy map)."""

    def protection(self) -> dict[str, Any]:
        """Which method protected the figures, and what it spent."""
        if self.spent is not None:
            return {
                "method": self.method,
                "epsilon": round(self.spent.total, 6),
                "epsilon_per_table": round(self.spent.per_table, 6),
                "mechanism": "discrete Laplace (OpenDP make_laplace), sensitivity 1 per table",
                "unit": "one referral, unmet need, withdrawal or deletion",
                "note": "tables with public rows only; counts from noise, negatives shown as 0",
            }
        return {
            "method": self.method,
            "k": self.k,
            "note": "counts of 1 to k-1 are suppressed, and enough others with them that "
            "no suppressed count can be worked out from a total; times only for groups "
            "of at least k",
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "county": self.county,
            "protection": self.protection(),
            "made_at": self.made_at.isoformat(),
            "current": self.current.as_dict(self.k),
            "previous": self.previous.as_dict(self.k),
            "languages_offered": self.offered,
        }


def make(
    entries: Iterable[bytes | dict[str, Any]],
    period: fig.Period,
    county: str | None = None,
    k: int = K_DEFAULT,
    epsilon: float | None = None,
    offered: dict[str, int] | None = None,
) -> Report:
    """The report over the audit log's `entries`: suppressed below `k`, or, given `epsilon`,
    released with differential privacy (`privacy`); `offered`: how many agencies speak each
    language, to set against the languages asked for."""
    check_k(k)
    found = fig.facts(entries)
    now, before = fig.figures(found, period, county), fig.figures(found, period.before(), county)
    made = datetime.now(UTC)
    if epsilon is None:
        return Report(county, k, made, _part(now, k), _part(before, k), offered=offered)
    current, spent = _private(now, epsilon)
    previous = Part(before.period, [], [])  # released again, it would spend epsilon again
    return Report(county, k, made, current, previous, privacy.METHOD, offered, spent)


def _linked(counts: list[fig.Counts], k: int) -> dict[str, Protected[str]]:
    """The tables sharing the declined and failed columns, protected together
    (`protection.protect_linked`)."""
    done = protect_linked([(c.cells, c.rows, c.columns) for c in counts], SHARED_COLUMNS, k)
    return {c.name: table for c, table in zip(counts, done, strict=True)}


def _private(figures: fig.Figures, epsilon: float) -> tuple[Part, privacy.Spent]:
    released, spent = privacy.release(figures.counts, epsilon)
    return Part(figures.period, [Table(name, table) for name, table in released], []), spent


def _part(figures: fig.Figures, k: int) -> Part:
    alike = [c for c in figures.counts if c.name in ALIKE]
    protected = dict(
        zip(
            (c.name for c in alike),
            protect_alike([(c.cells, c.rows, c.columns) for c in alike], k),
            strict=True,
        )
    )
    protected |= _linked([c for c in figures.counts if c.name in LINKED], k)
    tables = [
        Table(c.name, protected.get(c.name) or protect(c.cells, c.rows, c.columns, k))
        for c in figures.counts
    ]
    times = [
        Times(
            t.name,
            {g: fig.median_and_p90(v) if len(v) >= k else None for g, v in t.groups.items()},
        )
        for t in figures.timings
    ]
    return Part(figures.period, tables, times)

"""The monitoring report's figures, from the audit log's entries alone (metadata: ids, kinds,
states, reason codes, times, places; never a person's data).

`facts` folds the entries into one record per referral, request, unmet need, withdrawal
and deletion; `figures` counts them for one period (and county) as tables of counts and
timings, which `protection` then makes safe to publish. A referral counts in the period
it was offered in; an unmet need, a withdrawal and a deletion request in the period they
happened in. Each table counts each referral, need or withdrawal once (its rows and
columns are a partition), so that its totals are the sums of its cells.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from schemas.vocabulary import (
    ACKNOWLEDGING_KINDS,
    REMINDER_KINDS,
    DeletionKind,
    OverdueKind,
    ReasonCode,
    ReferralStatus,
)

BERLIN = ZoneInfo("Europe/Berlin")


class BadPeriod(ValueError):
    """A period that ends before it begins, is over ten years long or lies outside this
    century (the period before it must be a day too)."""


EARLIEST, LATEST = date(2001, 1, 1), date(2099, 12, 31)
LONGEST_DAYS = 3660


@dataclass(frozen=True)
class Period:
    """Whole days, both included, as a day in Germany."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise BadPeriod(f"the period ends ({self.last}) before it begins ({self.first})")
        if self.first < EARLIEST or self.last > LATEST:
            raise BadPeriod(f"a period lies between {EARLIEST} and {LATEST}")
        if (self.last - self.first).days >= LONGEST_DAYS:
            raise BadPeriod(f"a period is at most {LONGEST_DAYS // 366} years long")

    def holds(self, at: datetime | None) -> bool:
        return at is not None and self.first <= at.astimezone(BERLIN).date() <= self.last

    def before(self) -> Period:
        """The period of the same length just before this one."""
        days = (self.last - self.first).days + 1
        return Period(self.first - timedelta(days=days), self.first - timedelta(days=1))

    def __str__(self) -> str:
        return f"{self.first.isoformat()} – {self.last.isoformat()}"


@dataclass
class Referral:
    """What the log says of one referral."""

    referral_id: str
    request_id: str | None = None
    kind: str | None = None
    agency: str | None = None
    offered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    accepted_at: datetime | None = None
    status: str | None = None
    reason: str | None = None
    reminded: bool = False
    escalated: bool = False


@dataclass
class Facts:
    """The log folded by what the report counts."""

    referrals: dict[str, Referral] = field(default_factory=dict)
    counties: dict[str, str | None] = field(default_factory=dict)
    """Request id -> the county of its place."""
    requests: dict[str, tuple[datetime | None, str]] = field(default_factory=dict)
    """Request id -> when it was recorded, and the person's first language."""
    consents: dict[str, str] = field(default_factory=dict)
    """Consent id -> request id."""
    unmet: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """(request id, need) -> the latest unmet-need entry's data."""
    withdrawals: list[tuple[datetime, str, str | None]] = field(default_factory=list)
    """(when, by whom, request id)."""
    deletions: dict[str, tuple[datetime | None, datetime | None]] = field(default_factory=dict)
    """Referral id -> (requested, confirmed)."""


def _time(value: Any) -> datetime | None:
    """A time the log kept; None for one it withheld or that cannot be (the log keeps what
    has the form of a time, such as 30 February: one such entry must not stop every report)."""
    if not isinstance(value, str):
        return None
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        return None
    return found if found.tzinfo is not None else None


def _code(value: Any) -> str:
    """A code the log kept, or `unknown` (absent, or withheld: not of its field's form)."""
    return value if isinstance(value, str) and value and value.isascii() else "unknown"


def _first(values: Any) -> str:
    """The first of a list of codes the log kept, or `unknown`."""
    return _code(values[0]) if isinstance(values, list) and values else "unknown"


def facts(entries: Iterable[bytes | dict[str, Any]]) -> Facts:
    """Fold the audit log's entries (as stored, or decoded)."""
    found = Facts()
    for raw in entries:
        entry = json.loads(raw) if isinstance(raw, bytes | str) else raw
        data, kind = entry.get("data") or {}, str(entry.get("type", ""))
        at = _time(data.get("occurred_at")) or _time(entry.get("time"))
        parts = kind.split(".")
        if kind.startswith("de.wegweiser.intake.request.recorded"):
            found.counties[data.get("request_id", "")] = data.get("county")
            first = _code(data.get("language"))
            found.requests[data.get("request_id", "")] = (
                _time(data.get("recorded_at")) or at,
                first,
            )
        elif kind.startswith("de.wegweiser.intake.consent.recorded"):
            found.consents[(data.get("terms") or {}).get("consent_id", "")] = data.get(
                "request_id", ""
            )
        elif kind.startswith("de.wegweiser.intake.need.unmet"):
            found.unmet[(data.get("request_id", ""), data.get("need", ""))] = {
                **data,
                "at": _time(data.get("recorded_at")) or at,
            }
        elif kind.startswith("de.wegweiser.intake.consent.withdrawn"):
            request = found.consents.get(data.get("consent_id", "")) or data.get("request_id")
            when = _time(data.get("withdrawn_at")) or at
            if when is not None:
                found.withdrawals.append((when, data.get("withdrawn_by") or "office", request))
        elif kind.startswith("de.wegweiser.intake.referral.requested"):
            referral = _referral(found, data)
            referral.kind, referral.agency = data.get("agency_kind"), data.get("agency_id")
            referral.request_id = data.get("request_id")
        elif kind.startswith("de.wegweiser.referral.") and len(parts) == 5:
            _change(found, _referral(found, data), parts[3], data, at)
    return found


def _referral(found: Facts, data: dict[str, Any]) -> Referral:
    rid = str(data.get("referral_id", ""))
    if rid not in found.referrals:
        found.referrals[rid] = Referral(rid)
    return found.referrals[rid]


def _change(
    found: Facts, referral: Referral, event: str, data: dict[str, Any], at: datetime | None
) -> None:
    referral.request_id = referral.request_id or data.get("request_id")
    referral.agency = referral.agency or data.get("agency_id")
    if event.startswith("deletion-"):
        requested, confirmed = found.deletions.get(referral.referral_id, (None, None))
        if event == DeletionKind.REQUESTED:
            requested = requested or at
        elif event == DeletionKind.CONFIRMED:
            confirmed = confirmed or at
        found.deletions[referral.referral_id] = (requested, confirmed)
        return
    if event == "refused" or event == "forward-requested":
        return
    if event == "offered":
        referral.offered_at = referral.offered_at or at
    if event in ACKNOWLEDGING_KINDS and referral.acknowledged_at is None:
        referral.acknowledged_at = at
    if event == ReferralStatus.ACCEPTED and referral.accepted_at is None:
        referral.accepted_at = at
    if event == OverdueKind.REMINDED:
        referral.reminded = True
    if event == OverdueKind.ESCALATED:
        referral.escalated = True
    if data.get("status"):
        referral.status = "expired" if event == OverdueKind.EXPIRED else data["status"]
    if data.get("reason") and event not in REMINDER_KINDS:
        referral.reason = data["reason"]


# --- the tables -------------------------------------------------------------------------------


OUTCOMES = (
    "open",
    "taken-on",
    "completed",
    "declined",
    "failed",
    "expired",
    "withdrawn",
    "forwarded",
)
"""Where a referral stands at the report's making (or ended), one column each."""

_OUTCOME_OF = {
    ReferralStatus.DRAFT: "open",
    ReferralStatus.REQUESTED: "open",
    ReferralStatus.RECEIVED: "open",
    ReferralStatus.ACCEPTED: "taken-on",
    ReferralStatus.IN_PROGRESS: "taken-on",
    ReferralStatus.ON_HOLD: "taken-on",
    ReferralStatus.COMPLETED: "completed",
    ReferralStatus.REJECTED: "declined",
    ReferralStatus.FAILED: "failed",
    ReferralStatus.CANCELLED: "withdrawn",
    ReferralStatus.FORWARDED: "forwarded",
}


def outcome(referral: Referral) -> str:
    if referral.status == OverdueKind.EXPIRED:
        return "expired"
    try:
        return _OUTCOME_OF[ReferralStatus(referral.status or "requested")]
    except ValueError:
        return "open"


@dataclass
class Counts:
    """One table of counts: a partition of what it counts by rows and columns."""

    name: str
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], int]


@dataclass
class Timing:
    """Durations in hours by group (the report shows their median and 90th percentile)."""

    name: str
    groups: dict[str, list[float]]


@dataclass
class Figures:
    """Everything the report shows for one period."""

    period: Period
    county: str | None
    counts: list[Counts]
    timings: list[Timing]


def _table(name: str, pairs: Iterable[tuple[str, str]], columns: Iterable[str] = ()) -> Counts:
    cells = Counter(pairs)
    rows = sorted({r for r, _ in cells})
    cols = list(columns) or sorted({c for _, c in cells})
    return Counts(name, rows, cols, dict(cells))


def _hours(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds() / 3600


def figures(found: Facts, period: Period, county: str | None = None) -> Figures:
    """The report's tables for one period, of one county or all."""

    def here(request_id: str | None) -> bool:
        return county is None or found.counties.get(request_id or "") == county

    referrals = [
        r for r in found.referrals.values() if period.holds(r.offered_at) and here(r.request_id)
    ]
    by_kind = _table(
        "referrals-by-kind",
        ((r.kind or "unknown", outcome(r)) for r in referrals),
        OUTCOMES,
    )
    unavailing = [r for r in referrals if outcome(r) in ("declined", "failed")]
    by_reason = _table(
        "declines-and-failures-by-reason",
        ((r.reason or ReasonCode.OTHER.value, outcome(r)) for r in unavailing),
        ("declined", "failed"),
    )
    overdue = _table(
        "overdue-by-agency",
        (
            (r.agency or "unknown", "escalated" if r.escalated else "reminded-only")
            for r in referrals
            if r.reminded or r.escalated
        ),
        ("reminded-only", "escalated"),
    )
    unmet = [
        u
        for u in found.unmet.values()
        if period.holds(u["at"]) and (county is None or u.get("county") == county)
    ]
    unmet_by_area = _table(
        "unmet-needs-by-area",
        (
            (
                _code(u.get("need")),
                _code(u.get("municipality") if county else u.get("county")),
            )
            for u in unmet
        ),
    )
    unmet_by_language = _table(
        "unmet-needs-by-language",
        ((_code(u.get("need")), _first(u.get("languages"))) for u in unmet),
    )
    unmet_requests = {request for request, _ in found.unmet}
    by_language = _table(
        "requests-by-language",
        (
            (language, "need-unmet" if request in unmet_requests else "needs-met")
            for request, (at, language) in found.requests.items()
            if period.holds(at) and here(request)
        ),
        ("needs-met", "need-unmet"),
    )
    withdrawals = _table(
        "withdrawals",
        (
            ("withdrawals", by)
            for at, by, request in found.withdrawals
            if period.holds(at) and here(request)
        ),
        ("office", "person"),
    )
    deletions = _table(
        "deletions",
        (
            ("deletions", "confirmed" if confirmed else "not-confirmed")
            for rid, (requested, confirmed) in found.deletions.items()
            if period.holds(requested) and here(_request_of(found, rid))
        ),
        ("confirmed", "not-confirmed"),
    )
    timings = [
        _timing(
            "time-to-acknowledgement",
            ((r.kind, _hours(r.offered_at, r.acknowledged_at)) for r in referrals),
        ),
        _timing(
            "time-to-acceptance",
            ((r.kind, _hours(r.offered_at, r.accepted_at)) for r in referrals),
        ),
        _timing(
            "time-to-deletion",
            (
                ("all", _hours(requested, confirmed))
                for rid, (requested, confirmed) in found.deletions.items()
                if period.holds(requested) and here(_request_of(found, rid))
            ),
        ),
    ]
    counts = [
        by_kind,
        by_reason,
        overdue,
        unmet_by_area,
        unmet_by_language,
        by_language,
        withdrawals,
        deletions,
    ]
    return Figures(period, county, counts, timings)


def _request_of(found: Facts, referral_id: str) -> str | None:
    referral = found.referrals.get(referral_id)
    return referral.request_id if referral else None


def _timing(name: str, values: Iterable[tuple[str | None, float | None]]) -> Timing:
    groups: dict[str, list[float]] = defaultdict(list)
    for group, hours in values:
        if hours is not None:
            groups[group or "unknown"].append(hours)
    return Timing(name, dict(sorted(groups.items())))


def median_and_p90(values: list[float]) -> tuple[float, float]:
    """The median and the 90th percentile (inclusive method: within the values' range)."""
    if len(values) == 1:
        return values[0], values[0]
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return statistics.median(values), deciles[-1]

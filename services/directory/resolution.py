"""Which agencies fit a query, ranked, with the reasons for every decision.

Hard constraints. An agency failing any of them is excluded, listing every one it fails:
  need      it offers the query's need (`need.not-offered`)
  area      the query's municipality is among its municipalities, or the query's postcode among
            its postcodes (local); or it is county-wide, or remote, and the query lies in its
            county (by the municipality key's first five digits, or the postcode via
            `COUNTY_POSTCODES`). Not checked when the query names no place (`area.outside`)
  language  it speaks at least one of the query's languages, when some are given; German counts
            only where listed (`language.not-offered`)
  age       the query's age lies within its min/max age, when an age is given (`age.outside-limits`)
  capacity  it has at least one free slot (`capacity.none`)
  active    it is active (`inactive`)

Score. Higher is better; the sum of these parts, each shown with its points on the reasons:
  area        local 3000, county-wide 2000, remote only 1000, no place asked 0
  languages   100 per shared language, at most 3 counted
  promptness  (60 - waiting days, not below 0) x 1 routine, x 4 soon, x 30 urgent
  capacity    1 per free slot, at most 10
For routine queries this ranks in effect lexicographically: one area step (1000) outweighs
languages, promptness and capacity together (at most 370), and one shared language (100)
outweighs promptness and capacity (at most 70). For urgent queries promptness reaches 1800,
so help five weeks sooner beats a closer agency. Equal scores rank by agency id ascending.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from services.directory import catalogue as c
from services.directory.catalogue import (
    COUNTY_POSTCODES,
    Agency,
    Candidate,
    Exclusion,
    Query,
    Reason,
    Resolution,
    Urgency,
)

AREA_POINTS = {
    c.MATCHED_MUNICIPALITY: 3000,
    c.MATCHED_POSTCODE: 3000,
    c.MATCHED_COUNTY: 2000,
    c.MATCHED_REMOTE: 1000,
    c.MATCHED_ANY_AREA: 0,
}
LANGUAGE_POINTS = 100
LANGUAGES_COUNTED = 3
WAITING_HORIZON_DAYS = 60
PROMPTNESS_WEIGHT = {Urgency.ROUTINE: 1, Urgency.SOON: 4, Urgency.URGENT: 30}
CAPACITY_COUNTED = 10


def resolve(
    query: Query,
    agencies: Iterable[Agency],
    *,
    county_postcodes: Mapping[str, frozenset[str]] = COUNTY_POSTCODES,
) -> Resolution:
    """Split agencies into ranked candidates and explained exclusions for one query."""
    languages = _wanted_languages(query)
    fitting: list[tuple[int, Agency, tuple[Reason, ...]]] = []
    excluded: list[Exclusion] = []
    for agency in agencies:
        area = _area(query, agency, county_postcodes)
        failures = _failures(query, agency, area, languages)
        if area is None or failures:
            excluded.append(Exclusion(agency, failures))
        else:
            fitting.append(_score(query, agency, area, languages))
    fitting.sort(key=lambda row: (-row[0], row[1].id))
    candidates = tuple(
        Candidate(agency, rank, score, reasons)
        for rank, (score, agency, reasons) in enumerate(fitting, start=1)
    )
    excluded.sort(key=lambda exclusion: exclusion.agency.id)
    return Resolution(query, candidates, tuple(excluded))


def _wanted_languages(query: Query) -> tuple[str, ...]:
    return tuple(dict.fromkeys(code.strip().lower() for code in query.languages if code.strip()))


def _area(
    query: Query, agency: Agency, county_postcodes: Mapping[str, frozenset[str]]
) -> Reason | None:
    """The area rule the agency meets for this query, or None when it serves elsewhere."""
    if query.municipality is None and query.postcode is None:
        return Reason(c.MATCHED_ANY_AREA, "no place given, so the area was not checked (+0)")
    if query.municipality in agency.municipalities:
        return _area_reason(
            c.MATCHED_MUNICIPALITY, f"serves municipality {_place(query.municipality)}"
        )
    if query.postcode in agency.postcodes:
        return _area_reason(c.MATCHED_POSTCODE, f"serves postcode {query.postcode}")
    in_county = (query.municipality or "").startswith(agency.county) or (
        query.postcode in county_postcodes.get(agency.county, frozenset())
    )
    if in_county and agency.county_wide:
        return _area_reason(c.MATCHED_COUNTY, f"serves all of county {agency.county}")
    if in_county and agency.remote:
        return _area_reason(c.MATCHED_REMOTE, f"helps remotely anywhere in county {agency.county}")
    return None


def _area_reason(code: str, text: str) -> Reason:
    return Reason(code, f"{text} (+{AREA_POINTS[code]})")


def _place(ags: str | None) -> str:
    name = c.MUNICIPALITIES.get(ags or "", ("",))[0]
    return f"{ags} ({name})" if name else str(ags)


def _failures(
    query: Query, agency: Agency, area: Reason | None, languages: tuple[str, ...]
) -> tuple[Reason, ...]:
    failures = []
    if query.need not in agency.needs:
        failures.append(Reason(c.EXCLUDED_NEED, f"does not offer {query.need}"))
    if area is None:
        where = " or ".join(
            f"{label} {value}"
            for label, value in (("municipality", query.municipality), ("postcode", query.postcode))
            if value is not None
        )
        failures.append(Reason(c.EXCLUDED_AREA, f"does not serve {where}"))
    if languages and not agency.languages.intersection(languages):
        failures.append(Reason(c.EXCLUDED_LANGUAGE, f"speaks none of {', '.join(languages)}"))
    if query.age is not None and not _age_fits(query.age, agency):
        failures.append(
            Reason(c.EXCLUDED_AGE, f"age {query.age} is outside the age limits ({_limits(agency)})")
        )
    if agency.capacity <= 0:
        failures.append(Reason(c.EXCLUDED_CAPACITY, "has no free slots"))
    if not agency.active:
        failures.append(Reason(c.EXCLUDED_INACTIVE, "is not taking referrals (inactive)"))
    return tuple(failures)


def _age_fits(age: int, agency: Agency) -> bool:
    above_min = agency.min_age is None or age >= agency.min_age
    return above_min and (agency.max_age is None or age <= agency.max_age)


def _limits(agency: Agency) -> str:
    low, high = agency.min_age, agency.max_age
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return f"{low} and over"
    return "none" if high is None else f"up to {high}"


def _score(
    query: Query, agency: Agency, area: Reason, languages: tuple[str, ...]
) -> tuple[int, Agency, tuple[Reason, ...]]:
    reasons = [area]
    score = AREA_POINTS[area.code]
    if languages:
        shared = [code for code in languages if code in agency.languages]
        points = LANGUAGE_POINTS * min(len(shared), LANGUAGES_COUNTED)
        reasons.append(Reason(c.MATCHED_LANGUAGE, f"speaks {', '.join(shared)} (+{points})"))
        score += points
    else:
        reasons.append(Reason(c.MATCHED_ANY_LANGUAGE, "no language asked for (+0)"))
    if query.age is not None:
        reasons.append(
            Reason(c.MATCHED_AGE, f"age {query.age} is within the age limits ({_limits(agency)})")
        )
    days_sooner = max(0, WAITING_HORIZON_DAYS - agency.waiting_days)
    points = days_sooner * PROMPTNESS_WEIGHT[query.urgency]
    reasons.append(
        Reason(
            c.MATCHED_WAITING,
            f"waiting time {agency.waiting_days} days (+{points} for a {query.urgency} request)",
        )
    )
    score += points
    points = min(agency.capacity, CAPACITY_COUNTED)
    reasons.append(Reason(c.MATCHED_CAPACITY, f"{agency.capacity} free slots (+{points})"))
    return score + points, agency, tuple(reasons)

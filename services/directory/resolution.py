"""Which agencies fit a query, ranked, with the reasons for every decision.

Considered. The agencies that offer the query's need, a broader one or a narrower one (see
`Need.related`) and are present where the query is: in its municipality, postcode or county,
or state-wide in its Land. Without a place, every agency offering the need. Agencies elsewhere
in Germany are not listed at all; those considered are either candidates or exclusions.

Hard constraints. A considered agency failing any of them is excluded, listing every one:
  area      the query's municipality is among its areas or the query's postcode among its
            postcodes (local); or its areas hold the query's county (county-wide) or Land
            (state-wide); or it helps remotely and is present in the query's county. One with
            no physical location serves county- or state-wide only remotely. The county
            is the municipality key's first five digits, or the gazetteer's for a postcode.
            Not checked when the query names no place (`area.outside`)
  language  it speaks at least one of the query's languages, when some are given; German counts
            only where listed (`language.not-offered`)
  age       the query's age lies within its min/max age, when an age is given (`age.outside-limits`)
  capacity  it has at least one free slot (`capacity.none`)
  active    its HSDS status is active (`inactive`)

Score. Higher is better; the sum of these parts, each shown with its points on the reasons:
  area        local 3000, county-wide 2000, state-wide 1500, remote only 1000, no place asked 0
  languages   100 per shared language, at most 3 counted
  need        50 when it offers the need itself or a narrower one, 0 for a broader one only
  promptness  (60 - waiting days, not below 0) x 1 routine, x 4 soon, x 30 urgent
  capacity    1 per free slot, at most 10
For routine queries this ranks in effect lexicographically: one area step (500 or more)
outweighs languages, need, promptness and capacity together (at most 420), and one shared
language (100) outweighs need, promptness and capacity (at most 120 — a specialised agency
with a long wait can trail a general one nearby by a language). For urgent queries promptness
reaches 1800, so help five weeks sooner beats a closer agency. Equal scores rank by agency id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace

from schemas.vocabulary import Need, Urgency
from services.directory import catalogue as c
from services.directory.catalogue import (
    Agency,
    Bridge,
    Candidate,
    Exclusion,
    Fact,
    Query,
    Reason,
    Resolution,
)
from services.directory.gazetteer import SAMPLE, Gazetteer

AREA_POINTS = {
    c.MATCHED_MUNICIPALITY: 3000,
    c.MATCHED_POSTCODE: 3000,
    c.MATCHED_COUNTY: 2000,
    c.MATCHED_STATE: 1500,
    c.MATCHED_REMOTE: 1000,
    c.MATCHED_ANY_AREA: 0,
}
ANY_AREA = Reason(
    c.MATCHED_ANY_AREA, "no place given, so the area was not checked (+0)", {"points": 0}
)
ANY_LANGUAGE = Reason(c.MATCHED_ANY_LANGUAGE, "no language asked for (+0)", {"points": 0})
"""The same for every agency of a query without a place, or without languages: made once."""
LANGUAGE_POINTS = 100
LANGUAGES_COUNTED = 3
WAITING_HORIZON_DAYS = 60
PROMPTNESS_WEIGHT = {Urgency.ROUTINE: 1, Urgency.SOON: 4, Urgency.URGENT: 30}
CAPACITY_COUNTED = 10
NEED_POINTS = 50


def resolve(query: Query, agencies: Iterable[Agency], gazetteer: Gazetteer = SAMPLE) -> Resolution:
    """Rank the agencies considered for one query, explain the ones excluded, and bridge a
    language gap with an interpreter when no agency speaks the person's language."""
    everyone = list(agencies)

    def ranked(query: Query) -> Resolution:
        counties = _counties(query, gazetteer)
        related = query.need.related()
        pool = [a for a in everyone if a.needs & related and _present(query, a, counties)]
        return _rank(query, pool, counties, gazetteer)

    return _bridged(ranked(query), ranked, gazetteer)


class Directory:
    """Agencies indexed by need and place, so one resolution looks only at those considered."""

    def __init__(self, agencies: Iterable[Agency], gazetteer: Gazetteer = SAMPLE) -> None:
        self.gazetteer = gazetteer
        self.agencies = {agency.id: agency for agency in agencies}
        self._by_need: dict[Need, list[Agency]] = defaultdict(list)
        self._by_place: dict[tuple[Need, str], list[Agency]] = defaultdict(list)
        for agency in sorted(self.agencies.values(), key=lambda a: a.id):
            places = {p for p in agency.areas if len(p) == 2} | agency.counties
            places |= {f"plz:{pc}" for pc in agency.postcodes}
            for need in agency.needs:
                self._by_need[need].append(agency)
                for place in places:
                    self._by_place[need, place].append(agency)

    def __len__(self) -> int:
        return len(self.agencies)

    def resolve(self, query: Query) -> Resolution:
        """The same answer as `resolve(query, all agencies)`, from the index."""
        return _bridged(self._ranked(query), self._ranked, self.gazetteer)

    def _ranked(self, query: Query) -> Resolution:
        counties = _counties(query, self.gazetteer)
        places = {p for county in counties for p in (county, county[:2])}
        if query.municipality:
            places.add(query.municipality[:5])
        if query.postcode:
            places.add(f"plz:{query.postcode}")
        pool: dict[str, Agency] = {}
        for need in query.need.related():
            if query.municipality is None and query.postcode is None:
                pool.update((a.id, a) for a in self._by_need.get(need, ()))
            for place in places:
                pool.update((a.id, a) for a in self._by_place.get((need, place), ()))
        return _rank(query, pool.values(), counties, self.gazetteer)


def _rank(
    query: Query, pool: Iterable[Agency], counties: frozenset[str], gazetteer: Gazetteer
) -> Resolution:
    languages = _wanted_languages(query)
    fitting: list[tuple[int, Agency, tuple[Reason, ...]]] = []
    excluded: list[Exclusion] = []
    for agency in pool:
        area = _area(query, agency, counties, gazetteer)
        failures = _failures(query, agency, area, languages, gazetteer)
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


def _counties(query: Query, gazetteer: Gazetteer) -> frozenset[str]:
    """The counties the query's place lies in."""
    if query.municipality is not None:
        return frozenset({query.municipality[:5]})
    if query.postcode is not None:
        return gazetteer.counties_of_postcode(query.postcode)
    return frozenset()


def _present(query: Query, agency: Agency, counties: frozenset[str]) -> bool:
    """Whether the agency is anywhere near the query's place (or no place was asked)."""
    if query.municipality is None and query.postcode is None:
        return True
    return bool(
        agency.counties & counties
        or any(county[:2] in agency.areas for county in counties)
        or query.postcode in agency.postcodes
        or query.municipality in agency.areas
    )


def _wanted_languages(query: Query) -> tuple[str, ...]:
    return tuple(dict.fromkeys(code.strip().lower() for code in query.languages if code.strip()))


def _bridged(
    found: Resolution, ranked: Callable[[Query], Resolution], gazetteer: Gazetteer
) -> Resolution:
    """`found`, with the language gap bridged: when the person asked for languages and no
    agency fits, each agency excluded for its languages alone is offered with the best
    interpreting service (ranked as `ranked` ranks one) that speaks one of the person's
    languages and one of the agency's. Each pair ranks by the agency's score without language
    points."""
    query, languages = found.query, _wanted_languages(found.query)
    if found.candidates or not languages or query.need.root is Need.INTERPRETING:
        return found
    only_language = [
        e.agency for e in found.excluded if [r.code for r in e.reasons] == [c.EXCLUDED_LANGUAGE]
    ]
    if not only_language:
        return found
    interpreters = ranked(replace(query, need=Need.INTERPRETING, age=None)).candidates
    counties = _counties(query, gazetteer)
    pairs = []
    for agency in only_language:
        interpreter = next(
            (
                i
                for i in interpreters
                if i.agency.id != agency.id and i.agency.languages & agency.languages
            ),
            None,
        )
        area = _area(query, agency, counties, gazetteer)
        if interpreter is None or area is None:
            continue
        score, _, reasons = _score(query, agency, area, ())
        bridge = _bridge_reason(languages, agency, interpreter.agency)
        reasons = tuple(bridge if r.code == c.MATCHED_ANY_LANGUAGE else r for r in reasons)
        pairs.append((score, agency, reasons, interpreter))
    pairs.sort(key=lambda row: (-row[0], row[1].id))
    bridges = tuple(
        Bridge(Candidate(agency, rank, score, reasons), interpreter)
        for rank, (score, agency, reasons, interpreter) in enumerate(pairs, start=1)
    )
    return replace(found, bridges=bridges)


def _bridge_reason(languages: tuple[str, ...], agency: Agency, interpreter: Agency) -> Reason:
    theirs = tuple(code for code in languages if code in interpreter.languages)
    shared = sorted(agency.languages & interpreter.languages)
    between = ("de",) if "de" in shared else tuple(shared[:1])  # into German where it can
    text = (
        f"speaks none of {', '.join(languages)}; {interpreter.id} interprets "
        f"{', '.join(theirs)} and {', '.join(between)} (+0)"
    )
    facts: dict[str, Fact] = {
        "languages": theirs,
        "between": between,
        "interpreter": interpreter.id,
        "interpreter_name": interpreter.name,
        "points": 0,
    }
    return Reason(c.BRIDGED_LANGUAGE, text, facts)


def _area(
    query: Query, agency: Agency, counties: frozenset[str], gazetteer: Gazetteer
) -> Reason | None:
    """The area rule the agency meets for this query, or None when it serves elsewhere."""
    if query.municipality is None and query.postcode is None:
        return ANY_AREA
    if query.municipality in agency.areas:
        where = f"municipality {gazetteer.label(query.municipality)}"
        name = gazetteer.name(query.municipality)
        return _area_reason(c.MATCHED_MUNICIPALITY, f"serves {where}", query.municipality, name)
    if query.postcode in agency.postcodes:
        text = f"serves postcode {query.postcode}"
        return _area_reason(c.MATCHED_POSTCODE, text, query.postcode, None)
    wide = [
        (c.MATCHED_COUNTY, f"all of county {k}", k, gazetteer.county_name(k))
        for k in sorted(counties)
        if k in agency.areas
    ]
    wide += [
        (c.MATCHED_STATE, f"all of Land {k[:2]}", k[:2], gazetteer.land_name(k[:2]))
        for k in sorted(counties)
        if k[:2] in agency.areas
    ]
    if wide and agency.in_person:
        code, text, place, name = wide[0]
        return _area_reason(code, f"serves {text}", place, name)
    shared = sorted(agency.counties & counties)
    if wide or (agency.remote and shared):
        _code, text, place, name = (
            wide[0]
            if wide
            else (
                c.MATCHED_REMOTE,
                f"county {shared[0]}",
                shared[0],
                gazetteer.county_name(shared[0]),
            )
        )
        return _area_reason(c.MATCHED_REMOTE, f"helps remotely in {text}", place, name)
    return None


def _area_reason(code: str, text: str, place: str, name: str | None) -> Reason:
    """An area rule met: `place` is the key it was met for, `name` its name if it has one (a
    postcode has none)."""
    points = AREA_POINTS[code]
    facts: dict[str, Fact] = {"points": points, "place": place, "place_name": name}
    return Reason(code, f"{text} (+{points})", facts)


def _failures(
    query: Query,
    agency: Agency,
    area: Reason | None,
    languages: tuple[str, ...],
    gazetteer: Gazetteer,
) -> tuple[Reason, ...]:
    failures = []
    if area is None:
        where = " or ".join(
            f"{label} {value}"
            for label, value in (("municipality", query.municipality), ("postcode", query.postcode))
            if value is not None
        )
        place = query.municipality or query.postcode
        name = gazetteer.name(query.municipality) if query.municipality else None
        facts: dict[str, Fact] = {"place": place, "place_name": name}
        failures.append(Reason(c.EXCLUDED_AREA, f"does not serve {where}", facts))
    if languages and not agency.languages.intersection(languages):
        failures.append(
            Reason(
                c.EXCLUDED_LANGUAGE,
                f"speaks none of {', '.join(languages)}",
                {"languages": languages},
            )
        )
    if query.age is not None and not _age_fits(query.age, agency):
        failures.append(
            Reason(
                c.EXCLUDED_AGE,
                f"age {query.age} is outside the age limits ({_limits(agency)})",
                _age_facts(query.age, agency),
            )
        )
    if agency.capacity <= 0:
        failures.append(Reason(c.EXCLUDED_CAPACITY, "has no free slots", {"slots": 0}))
    if not agency.active:
        failures.append(
            Reason(
                c.EXCLUDED_INACTIVE,
                f"is not taking referrals (status: {agency.status})",
                {"status": agency.status},
            )
        )
    return tuple(failures)


def _age_facts(age: int, agency: Agency) -> dict[str, Fact]:
    return {"age": age, "min_age": agency.min_age, "max_age": agency.max_age}


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
    offered = sorted(n for n in agency.needs if n in query.need.related())
    specific = [n for n in offered if n == query.need or n.value.startswith(query.need.value + ".")]
    points = NEED_POINTS if specific else 0
    named = tuple(n.value for n in specific or offered)
    reasons.append(
        Reason(
            c.MATCHED_NEED,
            f"offers {', '.join(named)} (+{points})",
            {"needs": named, "points": points},
        )
    )
    score += points
    if languages:
        shared = tuple(code for code in languages if code in agency.languages)
        points = LANGUAGE_POINTS * min(len(shared), LANGUAGES_COUNTED)
        reasons.append(
            Reason(
                c.MATCHED_LANGUAGE,
                f"speaks {', '.join(shared)} (+{points})",
                {"languages": shared, "points": points},
            )
        )
        score += points
    else:
        reasons.append(ANY_LANGUAGE)
    if query.age is not None:
        reasons.append(
            Reason(
                c.MATCHED_AGE,
                f"age {query.age} is within the age limits ({_limits(agency)})",
                _age_facts(query.age, agency),
            )
        )
    days_sooner = max(0, WAITING_HORIZON_DAYS - agency.waiting_days)
    points = days_sooner * PROMPTNESS_WEIGHT[query.urgency]
    reasons.append(
        Reason(
            c.MATCHED_WAITING,
            f"waiting time {agency.waiting_days} days (+{points} for a {query.urgency} request)",
            {"days": agency.waiting_days, "points": points, "urgency": query.urgency.value},
        )
    )
    score += points
    points = min(agency.capacity, CAPACITY_COUNTED)
    reasons.append(
        Reason(
            c.MATCHED_CAPACITY,
            f"{agency.capacity} free slots (+{points})",
            {"slots": agency.capacity, "points": points},
        )
    )
    return score + points, agency, tuple(reasons)

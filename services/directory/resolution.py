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

Listing. Asked with a limit, a resolution lists the best `limit` candidates and the first
`limit` exclusions by agency id, and counts them all: how many fit, how many were excluded,
and how many excluded agencies fail each hard constraint. A query without a place considers
thousands of agencies; only those listed are explained, so only they are worked out in full.
"""

from __future__ import annotations

import heapq
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple

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
NO_FREE_SLOTS = Reason(c.EXCLUDED_CAPACITY, "has no free slots", {"slots": 0})
LANGUAGE_POINTS = 100
LANGUAGES_COUNTED = 3
WAITING_HORIZON_DAYS = 60
PROMPTNESS_WEIGHT = {Urgency.ROUTINE: 1, Urgency.SOON: 4, Urgency.URGENT: 30}
CAPACITY_COUNTED = 10
NEED_POINTS = 50
REASONS_KEPT = 4096
"""How many reasons of each kind stay cached. One reason object serves every agency and query
it is true of: ranking thousands of agencies then makes few objects (and frees few)."""
RANK_SPAN = 1 << 32
"""A fitting agency ranks by one integer, `index - score * RANK_SPAN` (smaller is better):
by score, then by its place in the id-ordered pool (`index` < RANK_SPAN)."""


def resolve(
    query: Query,
    agencies: Iterable[Agency],
    gazetteer: Gazetteer = SAMPLE,
    limit: int | None = None,
) -> Resolution:
    """Rank the agencies considered for one query, explain the ones excluded, and bridge a
    language gap with an interpreter when no agency speaks the person's language; list at
    most `limit` candidates and exclusions (None: all)."""
    everyone = list(agencies)
    spoken = _Spoken()

    def ranked(query: Query, limit: int | None) -> _Ranked:
        counties = _counties(query, gazetteer)
        related = query.need.related()
        considered = [a for a in everyone if a.needs & related and _present(query, a, counties)]
        considered.sort(key=lambda a: a.id)
        rows = [(_facts(a, spoken), _offered(query.need, a.needs)) for a in considered]
        return _rank(query, _Pool.of(rows), counties, gazetteer, spoken, limit)

    return _bridged(ranked(query, limit), ranked, gazetteer)


class Directory:
    """Agencies indexed by the need asked and by place, so that one resolution looks only at
    those considered, with what does not depend on the rest of the query worked out once."""

    def __init__(self, agencies: Iterable[Agency], gazetteer: Gazetteer = SAMPLE) -> None:
        self.gazetteer = gazetteer
        self.agencies = {agency.id: agency for agency in agencies}
        by_need: dict[Need, list[_Row]] = {need: [] for need in Need}
        self._by_place: dict[tuple[Need, str], list[_Facts]] = defaultdict(list)
        """By a need offered and a place key (see `_places`)."""
        self._spoken = _Spoken()
        for agency in sorted(self.agencies.values(), key=lambda a: a.id):
            facts = _facts(agency, self._spoken)
            for asked in _considering(agency.needs):
                by_need[asked].append((facts, _offered(asked, agency.needs)))
            for place in _places(agency):
                for need in agency.needs:
                    self._by_place[need, place].append(facts)
        self._by_need = {need: _Pool.of(rows) for need, rows in by_need.items()}
        """By the need asked: those a query for it considers without a place."""

    def __len__(self) -> int:
        return len(self.agencies)

    def resolve(self, query: Query, limit: int | None = None) -> Resolution:
        """The same answer as `resolve(query, all agencies, limit=limit)`, from the index."""
        return _bridged(self._ranked(query, limit), self._ranked, self.gazetteer)

    def _ranked(self, query: Query, limit: int | None) -> _Ranked:
        counties = _counties(query, self.gazetteer)
        if query.municipality is None and query.postcode is None:
            everywhere = self._by_need[query.need]
            return _rank(query, everywhere, counties, self.gazetteer, self._spoken, limit)
        places = {p for county in counties for p in (county, county[:2])}
        if query.municipality:
            places.add(query.municipality[:5])
        if query.postcode:
            places.add(f"plz:{query.postcode}")
        near = {
            f.agency.id: f
            for need in query.need.related()
            for place in places
            for f in self._by_place.get((need, place), ())
        }
        nearby = [(near[id], _offered(query.need, near[id].agency.needs)) for id in sorted(near)]
        return _rank(query, _Pool.of(nearby), counties, self.gazetteer, self._spoken, limit)


class _Facts(NamedTuple):
    """What ranking reads of an agency, worked out once and kept together: a scan of thousands
    then stays in the CPU's caches."""

    agency: Agency
    languages: frozenset[str]
    language_bits: int
    """Its languages as `_Spoken` numbers them."""
    min_age: int | None
    max_age: int | None
    youngest: int
    oldest: int
    """The age limits as numbers, the open ends beyond any age."""
    waiting_days: int
    prompt_days: int
    """How many days it answers before the waiting horizon (promptness points per weight)."""
    slot_points: int
    free_slots: Reason
    unavailable: tuple[Reason, ...]
    """The hard constraints it fails whatever the query: no free slots, not active."""


class _Spoken:
    """The sets of languages agencies speak, each as one shared object (`sys.intern`ed codes)
    and as a number with one bit per language: whether an agency shares a query's languages,
    and how many, is then a bitwise and. One per index (or per full scan), filled as it is
    built and only read by queries."""

    def __init__(self) -> None:
        self._bit: dict[str, int] = {}
        self._sets: dict[frozenset[str], tuple[frozenset[str], int]] = {}

    def __call__(self, codes: frozenset[str]) -> tuple[frozenset[str], int]:
        known = self._sets.get(codes)
        if known is None:
            interned = frozenset(map(sys.intern, codes))
            bits = 0
            for code in interned:
                bits |= 1 << self._bit.setdefault(code, len(self._bit))
            known = self._sets[codes] = (interned, bits)
        return known

    def bits(self, codes: Iterable[str]) -> int:
        """A query's languages (without repeats) as bits; one no agency speaks has none."""
        return sum(1 << self._bit[code] for code in codes if code in self._bit)


class _Offered(NamedTuple):
    """What an agency offers of the need asked."""

    points: int
    reason: Reason


_Row = tuple[_Facts, _Offered]
"""An agency considered and what it offers of the need asked."""


class _Pool(NamedTuple):
    """The agencies a query considers, in id order, and how many of them fail each hard
    constraint that does not depend on where the query is or what languages it asks: an
    agency failing one is excluded whatever else, so these count exclusions without a look at
    each agency."""

    rows: Sequence[_Row]
    full: int
    inactive: int
    ages: dict[tuple[int, int], int]
    """How many agencies have each pair of age limits (`_Facts.youngest`, `.oldest`)."""

    @classmethod
    def of(cls, rows: Sequence[_Row]) -> _Pool:
        ages = Counter((facts.youngest, facts.oldest) for facts, _ in rows)
        unavailable = Counter(reason.code for facts, _ in rows for reason in facts.unavailable)
        return cls(rows, unavailable[c.EXCLUDED_CAPACITY], unavailable[c.EXCLUDED_INACTIVE], ages)

    def too_young_or_old(self, age: int | None) -> int:
        """How many are outside their age limits at `age` (none when no age is asked)."""
        if age is None:
            return 0
        return sum(
            n for (youngest, oldest), n in self.ages.items() if not youngest <= age <= oldest
        )


class _Ranked(NamedTuple):
    """A resolution before its language gap is bridged and, when no agency fits, every agency
    it excluded for its languages alone (listed or not): those a bridge may pair with an
    interpreter."""

    resolution: Resolution
    language_only: list[_Row]


def _facts(agency: Agency, spoken: _Spoken) -> _Facts:
    slot_points, free_slots = _free_slots(agency.capacity)
    unavailable: tuple[Reason, ...] = (NO_FREE_SLOTS,) if agency.capacity <= 0 else ()
    if not agency.active:
        unavailable += (_not_taking_referrals(agency.status),)
    languages, language_bits = spoken(agency.languages)
    return _Facts(
        agency,
        languages,
        language_bits,
        agency.min_age,
        agency.max_age,
        -sys.maxsize if agency.min_age is None else agency.min_age,
        sys.maxsize if agency.max_age is None else agency.max_age,
        agency.waiting_days,
        max(0, WAITING_HORIZON_DAYS - agency.waiting_days),
        slot_points,
        free_slots,
        unavailable,
    )


@lru_cache(maxsize=REASONS_KEPT)
def _considering(offered: frozenset[Need]) -> frozenset[Need]:
    """The needs asked for which an agency offering these is considered: those related to one
    of them (`related` is symmetric)."""
    return frozenset().union(*(need.related() for need in offered))


def _places(agency: Agency) -> set[str]:
    """The keys under which a query finds the agency near its place: the Länder it serves as a
    whole, the counties it is present in, and its postcodes (as `plz:` and the code)."""
    places = {p for p in agency.areas if len(p) == 2} | agency.counties
    return places | {f"plz:{pc}" for pc in agency.postcodes}


@dataclass(frozen=True, slots=True)
class _Asked:
    """What a query asks, worked out once for every agency it considers."""

    anywhere: bool
    languages: tuple[str, ...]
    age: int | None
    urgency: Urgency
    serves_elsewhere: tuple[Reason, ...]
    """The failure of an agency near the place asked that does not serve it."""
    speaks_none: tuple[Reason, ...]
    """The failure of an agency speaking none of the languages asked, if some were."""
    speaks_all: tuple[int, Reason]
    """The points and reason of one speaking all of them."""

    @classmethod
    def of(cls, query: Query, gazetteer: Gazetteer) -> _Asked:
        languages = _wanted_languages(query)
        return cls(
            anywhere=query.municipality is None and query.postcode is None,
            languages=languages,
            age=query.age,
            urgency=query.urgency,
            serves_elsewhere=(_serves_elsewhere(query, gazetteer),),
            speaks_none=(_speaks_none(languages),) if languages else (),
            speaks_all=_speaks(languages),
        )


def _rank(
    query: Query,
    pool: _Pool,
    counties: frozenset[str],
    gazetteer: Gazetteer,
    spoken: _Spoken,
    limit: int | None,
) -> _Ranked:
    """The candidates and exclusions among `pool`: every agency checked and counted, the best
    `limit` candidates and the first `limit` exclusions listed.

    The loop restates `_failures` and `_score` in cheap operations on `_Facts` (the property
    tests hold them to the same answers), and reasons are made for the listed agencies only:
    without a place a query considers thousands."""
    asked = _Asked.of(query, gazetteer)
    rows = pool.rows
    room = len(rows) if limit is None else limit
    anywhere, some_languages, age = asked.anywhere, bool(asked.languages), asked.age
    wanted = spoken.bits(asked.languages)
    language_points = [
        LANGUAGE_POINTS * min(n, LANGUAGES_COUNTED) for n in range(len(asked.languages) + 1)
    ]
    weight = PROMPTNESS_WEIGHT[asked.urgency]
    area: Reason | None = ANY_AREA
    area_points = 0
    areas: list[Reason | None] = []  # by index in `rows`, when the area depends on the agency
    ranks: list[int] = []  # of the fitting agencies, see RANK_SPAN
    listed: list[Exclusion] = []
    serving_elsewhere = speaking_none = 0
    for index, (facts, offered) in enumerate(rows):
        if not anywhere:
            area = _area(query, facts.agency, counties, gazetteer)
            areas.append(area)
            if area is None:
                serving_elsewhere += 1
            else:
                area_points = AREA_POINTS[area.code]
        shared = facts.language_bits & wanted
        if some_languages and not shared:
            speaking_none += 1
        elif (
            area is not None
            and not facts.unavailable
            and (age is None or facts.youngest <= age <= facts.oldest)
        ):
            score = area_points + offered.points + facts.slot_points + facts.prompt_days * weight
            ranks.append(index - (score + language_points[shared.bit_count()]) * RANK_SPAN)
            continue
        if len(listed) < room:
            listed.append(Exclusion(facts.agency, _failures(asked, facts, area)))
    failing = {
        c.EXCLUDED_AREA: serving_elsewhere,
        c.EXCLUDED_LANGUAGE: speaking_none,
        c.EXCLUDED_AGE: pool.too_young_or_old(age),
        c.EXCLUDED_CAPACITY: pool.full,
        c.EXCLUDED_INACTIVE: pool.inactive,
    }
    language_only = []
    if not ranks and speaking_none:  # only then is there a gap to bridge
        for index, (facts, offered) in enumerate(rows):
            met = ANY_AREA if anywhere else areas[index]
            if _failures(asked, facts, met) == asked.speaks_none:
                language_only.append((facts, offered))
    best = heapq.nsmallest(room, ranks) if room < len(ranks) else sorted(ranks)
    candidates = []
    for rank, key in enumerate(best, start=1):
        index = key % RANK_SPAN
        facts, offered = rows[index]
        met = ANY_AREA if anywhere else areas[index]
        assert met is not None  # it fits
        score, agency, reasons = _score(asked, facts, offered, met)
        candidates.append(Candidate(agency, rank, score, reasons))
    resolution = Resolution(
        query,
        tuple(candidates),
        tuple(listed),
        candidates_total=len(ranks),
        excluded_total=len(rows) - len(ranks),
        excluded_by_reason=tuple(sorted((code, n) for code, n in failing.items() if n)),
    )
    return _Ranked(resolution, language_only)


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
    found: _Ranked, ranked: Callable[[Query, int | None], _Ranked], gazetteer: Gazetteer
) -> Resolution:
    """`found`, with the language gap bridged: when the person asked for languages and no
    agency fits, each agency excluded for its languages alone is offered with the best
    interpreting service (ranked as `ranked` ranks one) that speaks one of the person's
    languages and one of the agency's. Each pair ranks by the agency's score without language
    points."""
    query, languages = found.resolution.query, _wanted_languages(found.resolution.query)
    if (
        found.resolution.candidates
        or not found.language_only
        or query.need.root is Need.INTERPRETING
    ):
        return found.resolution
    interpreting = replace(query, need=Need.INTERPRETING, age=None)
    interpreters = ranked(interpreting, None).resolution.candidates
    counties = _counties(query, gazetteer)
    unspoken = _Asked.of(replace(query, languages=()), gazetteer)
    pairs = []
    for facts, offered in found.language_only:
        agency = facts.agency
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
        score, _, reasons = _score(unspoken, facts, offered, area)
        bridge = _bridge_reason(languages, agency, interpreter.agency)
        reasons = tuple(bridge if r.code == c.MATCHED_ANY_LANGUAGE else r for r in reasons)
        pairs.append((score, agency, reasons, interpreter))
    pairs.sort(key=lambda row: (-row[0], row[1].id))
    bridges = tuple(
        Bridge(Candidate(agency, rank, score, reasons), interpreter)
        for rank, (score, agency, reasons, interpreter) in enumerate(pairs, start=1)
    )
    return replace(found.resolution, bridges=bridges)


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


@lru_cache(maxsize=REASONS_KEPT)
def _area_reason(code: str, text: str, place: str, name: str | None) -> Reason:
    """An area rule met: `place` is the key it was met for, `name` its name if it has one (a
    postcode has none)."""
    points = AREA_POINTS[code]
    facts: dict[str, Fact] = {"points": points, "place": place, "place_name": name}
    return Reason(code, f"{text} (+{points})", facts)


def _serves_elsewhere(query: Query, gazetteer: Gazetteer) -> Reason:
    where = " or ".join(
        f"{label} {value}"
        for label, value in (("municipality", query.municipality), ("postcode", query.postcode))
        if value is not None
    )
    place = query.municipality or query.postcode
    name = gazetteer.name(query.municipality) if query.municipality else None
    facts: dict[str, Fact] = {"place": place, "place_name": name}
    return Reason(c.EXCLUDED_AREA, f"does not serve {where}", facts)


def _speaks_none(languages: tuple[str, ...]) -> Reason:
    return Reason(
        c.EXCLUDED_LANGUAGE, f"speaks none of {', '.join(languages)}", {"languages": languages}
    )


def _failures(asked: _Asked, facts: _Facts, area: Reason | None) -> tuple[Reason, ...]:
    """Every hard constraint the agency fails, in the order of the module docstring."""
    failures = asked.serves_elsewhere if area is None else ()
    if asked.speaks_none and facts.languages.isdisjoint(asked.languages):
        failures += asked.speaks_none
    if asked.age is not None and not _age_fits(asked.age, facts.min_age, facts.max_age):
        failures += (_outside_age(asked.age, facts.min_age, facts.max_age),)
    return failures + facts.unavailable


@lru_cache(maxsize=REASONS_KEPT)
def _not_taking_referrals(status: str) -> Reason:
    return Reason(
        c.EXCLUDED_INACTIVE, f"is not taking referrals (status: {status})", {"status": status}
    )


@lru_cache(maxsize=REASONS_KEPT)
def _outside_age(age: int, low: int | None, high: int | None) -> Reason:
    text = f"age {age} is outside the age limits ({_limits(low, high)})"
    return Reason(c.EXCLUDED_AGE, text, _age_facts(age, low, high))


@lru_cache(maxsize=REASONS_KEPT)
def _within_age(age: int, low: int | None, high: int | None) -> Reason:
    text = f"age {age} is within the age limits ({_limits(low, high)})"
    return Reason(c.MATCHED_AGE, text, _age_facts(age, low, high))


def _age_facts(age: int, low: int | None, high: int | None) -> dict[str, Fact]:
    return {"age": age, "min_age": low, "max_age": high}


def _age_fits(age: int, low: int | None, high: int | None) -> bool:
    return (low is None or age >= low) and (high is None or age <= high)


def _limits(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return f"{low} and over"
    return "none" if high is None else f"up to {high}"


def _score(
    asked: _Asked, facts: _Facts, offered: _Offered, area: Reason
) -> tuple[int, Agency, tuple[Reason, ...]]:
    if not asked.languages:
        language_points, speaks = 0, ANY_LANGUAGE
    elif facts.languages.issuperset(asked.languages):  # always so when one was asked
        language_points, speaks = asked.speaks_all
    else:
        shared = tuple(filter(facts.languages.__contains__, asked.languages))
        language_points, speaks = _speaks(shared)
    promptness, waiting = _waiting(facts.waiting_days, asked.urgency)
    score = AREA_POINTS[area.code] + offered.points + language_points + promptness
    score += facts.slot_points
    if asked.age is None:
        return score, facts.agency, (area, offered.reason, speaks, waiting, facts.free_slots)
    within = _within_age(asked.age, facts.min_age, facts.max_age)
    reasons = (area, offered.reason, speaks, within, waiting, facts.free_slots)
    return score, facts.agency, reasons


def _offered(asked: Need, needs: frozenset[Need]) -> _Offered:
    """What an agency offering `needs` offers of the need asked: full points for the need
    itself or a narrower one, none for a broader one only."""
    return _offered_related(asked, needs & asked.related())


@lru_cache(maxsize=REASONS_KEPT)
def _offered_related(asked: Need, related: frozenset[Need]) -> _Offered:
    offered = sorted(related)
    specific = [n for n in offered if n == asked or n.value.startswith(asked.value + ".")]
    points = NEED_POINTS if specific else 0
    named = tuple(n.value for n in specific or offered)
    text = f"offers {', '.join(named)} (+{points})"
    return _Offered(points, Reason(c.MATCHED_NEED, text, {"needs": named, "points": points}))


@lru_cache(maxsize=REASONS_KEPT)
def _speaks(shared: tuple[str, ...]) -> tuple[int, Reason]:
    points = LANGUAGE_POINTS * min(len(shared), LANGUAGES_COUNTED)
    text = f"speaks {', '.join(shared)} (+{points})"
    return points, Reason(c.MATCHED_LANGUAGE, text, {"languages": shared, "points": points})


@lru_cache(maxsize=REASONS_KEPT)
def _waiting(days: int, urgency: Urgency) -> tuple[int, Reason]:
    points = max(0, WAITING_HORIZON_DAYS - days) * PROMPTNESS_WEIGHT[urgency]
    text = f"waiting time {days} days (+{points} for a {urgency} request)"
    facts: dict[str, Fact] = {"days": days, "points": points, "urgency": urgency.value}
    return points, Reason(c.MATCHED_WAITING, text, facts)


@lru_cache(maxsize=REASONS_KEPT)
def _free_slots(capacity: int) -> tuple[int, Reason]:
    points = min(capacity, CAPACITY_COUNTED)
    text = f"{capacity} free slots (+{points})"
    return points, Reason(c.MATCHED_CAPACITY, text, {"slots": capacity, "points": points})

"""The directory's resolution: who fits a query, in which order, and why; and the sample data."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, SQLModel, create_engine

from schemas.vocabulary import AgencyKind, Need, Urgency
from services.directory import catalogue as c
from services.directory import importer, profile, store
from services.directory.catalogue import Agency, Query, Resolution
from services.directory.gazetteer import SAMPLE as GAZETTEER
from services.directory.gazetteer import Gazetteer, Municipality
from services.directory.resolution import Directory, resolve
from services.directory.sample import SAMPLE_PATH
from tests.support.agencies import LUDWIGSLUST, agency

LUP, OA = "13076", "09780"
MV, BY = "13", "09"
PARCHIM, HAGENOW, SONTHOFEN = "13076108", "13076060", "09780139"


def local(id: str, **changes: Any) -> Agency:
    return agency(id=id, **changes)


def county_wide(id: str, county: str = LUP, **changes: Any) -> Agency:
    return agency(id=id, areas=frozenset({county}), postcodes=frozenset(), **changes)


def state_wide(id: str, land: str = MV, **changes: Any) -> Agency:
    return agency(id=id, areas=frozenset({land}), postcodes=frozenset(), **changes)


def remote_only(id: str, **changes: Any) -> Agency:
    """Present in Parchim only, helping the rest of the county remotely."""
    return agency(
        id=id, areas=frozenset({PARCHIM}), postcodes=frozenset({"19370"}), remote=True, **changes
    )


ASK = Query(need=Need.MIGRATION_COUNSELLING, languages=("ar",), municipality=LUDWIGSLUST, age=30)


def ask(**changes: Any) -> Query:
    """The base query, changed as given."""
    return replace(ASK, **changes)


def ranked(resolution: Resolution) -> list[tuple[str, str]]:
    """Each candidate's id and the area rule it matched by, best first."""
    return [(x.agency.id, x.reasons[0].code) for x in resolution.candidates]


def listed_ids(resolution: Resolution) -> list[str]:
    return [x.agency.id for x in resolution.candidates] + [x.agency.id for x in resolution.excluded]


# --- Exclusions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agency_changes", "query_changes", "code", "text"),
    [
        pytest.param(
            {},
            {"municipality": PARCHIM},
            c.EXCLUDED_AREA,
            f"does not serve municipality {PARCHIM}",
            id="area: a local agency of the same county serving other municipalities",
        ),
        pytest.param(
            {},
            {"municipality": None, "postcode": "19370"},
            c.EXCLUDED_AREA,
            "does not serve postcode 19370",
            id="area: a local agency of the same county serving other postcodes",
        ),
        pytest.param(
            {},
            {"languages": ("fa", "ps")},
            c.EXCLUDED_LANGUAGE,
            "speaks none of fa, ps",
            id="language: speaks none of the languages",
        ),
        pytest.param(
            {"languages": frozenset({"ar"})},
            {"languages": ("de",)},
            c.EXCLUDED_LANGUAGE,
            "speaks none of de",
            id="language: German is not assumed",
        ),
        pytest.param(
            {"min_age": 27},
            {"age": 19},
            c.EXCLUDED_AGE,
            "age 19 is outside the age limits (27 and over)",
            id="age: below the minimum",
        ),
        pytest.param(
            {"min_age": 12, "max_age": 27},
            {"age": 28},
            c.EXCLUDED_AGE,
            "age 28 is outside the age limits (12 to 27)",
            id="age: above the maximum",
        ),
        pytest.param(
            {"max_age": 17},
            {"age": 18},
            c.EXCLUDED_AGE,
            "age 18 is outside the age limits (up to 17)",
            id="age: above a maximum without a minimum",
        ),
        pytest.param(
            {"capacity": 0},
            {},
            c.EXCLUDED_CAPACITY,
            "has no free slots",
            id="capacity: no free slots",
        ),
        pytest.param(
            {"status": "temporarily closed"},
            {},
            c.EXCLUDED_INACTIVE,
            "is not taking referrals (status: temporarily closed)",
            id="inactive: temporarily closed",
        ),
        pytest.param(
            {"status": "defunct"},
            {},
            c.EXCLUDED_INACTIVE,
            "is not taking referrals (status: defunct)",
            id="inactive: defunct",
        ),
    ],
)
def test_an_agency_failing_one_hard_constraint_is_excluded_with_exactly_that_reason(
    agency_changes, query_changes, code, text
):
    resolution = resolve(ask(**query_changes), [agency(**agency_changes)])
    assert resolution.candidates == ()
    (exclusion,) = resolution.excluded
    assert exclusion.agency.id == "base"
    assert exclusion.reasons == (c.Reason(code, text),)


def test_the_unchanged_agency_of_the_exclusion_table_is_a_candidate():
    """The exclusion cases above fail because of their change, not because of the base."""
    resolution = resolve(ASK, [agency()])
    assert [x.agency.id for x in resolution.candidates] == ["base"]
    assert resolution.excluded == ()


@pytest.mark.parametrize("age", [12, 19, 27])
def test_ages_at_and_within_the_limits_fit(age):
    (candidate,) = resolve(ask(age=age), [agency(min_age=12, max_age=27)]).candidates
    assert c.Reason(c.MATCHED_AGE, f"age {age} is within the age limits (12 to 27)") in (
        candidate.reasons
    )


def test_no_age_given_is_no_constraint():
    resolution = resolve(ask(age=None), [agency(min_age=27, max_age=27)])
    assert [r.code for r in resolution.candidates[0].reasons if r.code.startswith("age")] == []


def test_an_agency_failing_every_hard_constraint_lists_every_reason_in_order():
    failing = agency(min_age=40, capacity=0, status="inactive")
    query = ask(municipality=PARCHIM, languages=("fa",), age=19)
    resolution = resolve(query, [failing])
    assert resolution.candidates == ()
    (exclusion,) = resolution.excluded
    assert [r.code for r in exclusion.reasons] == [
        c.EXCLUDED_AREA,
        c.EXCLUDED_LANGUAGE,
        c.EXCLUDED_AGE,
        c.EXCLUDED_CAPACITY,
        c.EXCLUDED_INACTIVE,
    ]
    assert "status: inactive" in exclusion.reasons[-1].text


def test_an_agency_failing_two_constraints_lists_both_and_nothing_else():
    resolution = resolve(ASK, [agency(capacity=0, status="temporarily closed")])
    (exclusion,) = resolution.excluded
    assert [r.code for r in exclusion.reasons] == [c.EXCLUDED_CAPACITY, c.EXCLUDED_INACTIVE]


def test_exclusions_are_listed_by_agency_id():
    full = [agency(id=name, capacity=0) for name in ("mbe-c", "mbe-a", "mbe-b")]
    assert [x.agency.id for x in resolve(ASK, full).excluded] == ["mbe-a", "mbe-b", "mbe-c"]


def test_language_codes_in_the_query_match_regardless_of_case_and_spaces():
    (candidate,) = resolve(ask(languages=(" AR", "")), [agency()]).candidates
    assert candidate.reasons[2] == c.Reason(c.MATCHED_LANGUAGE, "speaks ar (+100)")


def test_no_language_asked_for_is_no_constraint():
    query = ask(languages=())
    (candidate,) = resolve(query, [agency(languages=frozenset({"uk"}))]).candidates
    assert c.Reason(c.MATCHED_ANY_LANGUAGE, "no language asked for (+0)") in candidate.reasons


# --- Ranking -------------------------------------------------------------------------------------

MUNICIPALITY, POSTCODE, COUNTY, STATE, REMOTE, ANY = (
    c.MATCHED_MUNICIPALITY,
    c.MATCHED_POSTCODE,
    c.MATCHED_COUNTY,
    c.MATCHED_STATE,
    c.MATCHED_REMOTE,
    c.MATCHED_ANY_AREA,
)
THREE = ("ar", "de", "en")
SHARED_THREE = frozenset(THREE)


@pytest.mark.parametrize(
    ("query", "agencies", "expected"),
    [
        pytest.param(
            ask(languages=THREE),
            [
                remote_only("a-remote", languages=SHARED_THREE),
                state_wide("b-state", languages=SHARED_THREE),
                county_wide("c-county", languages=SHARED_THREE),
                local("d-local", languages=frozenset({"ar"}), waiting_days=60, capacity=1),
            ],
            [
                ("d-local", MUNICIPALITY),
                ("c-county", COUNTY),
                ("b-state", STATE),
                ("a-remote", REMOTE),
            ],
            id="local beats county-wide beats state-wide beats remote, whatever else",
        ),
        pytest.param(
            ASK,
            [
                county_wide("a-virtual", in_person=False, remote=True, waiting_days=0),
                state_wide("b-virtual-state", in_person=False, remote=True, waiting_days=0),
                county_wide("c-county", waiting_days=60),
            ],
            [("c-county", COUNTY), ("a-virtual", REMOTE), ("b-virtual-state", REMOTE)],
            id="a service without a physical location serves its county and Land remotely",
        ),
        pytest.param(
            ask(languages=("ar", "fa")),
            [local("a-one"), local("b-both", languages=frozenset({"ar", "fa"}))],
            [("b-both", MUNICIPALITY), ("a-one", MUNICIPALITY)],
            id="more shared languages rank higher",
        ),
        pytest.param(
            ask(languages=("ar", "de", "en", "fa")),
            [
                local("z-four", languages=frozenset({"ar", "de", "en", "fa"})),
                local("a-three", languages=SHARED_THREE),
            ],
            [("a-three", MUNICIPALITY), ("z-four", MUNICIPALITY)],
            id="at most three shared languages count",
        ),
        pytest.param(
            ask(languages=("ar", "fa")),
            [
                local("a-specific", needs=frozenset({Need.MIGRATION_COUNSELLING})),
                local("b-more-languages", languages=frozenset({"ar", "fa"}), waiting_days=60),
            ],
            [("b-more-languages", MUNICIPALITY), ("a-specific", MUNICIPALITY)],
            id="one shared language outweighs need, promptness and capacity",
        ),
        pytest.param(
            ask(need=Need.ADULT_MIGRATION_COUNSELLING),
            [
                local("a-broader", needs=frozenset({Need.MIGRATION_COUNSELLING})),
                local("b-exact", needs=frozenset({Need.ADULT_MIGRATION_COUNSELLING})),
            ],
            [("b-exact", MUNICIPALITY), ("a-broader", MUNICIPALITY)],
            id="the need itself beats a broader need only",
        ),
        pytest.param(
            ask(languages=("ar", "fa")),
            [
                local("a-slow", languages=frozenset({"ar", "fa"}), waiting_days=20),
                local("b-fast", waiting_days=0),
            ],
            [("a-slow", MUNICIPALITY), ("b-fast", MUNICIPALITY)],
            id="routine: a shared language beats waiting 20 days less",
        ),
        pytest.param(
            ask(languages=("ar", "fa"), urgency=Urgency.URGENT),
            [
                local("a-slow", languages=frozenset({"ar", "fa"}), waiting_days=20),
                local("b-fast", waiting_days=0),
            ],
            [("b-fast", MUNICIPALITY), ("a-slow", MUNICIPALITY)],
            id="urgent: waiting 20 days less beats a shared language",
        ),
        pytest.param(
            ask(urgency=Urgency.URGENT),
            [local("a-local", waiting_days=40), county_wide("b-county", waiting_days=0)],
            [("b-county", COUNTY), ("a-local", MUNICIPALITY)],
            id="urgent: help five weeks sooner beats a closer agency",
        ),
        pytest.param(
            ask(urgency=Urgency.SOON),
            [local("a-local", waiting_days=40), county_wide("b-county", waiting_days=0)],
            [("a-local", MUNICIPALITY), ("b-county", COUNTY)],
            id="soon: the closer agency still wins",
        ),
        pytest.param(
            ask(urgency=Urgency.URGENT),
            [local("a-never", waiting_days=90), local("b-horizon", waiting_days=60, capacity=4)],
            [("b-horizon", MUNICIPALITY), ("a-never", MUNICIPALITY)],
            id="waits beyond the horizon earn nothing, not less than nothing",
        ),
        pytest.param(
            ASK,
            [local("a-small", capacity=1), local("b-roomy", capacity=8)],
            [("b-roomy", MUNICIPALITY), ("a-small", MUNICIPALITY)],
            id="more free slots rank higher when all else is equal",
        ),
        pytest.param(
            ASK,
            [local("a-ten", capacity=10), local("b-many", capacity=40)],
            [("a-ten", MUNICIPALITY), ("b-many", MUNICIPALITY)],
            id="at most ten free slots count",
        ),
        pytest.param(
            ASK,
            [local("mbe-c"), local("mbe-a"), local("mbe-b")],
            [("mbe-a", MUNICIPALITY), ("mbe-b", MUNICIPALITY), ("mbe-c", MUNICIPALITY)],
            id="equal scores rank by agency id",
        ),
        pytest.param(
            ask(municipality=None, postcode="19370"),
            [
                state_wide("a-state"),
                county_wide("b-county"),
                local("c-parchim", areas=frozenset({PARCHIM}), postcodes=frozenset({"19370"})),
                county_wide("d-allgaeu", county=OA),
                state_wide("e-bavaria", land=BY),
            ],
            [("c-parchim", POSTCODE), ("b-county", COUNTY), ("a-state", STATE)],
            id="a postcode-only query is placed in its county by the gazetteer",
        ),
        pytest.param(
            ask(municipality=None, postcode=None),
            [
                county_wide("a-allgaeu", county=OA, waiting_days=30),
                local("b-ludwigslust"),
                state_wide("c-bavaria", land=BY, waiting_days=0, capacity=10),
            ],
            [("c-bavaria", ANY), ("b-ludwigslust", ANY), ("a-allgaeu", ANY)],
            id="without a place every agency offering the need fits and area scores nothing",
        ),
    ],
)
def test_candidates_rank_as_the_rules_say(query, agencies, expected):
    resolution = resolve(query, agencies)
    assert ranked(resolution) == expected
    assert [x.rank for x in resolution.candidates] == list(range(1, len(expected) + 1))
    assert resolution.excluded == ()


def test_ranking_does_not_depend_on_the_order_agencies_are_given_in():
    agencies = [local(name) for name in ("mbe-c", "mbe-a", "mbe-b")] + [county_wide("lk")]
    assert resolve(ASK, agencies) == resolve(ASK, list(reversed(agencies)))


def test_a_candidate_carries_the_reasons_for_every_point_of_its_score():
    (candidate,) = resolve(ASK, [agency()]).candidates
    assert candidate.rank == 1
    assert candidate.reasons == (
        c.Reason(c.MATCHED_MUNICIPALITY, "serves municipality 13076090 (Ludwigslust) (+3000)"),
        c.Reason(c.MATCHED_NEED, "offers migration-counselling (+50)"),
        c.Reason(c.MATCHED_LANGUAGE, "speaks ar (+100)"),
        c.Reason(c.MATCHED_AGE, "age 30 is within the age limits (none)"),
        c.Reason(c.MATCHED_WAITING, "waiting time 5 days (+55 for a routine request)"),
        c.Reason(c.MATCHED_CAPACITY, "3 free slots (+3)"),
    )
    assert candidate.score == 3000 + 50 + 100 + 55 + 3


@pytest.mark.parametrize("rank", [resolve, lambda query, found: Directory(found).resolve(query)])
def test_reasons_made_once_for_many_agencies_and_queries_carry_each_ones_own_facts(rank):
    """A reason is made once and reused wherever it is true; as reasons compare without their
    facts, this checks that each agency and query still gets its own."""
    agencies = [
        local("a", waiting_days=5, capacity=3, min_age=18),
        local("b", waiting_days=30, capacity=12, languages=frozenset({"ar", "fa"})),
    ]
    for urgency, weight in ((Urgency.ROUTINE, 1), (Urgency.URGENT, 30), (Urgency.ROUTINE, 1)):
        expected = {
            "a": {
                c.MATCHED_LANGUAGE: {"languages": ("ar",), "points": 100},
                c.MATCHED_AGE: {"age": 30, "min_age": 18, "max_age": None},
                c.MATCHED_WAITING: {"days": 5, "points": 55 * weight, "urgency": urgency.value},
                c.MATCHED_CAPACITY: {"slots": 3, "points": 3},
            },
            "b": {
                c.MATCHED_LANGUAGE: {"languages": ("fa", "ar"), "points": 200},
                c.MATCHED_AGE: {"age": 30, "min_age": None, "max_age": None},
                c.MATCHED_WAITING: {"days": 30, "points": 30 * weight, "urgency": urgency.value},
                c.MATCHED_CAPACITY: {"slots": 12, "points": 10},
            },
        }
        resolution = rank(ask(languages=("fa", "ar"), urgency=urgency), agencies)
        facts = {
            x.agency.id: {r.code: r.facts for r in x.reasons if r.code in expected[x.agency.id]}
            for x in resolution.candidates
        }
        assert facts == expected


@pytest.mark.parametrize(
    ("make", "query", "code", "points"),
    [
        pytest.param(local, ASK, MUNICIPALITY, 3000, id="municipality"),
        pytest.param(local, ask(municipality=None, postcode="19288"), POSTCODE, 3000, id="plz"),
        pytest.param(county_wide, ASK, COUNTY, 2000, id="county-wide"),
        pytest.param(state_wide, ASK, STATE, 1500, id="state-wide"),
        pytest.param(remote_only, ASK, REMOTE, 1000, id="remote"),
        pytest.param(local, ask(municipality=None), ANY, 0, id="no place"),
    ],
)
def test_each_area_rule_scores_its_points(make, query, code, points):
    (candidate,) = resolve(query, [make("x")]).candidates
    assert candidate.reasons[0].code == code
    assert candidate.reasons[0].text.endswith(f"(+{points})")
    assert candidate.score == points + 50 + 100 + 55 + 3


@pytest.mark.parametrize(
    ("asked", "offered", "points"),
    [
        pytest.param(Need.ADULT_MIGRATION_COUNSELLING, Need.ADULT_MIGRATION_COUNSELLING, 50),
        pytest.param(Need.MIGRATION_COUNSELLING, Need.ADULT_MIGRATION_COUNSELLING, 50),
        pytest.param(Need.ADULT_MIGRATION_COUNSELLING, Need.MIGRATION_COUNSELLING, 0),
        pytest.param(Need.LANGUAGE_COURSE, Need.LITERACY_COURSE, 50),
        pytest.param(Need.LITERACY_COURSE, Need.LANGUAGE_COURSE, 0),
    ],
)
def test_the_need_itself_or_a_narrower_one_scores_50_points_more_than_a_broader_one(
    asked, offered, points
):
    (candidate,) = resolve(ask(need=asked), [agency(needs=frozenset({offered}))]).candidates
    assert candidate.reasons[1] == c.Reason(c.MATCHED_NEED, f"offers {offered} (+{points})")
    assert candidate.score == 3000 + points + 100 + 55 + 3


# --- Sub-needs and presence ----------------------------------------------------------------------


def test_a_query_for_a_broad_need_finds_an_agency_offering_only_a_narrower_one():
    youth = agency(id="jmd", needs=frozenset({Need.YOUTH_MIGRATION_COUNSELLING}))
    assert ranked(resolve(ASK, [youth])) == [("jmd", MUNICIPALITY)]


def test_a_query_for_a_narrow_need_finds_an_agency_offering_only_the_broader_one():
    query = ask(need=Need.YOUTH_MIGRATION_COUNSELLING)
    assert ranked(resolve(query, [agency(id="general")])) == [("general", MUNICIPALITY)]


@pytest.mark.parametrize(
    ("asked", "offered"),
    [
        (Need.YOUTH_MIGRATION_COUNSELLING, Need.ADULT_MIGRATION_COUNSELLING),
        (Need.LEGAL_AID_ASYLUM, Need.LEGAL_AID_RESIDENCE),
        (Need.JOB_RELATED_GERMAN, Need.LITERACY_COURSE),
        (Need.MIGRATION_COUNSELLING, Need.EMPLOYMENT),
        (Need.EMPLOYMENT_AGENCY, Need.SOCIAL_BENEFITS),
    ],
)
def test_an_agency_offering_only_an_unrelated_need_is_not_considered(asked, offered):
    resolution = resolve(ask(need=asked), [agency(needs=frozenset({offered}))])
    assert listed_ids(resolution) == []


def test_only_the_related_needs_an_agency_offers_are_named_in_its_reason():
    offers = frozenset({Need.ADULT_MIGRATION_COUNSELLING, Need.HOUSING})
    (candidate,) = resolve(ask(need=Need.MIGRATION_COUNSELLING), [agency(needs=offers)]).candidates
    assert candidate.reasons[1].text == "offers migration-counselling.adults (+50)"


@pytest.mark.parametrize(
    "elsewhere",
    [
        pytest.param(
            local("sonthofen", areas=frozenset({SONTHOFEN}), postcodes=frozenset({"87527"})),
            id="local elsewhere",
        ),
        pytest.param(
            local("sonthofen-plz", areas=frozenset(), postcodes=frozenset({"87527"})),
            id="by postcode elsewhere",
        ),
        pytest.param(county_wide("allgaeu", county=OA), id="county-wide elsewhere"),
        pytest.param(state_wide("bavaria", land=BY), id="state-wide elsewhere"),
        pytest.param(
            county_wide("allgaeu-online", county=OA, remote=True, in_person=False),
            id="remote elsewhere",
        ),
    ],
)
def test_an_agency_in_another_county_is_not_listed_at_all(elsewhere):
    for query in (ASK, ask(municipality=None, postcode="19288")):
        for resolution in (resolve(query, [elsewhere]), Directory([elsewhere]).resolve(query)):
            assert resolution.candidates == () and resolution.excluded == ()


def test_an_agency_of_the_same_county_serving_elsewhere_is_excluded_not_hidden():
    resolution = resolve(ASK, [local("parchim", areas=frozenset({PARCHIM}))])
    assert resolution.candidates == ()
    assert [(x.agency.id, [r.code for r in x.reasons]) for x in resolution.excluded] == [
        ("parchim", [c.EXCLUDED_AREA])
    ]


def test_a_remote_agency_helps_anywhere_in_its_county_but_is_not_listed_beyond():
    online = remote_only("online")
    assert ranked(resolve(ASK, [online])) == [("online", REMOTE)]
    assert listed_ids(resolve(ask(municipality=SONTHOFEN), [online])) == []


def test_directory_gives_the_same_resolution_as_resolve():
    agencies = [
        local("a"),
        county_wide("b", status="inactive"),
        state_wide("c", needs=frozenset({Need.YOUTH_MIGRATION_COUNSELLING})),
        remote_only("d", capacity=0),
        county_wide("e", county=OA),
        local("f", needs=frozenset({Need.HOUSING})),
    ]
    directory = Directory(agencies)
    assert len(directory) == len(agencies)
    for query in (
        ASK,
        ask(municipality=PARCHIM),
        ask(municipality=None, postcode="19370"),
        ask(municipality=None),
        ask(municipality=SONTHOFEN),
        ask(need=Need.ADULT_MIGRATION_COUNSELLING, languages=()),
    ):
        assert directory.resolve(query) == resolve(query, agencies)


# --- Listing: the best `limit`, and a count of all ----------------------------------------------


def counted(resolution: Resolution) -> tuple[tuple[str, int], ...]:
    """Each exclusion reason with the number of listed agencies it rules out, by code."""
    codes = Counter(r.code for x in resolution.excluded for r in x.reasons)
    return tuple(sorted(codes.items()))


NATIONWIDE = [
    local("a", waiting_days=30),
    county_wide("b", county=OA),
    state_wide("c", land=BY, capacity=0),
    local("d", languages=frozenset({"fa"})),
    local("e"),  # without a place "b", "e" and "f" tie: the agency id decides
    local("f"),
    county_wide("g", status="inactive", min_age=40),
    local("h", waiting_days=0, capacity=12),
    remote_only("i", languages=frozenset({"uk"}), capacity=0),
]


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 100])  # 5 fit without a place, 4 are excluded
@pytest.mark.parametrize("where", [{"municipality": None}, {}], ids=["no place", "municipality"])
def test_a_limited_resolution_lists_the_first_of_the_full_one_and_counts_them_all(limit, where):
    query = ask(**where)
    full = resolve(query, NATIONWIDE)
    for limited in (
        resolve(query, NATIONWIDE, limit=limit),
        Directory(NATIONWIDE).resolve(query, limit),
    ):
        assert limited.candidates == full.candidates[:limit]
        assert limited.excluded == full.excluded[:limit]
        assert (limited.candidates_total, limited.excluded_total) == (
            len(full.candidates),
            len(full.excluded),
        )
        assert limited.excluded_by_reason == full.excluded_by_reason == counted(full)


def test_without_a_place_the_best_rank_first_and_equal_scores_by_agency_id():
    resolution = Directory(NATIONWIDE).resolve(ask(municipality=None), limit=3)
    assert [(x.agency.id, x.rank) for x in resolution.candidates] == [("h", 1), ("b", 2), ("e", 3)]
    assert resolution.candidates[1].score == resolution.candidates[2].score
    assert (resolution.candidates_total, resolution.excluded_total) == (5, 4)
    assert [x.agency.id for x in resolution.excluded] == ["c", "d", "g"]
    assert resolution.excluded_by_reason == (
        (c.EXCLUDED_AGE, 1),
        (c.EXCLUDED_CAPACITY, 2),
        (c.EXCLUDED_INACTIVE, 1),
        (c.EXCLUDED_LANGUAGE, 2),
    )


def test_an_unlimited_resolution_counts_what_it_lists():
    resolution = resolve(ask(municipality=None), NATIONWIDE)
    assert resolution.candidates_total == len(resolution.candidates) == 5
    assert resolution.excluded_total == len(resolution.excluded) == 4
    assert resolution.excluded_by_reason == counted(resolution)


def test_an_agency_excluded_for_its_language_alone_is_bridged_though_not_listed():
    full = local("a-full", capacity=0)  # listed first, by id
    agencies = [full, local("near"), interpreter()]
    resolution = Directory(agencies).resolve(FARSI, limit=1)
    assert [x.agency.id for x in resolution.excluded] == ["a-full"]
    assert resolution.excluded_total == 2
    assert [(b.candidate.agency.id, b.interpreter.agency.id) for b in resolution.bridges] == [
        ("near", "pool")
    ]
    assert resolution.bridges == resolve(FARSI, agencies).bridges


def test_a_bridge_looks_past_the_limit_for_an_interpreter_speaking_the_agencys_language():
    russian = interpreter("a-quick", languages=frozenset({"fa", "ru"}), waiting_days=0)
    german = interpreter("b-slow", waiting_days=40)
    resolution = Directory([local("near"), russian, german]).resolve(FARSI, limit=1)
    assert [b.interpreter.agency.id for b in resolution.bridges] == ["b-slow"]


# --- Properties ----------------------------------------------------------------------------------

FLENSBURG = "01001000"
PLACES = Gazetteer(
    {
        **GAZETTEER.municipalities,
        # Invented: Flensburg sharing a postcode with Hagenow, as real postcodes may cross
        # county lines; and a place none of the counties above.
        FLENSBURG: Municipality(FLENSBURG, "Flensburg", frozenset({"24937", "19230"})),
    }
)
MUNICIPALITY_KEYS = sorted(PLACES.municipalities)
AREA_KEYS = [*MUNICIPALITY_KEYS, LUP, OA, "01001", MV, BY, "01"]
POSTCODES = sorted({pc for m in PLACES.municipalities.values() for pc in m.postcodes})
LANGUAGES = ["de", "en", "ar", "fa", "uk"]
STATUSES = ["active", "active", "inactive", "temporarily closed"]


def counties_of_postcode(postcode: str) -> set[str]:
    return {ags[:5] for ags, m in PLACES.municipalities.items() if postcode in m.postcodes}


@st.composite
def agency_lists(draw: st.DrawFn) -> list[Agency]:
    found = []
    for number in range(draw(st.integers(0, 8))):
        postcodes = draw(st.frozensets(st.sampled_from([*POSTCODES, "10115"]), max_size=3))
        remote = draw(st.booleans())
        found.append(
            agency(
                id=f"agency-{number}",
                needs=draw(st.frozensets(st.sampled_from(Need), min_size=1, max_size=3)),
                languages=draw(st.frozensets(st.sampled_from(LANGUAGES), min_size=1)),
                areas=draw(st.frozensets(st.sampled_from(AREA_KEYS), max_size=3)),
                postcodes=postcodes,
                # as the importer derives them: the counties of its postcodes
                counties=frozenset().union(*map(counties_of_postcode, postcodes)),
                remote=remote,
                in_person=draw(st.booleans()) if remote else True,
                min_age=draw(st.none() | st.sampled_from([0, 12, 16, 18, 27])),
                max_age=draw(st.none() | st.sampled_from([17, 27, 65])),
                capacity=draw(st.integers(0, 12)),
                waiting_days=draw(st.integers(0, 90)),
                status=draw(st.sampled_from(STATUSES)),
            )
        )
    return found


queries = st.builds(
    Query,
    need=st.sampled_from(Need),
    languages=st.lists(st.sampled_from([*LANGUAGES, "ti", "AR", " fa ", ""]), max_size=4).map(
        tuple
    ),
    municipality=st.none() | st.sampled_from(MUNICIPALITY_KEYS),
    postcode=st.none() | st.sampled_from([*POSTCODES, "10115"]),
    # ages at and around the sample's age limits, so that the boundaries are hit
    age=st.none() | st.sampled_from([0, 11, 12, 17, 18, 26, 27, 28, 65, 66, 90]),
    urgency=st.sampled_from(Urgency),
)


# An independent restatement of the rules of `services.directory.resolution`.


def query_counties(q: Query) -> set[str]:
    if q.municipality is not None:
        return {q.municipality[:5]}
    return counties_of_postcode(q.postcode) if q.postcode is not None else set()


def needs_related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def oracle_considered(q: Query, a: Agency) -> bool:
    if not any(needs_related(n, q.need) for n in a.needs):
        return False
    if q.municipality is None and q.postcode is None:
        return True
    counties = query_counties(q)
    counties_present = {k[:5] for k in a.areas if len(k) >= 5} | a.counties
    return bool(
        counties & counties_present
        or {k[:2] for k in counties} & a.areas
        or q.postcode in a.postcodes
        or q.municipality in a.areas
    )


def oracle_area(q: Query, a: Agency) -> str | None:
    if q.municipality is None and q.postcode is None:
        return ANY
    if q.municipality in a.areas:
        return MUNICIPALITY
    if q.postcode in a.postcodes:
        return POSTCODE
    counties = query_counties(q)
    wide_county = bool(counties & a.areas)
    wide_state = bool({k[:2] for k in counties} & a.areas)
    if (wide_county or wide_state) and a.in_person:
        return COUNTY if wide_county else STATE
    counties_present = {k[:5] for k in a.areas if len(k) >= 5} | a.counties
    if wide_county or wide_state or (a.remote and counties & counties_present):
        return REMOTE
    return None


def wanted(q: Query) -> set[str]:
    return {code.strip().lower() for code in q.languages if code.strip()}


def oracle_failures(q: Query, a: Agency) -> set[str]:
    age_ok = q.age is None or (
        (a.min_age is None or a.min_age <= q.age) and (a.max_age is None or q.age <= a.max_age)
    )
    checks = {
        c.EXCLUDED_AREA: oracle_area(q, a) is not None,
        c.EXCLUDED_LANGUAGE: not wanted(q) or bool(wanted(q) & a.languages),
        c.EXCLUDED_AGE: age_ok,
        c.EXCLUDED_CAPACITY: a.capacity >= 1,
        c.EXCLUDED_INACTIVE: a.status == "active",
    }
    return {code for code, ok in checks.items() if not ok}


def oracle_score(q: Query, a: Agency) -> int:
    area = {MUNICIPALITY: 3000, POSTCODE: 3000, COUNTY: 2000, STATE: 1500, REMOTE: 1000, ANY: 0}
    code = oracle_area(q, a)
    assert code is not None
    specific = any(n == q.need or n.startswith(q.need + ".") for n in a.needs)
    weight = {Urgency.ROUTINE: 1, Urgency.SOON: 4, Urgency.URGENT: 30}[q.urgency]
    return (
        area[code]
        + 100 * min(len(wanted(q) & a.languages), 3)
        + (50 if specific else 0)
        + max(0, 60 - a.waiting_days) * weight
        + min(a.capacity, 10)
    )


@settings(max_examples=300, deadline=None)
@given(queries, agency_lists())
def test_resolution_obeys_the_rules_for_any_agencies_and_query(query, found):
    resolution = resolve(query, found, PLACES)
    considered = sorted(a.id for a in found if oracle_considered(query, a))
    listed = listed_ids(resolution)
    assert Counter(listed) == Counter(considered), "every considered agency is listed once"

    for candidate in resolution.candidates:
        assert oracle_failures(query, candidate.agency) == set()
        assert candidate.reasons[0].code == oracle_area(query, candidate.agency)
        assert candidate.score == oracle_score(query, candidate.agency)
    for exclusion in resolution.excluded:
        assert exclusion.reasons, "an exclusion gives at least one reason"
        assert [r.code for r in exclusion.reasons] == sorted(
            oracle_failures(query, exclusion.agency), key=EXCLUSION_ORDER.index
        )

    assert [x.rank for x in resolution.candidates] == list(range(1, len(resolution.candidates) + 1))
    scores = [x.score for x in resolution.candidates]
    assert scores == sorted(scores, reverse=True)
    order = [(-x.score, x.agency.id) for x in resolution.candidates]
    assert order == sorted(order)

    assert Directory(found, PLACES).resolve(query) == resolution
    assert resolution.excluded_by_reason == counted(resolution)
    assert (resolution.candidates_total, resolution.excluded_total) == (
        len(resolution.candidates),
        len(resolution.excluded),
    )
    for limit in (1, 2):
        limited = Directory(found, PLACES).resolve(query, limit)
        assert limited.candidates == resolution.candidates[:limit]
        assert limited.excluded == resolution.excluded[:limit]
        assert limited.bridges == resolution.bridges
        assert limited == replace(
            resolution,
            candidates=resolution.candidates[:limit],
            excluded=resolution.excluded[:limit],
        )


EXCLUSION_ORDER = [
    c.EXCLUDED_AREA,
    c.EXCLUDED_LANGUAGE,
    c.EXCLUDED_AGE,
    c.EXCLUDED_CAPACITY,
    c.EXCLUDED_INACTIVE,
]


# --- The sample directory ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def imported() -> Iterator[tuple[list[Agency], store.Records]]:
    """The sample directory imported into an in-memory store: its agencies and HSDS records."""
    engine = create_engine("sqlite://")
    SQLModel.metadata.create_all(engine, tables=[t.__table__ for t in store.TABLES])  # type: ignore[attr-defined]
    with Session(engine) as session:
        report = importer.import_file(session, SAMPLE_PATH)
        assert report.ok, report.problems
        session.commit()
        yield store.all_agencies(session), store.load_records(session)
    engine.dispose()


@pytest.fixture(scope="module")
def sample(imported: tuple[list[Agency], store.Records]) -> list[Agency]:
    return imported[0]


def test_the_sample_directory_has_32_agencies_from_both_counties(sample):
    assert len(sample) == 32
    assert len({a.id for a in sample}) == 32
    assert {county for a in sample for county in a.counties} == {LUP, OA}
    assert Counter(a.id.split("-")[0] for a in sample) == {"lup": 17, "oa": 15}
    assert all(a.sample for a in sample)
    channels = {a.id: a.channel for a in sample if a.channel != "nats"}
    assert channels == {"oa-rechtshilfe-auslaenderinnen": "email"}  # the e-mail-only agency


TOP_LEVEL = [need for need in Need if need.parent is None]


@pytest.mark.parametrize("county", [LUP, OA])
@pytest.mark.parametrize("need", TOP_LEVEL)
def test_every_top_level_need_can_be_referred_in_each_county(sample, county, need):
    assert any(
        county in a.counties and a.needs & need.related() and a.active and a.capacity > 0
        for a in sample
    ), f"no agency in {county} can take a referral for {need}"


def test_every_need_the_sample_offers_is_known_and_most_are_offered_in_both_counties(sample):
    offered = {
        county: {n for a in sample if county in a.counties for n in a.needs} for county in (LUP, OA)
    }
    # Specialised courses are local: literacy only in Ludwigslust-Parchim, job-related German
    # only in Oberallgäu. Everything else is offered in both.
    assert offered[LUP] ^ offered[OA] == {Need.LITERACY_COURSE, Need.JOB_RELATED_GERMAN}


def test_every_sample_area_is_a_known_municipality_county_or_land(sample):
    counties = GAZETTEER.counties()
    for a in sample:
        for key in a.areas:
            assert (
                key in GAZETTEER.municipalities
                or key in counties
                or (len(key) == 2 and any(k.startswith(key) for k in counties))
            ), f"{a.id}: unknown area {key}"
        for postcode in a.postcodes:
            assert GAZETTEER.counties_of_postcode(postcode) <= a.counties, f"{a.id}: {postcode}"


def test_local_sample_agencies_list_the_postcodes_of_their_municipalities(sample):
    for a in sample:
        municipalities = [GAZETTEER.municipalities[k] for k in a.areas if len(k) == 8]
        assert {pc for m in municipalities for pc in m.postcodes} == a.postcodes, a.id


def test_the_sample_has_a_full_an_inactive_and_a_remote_only_agency(sample):
    assert any(a.capacity == 0 for a in sample)
    assert [a.status for a in sample if not a.active] == ["temporarily closed"]
    assert any(a.remote and not a.in_person for a in sample)


def test_the_sample_womens_shelters_exist_in_both_counties_and_keep_no_address(imported):
    agencies, records = imported
    shelters = [a for a in agencies if a.kind == AgencyKind.VIOLENCE_PROTECTION]
    assert {county for s in shelters for county in s.counties} == {LUP, OA}
    assert all(Need.VIOLENCE_PROTECTION in s.needs and s.active for s in shelters)
    for shelter in shelters:
        locations = [
            records["location"][link["location_id"]]
            for link in records["service_at_location"].values()
            if link["service_id"] == shelter.service_id
        ]
        physical = [loc for loc in locations if loc["location_type"] == "physical"]
        assert physical and all(profile.is_confidential(loc) for loc in physical)
        placed = {a["location_id"] for a in records.get("address", {}).values()}
        assert not placed & {loc["id"] for loc in physical}, f"{shelter.id} keeps an address"
        assert not any({"latitude", "longitude"} & loc.keys() for loc in physical)


def test_a_young_person_in_hagenow_is_pointed_to_the_youth_migration_service(sample):
    query = Query(Need.YOUTH_MIGRATION_COUNSELLING, ("ar",), HAGENOW, None, 19, Urgency.SOON)
    resolution = resolve(query, sample)
    first = resolution.candidates[0]
    assert first.agency.id == "lup-jmd-hagenow"
    assert [r.code for r in first.reasons] == [
        c.MATCHED_MUNICIPALITY,
        c.MATCHED_NEED,
        c.MATCHED_LANGUAGE,
        c.MATCHED_AGE,
        c.MATCHED_WAITING,
        c.MATCHED_CAPACITY,
    ]
    assert first.reasons[0].text == "serves municipality 13076060 (Hagenow) (+3000)"
    assert all(x.agency.counties == {LUP} for x in resolution.candidates + resolution.excluded)


def test_an_adult_in_parchim_is_not_sent_to_the_full_local_office(sample):
    query = Query(Need.ADULT_MIGRATION_COUNSELLING, ("fa",), PARCHIM, None, 35)
    resolution = resolve(query, sample)
    excluded = {x.agency.id: [r.code for r in x.reasons] for x in resolution.excluded}
    assert excluded["lup-mbe-parchim"] == [c.EXCLUDED_CAPACITY]
    assert "lup-mbe-parchim" not in [x.agency.id for x in resolution.candidates]


@pytest.mark.parametrize("need", list(Need))
def test_the_directory_index_agrees_with_resolve_on_the_sample(sample, need):
    directory = Directory(sample)
    places = [(m, None) for m in GAZETTEER.municipalities] + [
        (None, pc) for m in GAZETTEER.municipalities.values() for pc in m.postcodes
    ]
    for municipality, postcode in [*places, (None, None)]:
        query = Query(need, ("ar",), municipality, postcode, 30)
        assert directory.resolve(query) == resolve(query, sample)


# --- The language bridge: an interpreter when nobody speaks the person's language --------------


def interpreter(id: str = "pool", **changes: Any) -> Agency:
    """An interpreting pool for the whole county, speaking Farsi and German."""
    fields = {
        "kind": AgencyKind.INTERPRETING,
        "needs": frozenset({Need.INTERPRETING}),
        "languages": frozenset({"fa", "de"}),
        "areas": frozenset({LUP}),
        "postcodes": frozenset(),
        **changes,
    }
    return agency(id=id, **fields)


FARSI = ask(languages=("fa",))


def test_an_agency_that_fits_but_for_the_language_is_offered_with_an_interpreter():
    near, far = local("near"), county_wide("far")
    resolution = resolve(FARSI, [near, far, interpreter()])
    assert resolution.candidates == ()
    assert [(b.candidate.agency.id, b.interpreter.agency.id) for b in resolution.bridges] == [
        ("near", "pool"),
        ("far", "pool"),
    ]
    best = resolution.bridges[0].candidate
    [bridged] = [r for r in best.reasons if r.code == c.BRIDGED_LANGUAGE]
    assert bridged.text == "speaks none of fa; pool interprets fa and de (+0)"
    assert bridged.facts["languages"] == ("fa",) and bridged.facts["between"] == ("de",)
    assert best.score == resolve(ask(languages=()), [near]).candidates[0].score
    assert [x.agency.id for x in resolution.excluded] == ["far", "near"]  # still explained


def test_no_bridge_when_an_agency_speaks_the_language_or_none_is_asked():
    assert resolve(ask(), [local("near"), interpreter()]).bridges == ()
    assert resolve(ask(languages=()), [local("near"), interpreter()]).bridges == ()


def test_only_an_agency_excluded_for_its_language_alone_is_bridged():
    full = local("full", capacity=0)
    assert resolve(FARSI, [full, interpreter()]).bridges == ()


def test_the_interpreter_speaks_the_persons_language_and_one_of_the_agencys():
    no_farsi = interpreter(languages=frozenset({"de", "ru"}))
    assert resolve(FARSI, [local("near"), no_farsi]).bridges == ()
    french_agency = local("near", languages=frozenset({"fr"}))
    assert resolve(FARSI, [french_agency, interpreter()]).bridges == ()
    elsewhere = interpreter(areas=frozenset({OA}))
    assert resolve(FARSI, [local("near"), elsewhere]).bridges == ()


def test_the_best_interpreter_that_fits_is_chosen_and_the_index_agrees():
    slow = interpreter("slow", waiting_days=40)
    quick = interpreter("quick", waiting_days=1)
    agencies = [local("near"), slow, quick]
    resolution = resolve(FARSI, agencies)
    assert [b.interpreter.agency.id for b in resolution.bridges] == ["quick"]
    assert Directory(agencies).resolve(FARSI) == resolution


def test_the_sample_bridges_farsi_in_ludwigslust_with_the_interpreting_pool(sample):
    query = Query(need=Need.MIGRATION_COUNSELLING, languages=("fa",), municipality=LUDWIGSLUST)
    resolution = Directory(sample).resolve(query)
    assert resolution.candidates == ()
    first = resolution.bridges[0]
    assert (first.candidate.agency.id, first.interpreter.agency.id) == (
        "lup-mbe-ludwigslust",
        "lup-sprachmittlerpool",
    )

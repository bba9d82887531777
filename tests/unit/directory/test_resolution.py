"""The directory's resolution: who fits a query, in which order, and why; and the sample data."""

from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.directory import catalogue as c
from services.directory.catalogue import (
    COUNTY_POSTCODES,
    MUNICIPALITIES,
    Agency,
    AgencyKind,
    Need,
    Query,
    Urgency,
)
from services.directory.resolution import resolve
from services.directory.sample_catalogue import agencies_from_json, load_sample

LUP, OA = "13076", "09780"
LUDWIGSLUST, PARCHIM, SONTHOFEN = "13076090", "13076108", "09780139"

BASE = Agency(
    id="base",
    name="Beratungsstelle Beispiel",
    kind=AgencyKind.MIGRATION_COUNSELLING,
    needs=frozenset({Need.MIGRATION_COUNSELLING}),
    languages=frozenset({"de", "ar"}),
    county=LUP,
    municipalities=frozenset({LUDWIGSLUST}),
    postcodes=frozenset({"19288"}),
    county_wide=False,
    remote=False,
    min_age=None,
    max_age=None,
    capacity=3,
    waiting_days=5,
    active=True,
    channel="nats",
    sample=True,
)
ASK = Query(need=Need.MIGRATION_COUNSELLING, languages=("ar",), municipality=LUDWIGSLUST, age=30)


def ranked_ids(query: Query, *agencies: Agency) -> list[str]:
    return [candidate.agency.id for candidate in resolve(query, agencies).candidates]


def excluded_codes(query: Query, agency: Agency) -> list[str]:
    (exclusion,) = resolve(query, [agency]).excluded
    return [reason.code for reason in exclusion.reasons]


@pytest.mark.parametrize(
    ("agency_change", "query_change", "code"),
    [
        pytest.param(
            {"needs": frozenset({Need.HOUSING})}, {}, c.EXCLUDED_NEED, id="one without the need"
        ),
        pytest.param({}, {"municipality": PARCHIM}, c.EXCLUDED_AREA, id="one serving elsewhere"),
        pytest.param(
            {},
            {"languages": ("fa", "ps")},
            c.EXCLUDED_LANGUAGE,
            id="one speaking none of the languages",
        ),
        pytest.param({"min_age": 12, "max_age": 27}, {}, c.EXCLUDED_AGE, id="one for another age"),
        pytest.param({"capacity": 0}, {}, c.EXCLUDED_CAPACITY, id="one without free slots"),
        pytest.param({"active": False}, {}, c.EXCLUDED_INACTIVE, id="one that is inactive"),
    ],
)
def test_an_agency_failing_one_hard_constraint_is_excluded_with_that_reason(
    agency_change, query_change, code
):
    resolution = resolve(replace(ASK, **query_change), [replace(BASE, **agency_change)])
    assert resolution.candidates == ()
    assert [r.code for r in resolution.excluded[0].reasons] == [code]


def test_an_agency_outside_the_area_is_excluded_with_the_reason():
    (exclusion,) = resolve(replace(ASK, municipality=SONTHOFEN), [BASE]).excluded
    assert exclusion.reasons == (
        c.Reason(c.EXCLUDED_AREA, f"does not serve municipality {SONTHOFEN}"),
    )


def test_an_agency_failing_two_constraints_lists_both():
    agency = replace(BASE, needs=frozenset({Need.HOUSING}), active=False)
    assert excluded_codes(ASK, agency) == [c.EXCLUDED_NEED, c.EXCLUDED_INACTIVE]


def test_german_is_not_assumed_to_be_offered():
    assert excluded_codes(
        replace(ASK, languages=("de",)), replace(BASE, languages=frozenset({"ar"}))
    ) == [c.EXCLUDED_LANGUAGE]


def test_language_codes_in_the_query_match_regardless_of_case():
    assert ranked_ids(replace(ASK, languages=(" AR",)), BASE) == ["base"]


def test_a_county_wide_agency_serves_a_postcode_of_its_county():
    query = replace(ASK, municipality=None, postcode="19370")
    county_wide = replace(BASE, municipalities=frozenset(), postcodes=frozenset(), county_wide=True)
    (candidate,) = resolve(query, [county_wide]).candidates
    assert candidate.reasons[0].code == c.MATCHED_COUNTY
    assert excluded_codes(replace(query, postcode="87527"), county_wide) == [c.EXCLUDED_AREA]


def test_a_local_agency_matches_by_postcode():
    (candidate,) = resolve(replace(ASK, municipality=None, postcode="19288"), [BASE]).candidates
    assert candidate.reasons[0] == c.Reason(c.MATCHED_POSTCODE, "serves postcode 19288 (+3000)")


def test_a_remote_agency_helps_anywhere_in_its_county_but_not_beyond():
    remote = replace(BASE, municipalities=frozenset(), postcodes=frozenset(), remote=True)
    (candidate,) = resolve(replace(ASK, municipality=PARCHIM), [remote]).candidates
    assert candidate.reasons[0].code == c.MATCHED_REMOTE
    assert excluded_codes(replace(ASK, municipality=SONTHOFEN), remote) == [c.EXCLUDED_AREA]


def test_without_a_place_the_area_is_not_a_constraint():
    query = replace(ASK, municipality=None, postcode=None)
    (candidate,) = resolve(query, [replace(BASE, county=OA, municipalities=frozenset())]).candidates
    assert candidate.reasons[0].code == c.MATCHED_ANY_AREA


def test_an_agency_without_the_need_is_still_listed_as_excluded():
    resolution = resolve(
        ASK, [BASE, replace(BASE, id="jobcenter", needs=frozenset({Need.EMPLOYMENT}))]
    )
    assert [e.agency.id for e in resolution.excluded] == ["jobcenter"]


def test_a_candidate_carries_the_reasons_for_its_score():
    (candidate,) = resolve(ASK, [BASE]).candidates
    assert candidate.rank == 1
    assert [r.text for r in candidate.reasons] == [
        "serves municipality 13076090 (Ludwigslust) (+3000)",
        "speaks ar (+100)",
        "age 30 is within the age limits (none)",
        "waiting time 5 days (+55 for a routine request)",
        "3 free slots (+3)",
    ]
    assert candidate.score == 3000 + 100 + 55 + 3


def test_local_beats_county_wide_beats_remote():
    elsewhere = {"municipalities": frozenset(), "postcodes": frozenset()}
    local = replace(BASE, id="c-local", waiting_days=30)
    county = replace(BASE, id="b-county", county_wide=True, **elsewhere)
    remote = replace(
        BASE, id="a-remote", remote=True, languages=frozenset({"ar", "de", "en"}), **elsewhere
    )
    assert ranked_ids(replace(ASK, languages=("ar", "de", "en")), remote, county, local) == [
        "c-local",
        "b-county",
        "a-remote",
    ]


def test_more_shared_languages_rank_higher():
    both = replace(BASE, id="b-both", languages=frozenset({"ar", "fa"}))
    assert ranked_ids(replace(ASK, languages=("ar", "fa")), BASE, both) == ["b-both", "base"]


def test_an_urgent_query_prefers_shorter_waiting_over_more_languages():
    slow = replace(BASE, id="a-slow", languages=frozenset({"ar", "fa"}), waiting_days=20)
    fast = replace(BASE, id="b-fast", waiting_days=0)
    query = replace(ASK, languages=("ar", "fa"))
    assert ranked_ids(query, slow, fast) == ["a-slow", "b-fast"]
    assert ranked_ids(replace(query, urgency=Urgency.URGENT), slow, fast) == ["b-fast", "a-slow"]


def test_more_capacity_ranks_higher_when_all_else_is_equal():
    roomy = replace(BASE, id="z-roomy", capacity=8)
    assert ranked_ids(ASK, BASE, roomy) == ["z-roomy", "base"]


def test_equal_scores_rank_by_agency_id():
    agencies = [replace(BASE, id=name) for name in ("mbe-c", "mbe-a", "mbe-b")]
    resolution = resolve(ASK, agencies)
    assert [(x.agency.id, x.rank) for x in resolution.candidates] == [
        ("mbe-a", 1),
        ("mbe-b", 2),
        ("mbe-c", 3),
    ]
    assert resolve(ASK, reversed(agencies)) == resolution


LANGUAGES = ["de", "en", "ar", "fa", "uk"]
AGS_KEYS = sorted(MUNICIPALITIES)


@st.composite
def agencies(draw) -> list[Agency]:
    found = []
    for number in range(draw(st.integers(0, 8))):
        county = draw(st.sampled_from([LUP, OA]))
        ags = draw(st.frozensets(st.sampled_from([k for k in AGS_KEYS if k.startswith(county)])))
        postcodes = draw(st.frozensets(st.sampled_from(sorted(COUNTY_POSTCODES[county]))))
        found.append(
            replace(
                BASE,
                id=f"agency-{number}",
                needs=draw(st.frozensets(st.sampled_from(Need), min_size=1)),
                languages=draw(st.frozensets(st.sampled_from(LANGUAGES), min_size=1)),
                county=county,
                municipalities=ags,
                postcodes=postcodes,
                county_wide=draw(st.booleans()),
                remote=draw(st.booleans()),
                min_age=draw(st.none() | st.integers(0, 40)),
                max_age=draw(st.none() | st.integers(20, 80)),
                capacity=draw(st.integers(0, 4)),
                waiting_days=draw(st.integers(0, 90)),
                active=draw(st.booleans()),
            )
        )
    return found


queries = st.builds(
    Query,
    need=st.sampled_from(Need),
    languages=st.lists(st.sampled_from([*LANGUAGES, "ti"]), max_size=3).map(tuple),
    municipality=st.none() | st.sampled_from([*AGS_KEYS, "01001000"]),
    postcode=st.none()
    | st.sampled_from([*sorted(set().union(*COUNTY_POSTCODES.values())), "10115"]),
    age=st.none() | st.integers(0, 90),
    urgency=st.sampled_from(Urgency),
)


def failed_constraints(query: Query, a: Agency) -> set[str]:
    """An independent restatement of the hard constraints, as the codes they fail."""
    in_county = (query.municipality or "").startswith(a.county) or (
        query.postcode in COUNTY_POSTCODES[a.county]
    )
    area_ok = (query.municipality is None and query.postcode is None) or (
        query.municipality in a.municipalities
        or query.postcode in a.postcodes
        or ((a.county_wide or a.remote) and in_county)
    )
    checks = {
        c.EXCLUDED_NEED: query.need in a.needs,
        c.EXCLUDED_AREA: area_ok,
        c.EXCLUDED_LANGUAGE: not query.languages or bool(a.languages & set(query.languages)),
        c.EXCLUDED_AGE: query.age is None
        or ((a.min_age or 0) <= query.age and (a.max_age is None or query.age <= a.max_age)),
        c.EXCLUDED_CAPACITY: a.capacity > 0,
        c.EXCLUDED_INACTIVE: a.active,
    }
    return {code for code, ok in checks.items() if not ok}


@given(queries, agencies())
def test_candidates_meet_every_hard_constraint_and_exclusions_list_every_failure(query, found):
    resolution = resolve(query, found)
    for candidate in resolution.candidates:
        assert failed_constraints(query, candidate.agency) == set()
    for exclusion in resolution.excluded:
        assert {r.code for r in exclusion.reasons} == failed_constraints(query, exclusion.agency)
    listed = [x.agency.id for x in resolution.candidates] + [
        x.agency.id for x in resolution.excluded
    ]
    assert Counter(listed) == Counter(a.id for a in found)
    assert [x.rank for x in resolution.candidates] == list(range(1, len(resolution.candidates) + 1))
    order = [(-x.score, x.agency.id) for x in resolution.candidates]
    assert order == sorted(order)


SAMPLE = load_sample()


def test_the_sample_catalogue_loads_with_agencies_from_both_counties():
    assert 24 <= len(SAMPLE) <= 32
    assert {a.county for a in SAMPLE} == {LUP, OA}
    assert all(
        a.sample and a.channel == "nats" and a.email.endswith("@example.org") for a in SAMPLE
    )


@pytest.mark.parametrize("county", [LUP, OA])
@pytest.mark.parametrize("need", list(Need))
def test_every_need_is_served_by_an_active_agency_with_capacity_in_each_county(county, need):
    assert any(
        a.county == county and need in a.needs and a.active and a.capacity > 0 for a in SAMPLE
    ), f"no agency in {county} can take a referral for {need}"


def test_every_sample_place_is_a_known_key_of_its_county():
    for agency in SAMPLE:
        assert all(
            len(k) == 8 and k.isdigit() and k.startswith(agency.county)
            for k in agency.municipalities
        )
        assert agency.municipalities <= MUNICIPALITIES.keys()
        assert agency.postcodes <= COUNTY_POSTCODES[agency.county]


def test_sample_ids_are_unique():
    assert len({a.id for a in SAMPLE}) == len(SAMPLE)


def test_the_sample_has_a_full_an_inactive_and_a_confidential_agency():
    assert any(a.capacity == 0 for a in SAMPLE) and any(not a.active for a in SAMPLE)
    shelters = [a for a in SAMPLE if a.kind == AgencyKind.VIOLENCE_PROTECTION]
    assert shelters and all(s.confidential_address and s.address is None for s in shelters)


def test_a_young_person_in_hagenow_is_pointed_to_the_youth_migration_service():
    query = Query(Need.YOUTH_MIGRATION_COUNSELLING, ("ar",), "13076060", None, 19, Urgency.SOON)
    assert resolve(query, SAMPLE).candidates[0].agency.id == "lup-jmd-hagenow"


def raw_record(**changes) -> dict:
    record = {
        "id": "x", "name": "X", "kind": "legal-aid", "needs": ["legal-aid"], "languages": ["de"],
        "county": LUP, "municipalities": [LUDWIGSLUST], "postcodes": ["19288"],
        "county_wide": False, "remote": False, "min_age": None, "max_age": None, "capacity": 1,
        "waiting_days": 0, "active": True, "channel": "nats", "sample": True, "address": None,
        "confidential_address": False, "email": None,
    }  # fmt: skip
    return {**record, **changes}


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({k: v for k, v in raw_record().items() if k != "county"}, "county"),
        (raw_record(colour="red"), "colour"),
        (raw_record(needs=["legal aid"]), "needs"),
        (raw_record(municipalities=["1307609"]), "municipalities"),
        (raw_record(municipalities=[SONTHOFEN]), "municipalities"),
        (raw_record(county_wide=True), "municipalities"),
        (raw_record(capacity=True), "capacity"),
        (raw_record(min_age=30, max_age=20), "max_age"),
        (raw_record(languages=["DE"]), "languages"),
        (raw_record(confidential_address=True, address="Musterstraße 1"), "address"),
        (raw_record(id="other"), "id"),
    ],
)
def test_a_bad_record_is_refused_naming_its_index_and_field(record, field):
    good = raw_record(id="other", municipalities=[], county_wide=True)
    with pytest.raises(ValueError, match=f"agency record 1: field '{field}'"):
        agencies_from_json([good, record])


def test_the_need_vocabulary_is_exactly_the_agreed_one():
    assert {n.value for n in Need} == {
        "legal-aid", "recognition", "language-course", "migration-counselling",
        "youth-migration-counselling", "employment", "social-benefits", "psychosocial",
        "violence-protection", "housing", "health", "schools-childcare", "interpreting",
    }  # fmt: skip

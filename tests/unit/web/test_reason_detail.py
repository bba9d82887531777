"""The directory's reasons in the counsellor's language: made from the facts the directory
sends (places by name, needs and languages named), never its English sentence or a bare key
(issue 18, part 5)."""

from __future__ import annotations

import pytest

from schemas.vocabulary import Need, Urgency
from services.directory.catalogue import Agency, Query
from services.directory.handlers import match_reason
from services.directory.resolution import resolve
from services.web import i18n, labels
from tests.support.agencies import LUDWIGSLUST, agency


def an_agency(**changes: object) -> Agency:
    """The resolution tests' agency in Ludwigslust, for adults from 27, offering MBE."""
    fields = {"id": "mbe", "needs": frozenset({Need.ADULT_MIGRATION_COUNSELLING}), "min_age": 27}
    return agency(**{**fields, "postcodes": frozenset(), **changes})


def detail(reason: object, language: str) -> str:
    wire = match_reason(reason).model_dump(mode="json")  # type: ignore[arg-type]
    return labels.reason_detail(wire, i18n.translations(language).gettext, language)


@pytest.mark.parametrize("language", ["de", "en"])
def test_a_candidates_reasons_name_the_place_the_help_and_the_languages(language):
    query = Query(
        need=Need.MIGRATION_COUNSELLING,
        languages=("ar", "fa"),
        municipality=LUDWIGSLUST,
        age=30,
        urgency=Urgency.SOON,
    )
    [candidate] = resolve(query, [an_agency()]).candidates
    said = {r.code: detail(r, language) for r in candidate.reasons}
    assert said["area.municipality"] == "Ludwigslust (13076090) (+3000)"
    assert said["need.offered"].startswith(
        {"de": "Migrationsberatung für Erwachsene", "en": "Migration counselling for adults"}[
            language
        ]
    )
    assert said["language.match"] == {"de": "Arabisch (+100)", "en": "Arabic (+100)"}[language]
    assert (
        said["age.within"]
        == {
            "de": "Alter 30; Grenzen: ab 27",
            "en": "age 30; limits: 27 and over",
        }[language]
    )
    assert said["waiting.days"].startswith("5 ")
    english = {r.text for r in candidate.reasons}
    if language == "de":
        assert not english & set(said.values())
        assert not any(word in " ".join(said.values()) for word in ("serves", "offers", "speaks"))


def test_an_exclusion_says_which_languages_were_asked_for_and_where():
    query = Query(need=Need.MIGRATION_COUNSELLING, languages=("fa",), municipality="13076108")
    [excluded] = resolve(query, [an_agency()]).excluded
    said = {r.code: detail(r, "de") for r in excluded.reasons}
    assert said["area.outside"] == "Parchim (13076108)"
    assert said["language.not-offered"] == "gefragt: Persisch (Farsi)"


def test_a_county_and_a_land_are_named_too():
    county = an_agency(id="county", areas=frozenset({"13076"}))
    land = an_agency(id="land", areas=frozenset({"13"}))
    query = Query(need=Need.MIGRATION_COUNSELLING, municipality="13076108")
    found = {
        c.agency.id: detail(c.reasons[0], "de") for c in resolve(query, [county, land]).candidates
    }
    assert found == {
        "county": "Ludwigslust-Parchim (13076) (+2000)",
        "land": "Mecklenburg-Vorpommern (13) (+1500)",
    }


def test_a_reason_without_facts_from_an_older_directory_shows_its_sentence():
    old = {"code": "area.municipality", "text": "serves municipality 13076090 (+3000)"}
    assert labels.reason_detail(old, str, "de") == "serves municipality 13076090 (+3000)"

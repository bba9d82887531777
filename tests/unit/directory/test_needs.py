"""The needs taxonomy: labels, sub-needs, how needs relate, and the HSDS terms published."""

from __future__ import annotations

import pytest

from schemas.vocabulary import Need
from services.directory import needs
from services.directory.hsds.schema import check

TERMS = needs.terms()


@pytest.mark.parametrize("need", list(Need))
def test_every_need_has_a_german_and_an_english_label_and_description(need):
    label = needs.LABELS[need]
    assert label.de.strip() and label.en.strip()
    assert label.description_de.strip() and label.description_en.strip()
    assert label.name("de") == label.de and label.name("en") == label.en


def test_the_labels_are_exactly_the_needs():
    assert set(needs.LABELS) == set(Need)


@pytest.mark.parametrize("language", needs.LANGUAGES)
def test_labels_are_unique_per_language(language):
    names = [needs.LABELS[need].name(language) for need in Need]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("need", [need for need in Need if "." in need.value])
def test_every_sub_need_has_an_existing_top_level_parent(need):
    parent = need.parent
    assert parent in Need and parent.parent is None
    assert need.value.startswith(parent.value + ".")
    assert need.root == parent


def test_top_level_needs_are_their_own_root():
    assert all(need.root == need for need in Need if need.parent is None)


@pytest.mark.parametrize(
    ("need", "related"),
    [
        (
            Need.MIGRATION_COUNSELLING,
            {
                Need.MIGRATION_COUNSELLING,
                Need.ADULT_MIGRATION_COUNSELLING,
                Need.YOUTH_MIGRATION_COUNSELLING,
            },
        ),
        (
            Need.YOUTH_MIGRATION_COUNSELLING,
            {Need.YOUTH_MIGRATION_COUNSELLING, Need.MIGRATION_COUNSELLING},
        ),
        (Need.LEGAL_AID_ASYLUM, {Need.LEGAL_AID_ASYLUM, Need.LEGAL_AID}),
        (Need.RECOGNITION, {Need.RECOGNITION}),
    ],
)
def test_a_need_is_related_to_itself_its_parent_and_its_sub_needs_only(need, related):
    assert need.related() == related


def test_related_is_reflexive_and_symmetric():
    for a in Need:
        assert a in a.related()
        for b in Need:
            assert (b in a.related()) == (a in b.related()), (a, b)


def test_siblings_and_needs_of_other_families_are_unrelated():
    for a in Need:
        for b in a.related():
            assert a.root == b.root
            assert a == b or b.parent == a or a.parent == b


@pytest.mark.parametrize("term", TERMS, ids=lambda t: f"{t['language']}:{t['code']}")
def test_every_taxonomy_term_is_valid_hsds(term):
    assert check("taxonomy_term", term, "x") == []


def test_every_taxonomy_is_valid_hsds():
    for taxonomy in needs.taxonomies():
        assert check("taxonomy", taxonomy, "x") == []


def test_the_terms_are_every_need_once_per_language_with_unique_ids():
    assert sorted((t["language"], t["code"]) for t in TERMS) == sorted(
        (language, need.value) for language in needs.LANGUAGES for need in Need
    )
    assert len({t["id"] for t in TERMS}) == len(TERMS)


def test_a_sub_needs_term_points_at_its_parents_term_of_the_same_language():
    by_id = {t["id"]: t for t in TERMS}
    for term in TERMS:
        need = Need(term["code"])
        if need.parent is None:
            assert "parent_id" not in term
            continue
        parent = by_id[term["parent_id"]]
        assert parent["code"] == need.parent.value
        assert parent["language"] == term["language"]
        assert parent["taxonomy_id"] == term["taxonomy_id"]


def test_a_term_names_its_need_and_only_this_taxonomys_terms_do():
    for term in TERMS:
        assert needs.need_of_term(term) == Need(term["code"])
    assert needs.need_of_term({**TERMS[0], "taxonomy_id": "other"}) is None
    assert needs.need_of_term({**TERMS[0], "code": "no-such-need"}) is None

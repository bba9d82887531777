"""Every text a person reads exists in every language Wegweiser offers them: complete, with
the same placeholders as its English source, and with its review state said honestly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from services.consent import texts
from services.consent.texts import SCRIPTS, MissingText, PersonLanguage

PLACEHOLDER = re.compile(r"\{(\w+)\}")
SOURCE = texts.catalogue(PersonLanguage.EN)


def test_the_issue_s_languages_are_all_offered_with_their_direction():
    wanted = {"de", "de-x-ls", "en", "ar", "fa", "prs", "ps", "ckb", "kmr", "tr", "ru", "uk",
              "ti", "so", "fr"}  # fmt: skip
    assert {lang.value for lang in PersonLanguage} == wanted
    assert {lang.value for lang, script in SCRIPTS.items() if script.rtl} == {
        "ar", "fa", "prs", "ps", "ckb"
    }  # fmt: skip


@pytest.mark.parametrize("language", list(PersonLanguage))
def test_a_catalogue_translates_every_source_text_with_the_same_placeholders(language):
    found = texts.catalogue(language)
    assert set(found.texts) == set(SOURCE.texts), language
    for message, text in found.texts.items():
        assert text.strip(), (language, message)
        assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(message)), (
            language,
            message,
        )


@pytest.mark.parametrize("language", list(PersonLanguage))
def test_a_catalogue_says_how_far_it_can_be_trusted(language):
    review = texts.catalogue(language).review
    assert review.state in {"source", "draft", "reviewed"}
    if review.state == "reviewed":
        assert review.by and re.match(r"^\d{4}-\d{2}-\d{2}$", review.on), review
    assert (review.state == "source") == (language in {PersonLanguage.DE, PersonLanguage.EN})


def test_a_missing_text_is_an_error_never_english():
    with pytest.raises(MissingText, match="has no fa text"):
        texts.catalogue(PersonLanguage.FA)("A sentence nobody translated")


@pytest.mark.parametrize("language", list(PersonLanguage))
def test_the_consent_text_exists_in_every_language_with_its_version(language):
    title, *paragraphs = texts.consent_text(language)
    assert texts.CONSENT_TEXT_VERSION in title and len(paragraphs) == 3
    rtl = SCRIPTS[language].rtl
    assert (f"\u2066{texts.CONSENT_TEXT_VERSION}\u2069" in title) is rtl  # kept left to right
    if language is not PersonLanguage.EN:
        assert not set(paragraphs) & set(texts.consent_text(PersonLanguage.EN)[1:]), language


GLOSSARY = json.loads((texts.LOCALES / "glossary.json").read_text(encoding="utf-8"))["terms"]


@pytest.mark.parametrize("language", list(PersonLanguage))
def test_a_catalogue_uses_one_term_per_concept_as_its_glossary_says(language):
    found = texts.catalogue(language)
    for concept, forms in GLOSSARY.items():
        stems, wanted = forms["en"], [f.lower() for f in forms[language.value]]
        for message, text in found.texts.items():
            if any(re.search(rf"\b{re.escape(stem)}", message, re.I) for stem in stems):
                assert any(form in text.lower() for form in wanted), (language, concept, text)


def test_the_glossary_names_every_language_for_every_concept():
    for concept, forms in GLOSSARY.items():
        assert set(forms) == {lang.value for lang in PersonLanguage}, concept
        assert all(forms.values()), concept


PERSON_TEMPLATES = Path(texts.__file__).parents[1] / "web" / "templates" / "person"
SAID = re.compile(r"""\bt\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def test_every_text_the_persons_pages_say_is_in_the_catalogues():
    said = {
        double or single
        for page in PERSON_TEMPLATES.glob("*.html")
        for double, single in SAID.findall(page.read_text(encoding="utf-8"))
    }
    assert len(said) > 30, said  # the pattern still finds them
    assert said - set(SOURCE.texts) == set()

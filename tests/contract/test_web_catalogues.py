"""Every text the web app shows has a German and an English entry in the catalogues."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from services.web import i18n

WEB = Path(i18n.__file__).parent
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted() -> set[str]:
    found = extract_from_dir(
        str(WEB),
        method_map=[("**.py", "python"), ("**/templates/**.html", "jinja2")],
        options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None},
    )
    ids: set[str] = set()
    for _file, _line, message, _comments, _context in found:
        ids.add(message if isinstance(message, str) else message[0])
    return ids


def catalogue(language: str) -> dict[str, object]:
    with i18n.catalogue_path(language).open("rb") as po:
        return {
            (m.id if isinstance(m.id, str) else m.id[0]): m.string
            for m in read_po(po, locale=language)
            if m.id
        }


def test_the_pages_use_texts_at_all():
    assert len(extracted()) > 150


def test_every_text_has_a_german_translation_with_the_same_placeholders():
    german = catalogue("de")
    missing = sorted(extracted() - german.keys())
    assert not missing, f"not in the German catalogue: {missing}"
    for text in extracted():
        translated = german[text]
        forms = list(translated) if isinstance(translated, tuple | list) else [translated]
        assert all(forms), f"empty German translation of {text!r}"
        for form in forms:
            assert isinstance(form, str), (text, form)
            assert set(PLACEHOLDER.findall(form)) <= set(PLACEHOLDER.findall(text)) | {"num"}, (
                text,
                form,
            )


def test_the_english_catalogue_lists_every_text():
    missing = sorted(extracted() - catalogue("en").keys())
    assert not missing, f"not in the English catalogue: {missing}"


def test_the_catalogues_hold_no_stale_texts():
    stale = sorted(catalogue("de").keys() - extracted())
    assert not stale, f"no longer used, remove from the catalogues: {stale}"

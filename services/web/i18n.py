"""The web app's languages: gettext catalogues (locales/<lang>/LC_MESSAGES/messages.po), read
with Babel at start, so there is no compile step; German is the default.

The message ids are the English texts. `pybabel extract -F services/web/babel.cfg` lists them;
tests/contract/test_web_catalogues.py fails when a text lacks a translation.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta, tzinfo
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES = Path(__file__).with_name("locales")
LANGUAGES = ("de", "en")
DEFAULT = "de"
TIMEZONE = "Europe/Berlin"


def N_(text: str) -> str:
    """Mark a text for the catalogue; it is translated where it is shown."""
    return text


def catalogue_path(language: str) -> Path:
    return LOCALES / language / "LC_MESSAGES" / "messages.po"


@cache
def translations(language: str) -> Translations:
    """The compiled catalogue of one language (compiled in memory from its .po file)."""
    with catalogue_path(language).open("rb") as po:
        catalog = read_po(po, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def choose(cookie: str | None) -> str:
    """The user's choice (cookie), else German: the offices' working language."""
    if cookie in LANGUAGES:
        return str(cookie)
    return DEFAULT


def when(value: datetime | str | None, language: str) -> str:
    """A time in the office's time zone, written the way the language writes it."""
    if value is None or value == "":
        return "–"
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return format_datetime(at, "short", tzinfo=_tz(), locale=Locale.parse(language))


def age(since: datetime | str | None, now: datetime, language: str) -> str:
    """How long ago, e.g. "3 Tage" or "2 hours"."""
    if since is None or since == "":
        return "–"
    at = datetime.fromisoformat(since) if isinstance(since, str) else since
    return format_timedelta(now - at, locale=Locale.parse(language), threshold=1.5)


def duration(seconds: float | None, language: str) -> str:
    """A span of time in words, e.g. "4 Stunden"."""
    if seconds is None:
        return "–"
    return format_timedelta(
        timedelta(seconds=seconds), locale=Locale.parse(language), threshold=1.5
    )


def _tz() -> tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(TIMEZONE)

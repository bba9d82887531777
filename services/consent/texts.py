"""What a person reads, in their language: the catalogue of person-facing texts.

The texts live as gettext catalogues (`locales/<language>/LC_MESSAGES/person.po`, English
message ids, read with Babel at start: no compile step). Each catalogue says how far it can be
trusted in its header: `X-Review-State` is `source` (German and English, written by the team;
the German text is binding), `draft` (written by the team, not yet checked by a qualified
translator) or `reviewed` (then `X-Reviewed-By` and `X-Reviewed-On` say by whom and when).
Nothing falls back silently: a text missing in a language is an error, and
tests/contract/test_person_texts.py fails on it. `locales/glossary.json` holds each language to
one term per concept (consent, withdrawal, agency, counselling office, deletion, referral).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.messages.pofile import read_po

from schemas.vocabulary import (
    AgencyKind,
    ConsentMethod,
    ContactChannel,
    DataCategory,
    DeletionKind,
    Need,
    Purpose,
    ReferralStatus,
    ResidenceStatus,
)

LOCALES = Path(__file__).parent / "locales"
BINDING = "de"
"""The language whose text is binding: every other text is printed before it, never alone."""
SEPARATOR = "\n" + "—" * 40 + "\n\n"
"""Between a document's part in the person's language and its binding German part."""


REVIEW_FIELD = re.compile(r'^"(X-Review(?:ed)?-[A-Za-z-]+): ?(.*?)\\n"$', re.M)
"""A review field of a catalogue's header (Babel keeps only the standard ones)."""


class PersonLanguage(StrEnum):
    """The languages a person can read their texts in (ISO 639 codes, and one private-use
    variant)."""

    DE = "de"
    DE_LS = "de-x-ls"
    """Leichte Sprache: easy-read German (short sentences, hard words explained)."""
    EN = "en"
    AR = "ar"
    FA = "fa"
    PRS = "prs"
    PS = "ps"
    CKB = "ckb"
    KMR = "kmr"
    TR = "tr"
    RU = "ru"
    UK = "uk"
    TI = "ti"
    SO = "so"
    FR = "fr"


@dataclass(frozen=True, slots=True)
class Script:
    """How a language is written: its own name for itself, and its direction."""

    endonym: str
    rtl: bool = False


SCRIPTS: dict[PersonLanguage, Script] = {
    PersonLanguage.DE: Script("Deutsch"),
    PersonLanguage.DE_LS: Script("Leichte Sprache"),
    PersonLanguage.EN: Script("English"),
    PersonLanguage.AR: Script("العربية", rtl=True),
    PersonLanguage.FA: Script("فارسی", rtl=True),
    PersonLanguage.PRS: Script("دری", rtl=True),
    PersonLanguage.PS: Script("پښتو", rtl=True),
    PersonLanguage.CKB: Script("کوردیی ناوەندی", rtl=True),
    PersonLanguage.KMR: Script("Kurmancî"),
    PersonLanguage.TR: Script("Türkçe"),
    PersonLanguage.RU: Script("Русский"),
    PersonLanguage.UK: Script("Українська"),
    PersonLanguage.TI: Script("ትግርኛ"),
    PersonLanguage.SO: Script("Soomaali"),
    PersonLanguage.FR: Script("Français"),
}


CONSENT_TEXT_VERSION = "2026-12"
"""The version of the consent text the person is shown (its words are the catalogues'). A
change of its words in any language is a new version: a consent keeps the version and the
fingerprint of the words it was given on. 2026-12: one term per concept (the glossary)."""
CONSENT_TEXT = (
    "Consent to referral (version {version})",
    "I agree that the office passes my request on to the agencies named below so that they can "
    "help me. Only the data ticked below is passed on, encrypted, and only to these agencies.",
    "Health data, origin or religion are passed on only if I explicitly agree to that.",
    "I can withdraw this consent at any time at the office. Then no further agency is asked, "
    "and every agency that received my data is asked to delete it. I receive a receipt for "
    "this consent.",
)
"""The consent text: its title, then its paragraphs (English ids of the catalogues)."""


def consent_text(language: PersonLanguage) -> list[str]:
    """The consent text of the current version in `language`: title, then paragraphs."""
    t = catalogue(language)
    title, *paragraphs = CONSENT_TEXT
    version = left_to_right(CONSENT_TEXT_VERSION, language)
    return [t(title, version=version), *(t(p) for p in paragraphs)]


def consent_text_sha256(language: PersonLanguage) -> str:
    """The fingerprint of the consent text as `consent_text` shows it in `language`."""
    shown = "\n\n".join(consent_text(language))
    return hashlib.sha256(shown.encode()).hexdigest()


BERLIN = ZoneInfo("Europe/Berlin")
"""A person reads times on their local clock, with the zone (never bare UTC)."""


def local_time(moment: datetime) -> str:
    """A time as the person's clock shows it, with its zone: 2026-12-04 14:05 CET."""
    return f"{moment.astimezone(BERLIN):%Y-%m-%d %H:%M %Z}"


def left_to_right(value: str, language: PersonLanguage) -> str:
    """A left-to-right run (a time, an id, a version, a German name) kept whole inside a
    right-to-left language's text (Unicode bidi isolates: U+2066 LEFT-TO-RIGHT ISOLATE ...
    U+2069 POP DIRECTIONAL ISOLATE); as it is in a left-to-right language."""
    return f"\u2066{value}\u2069" if SCRIPTS[language].rtl else value


# Each code a person's text shows, as the English id of its text: no code is ever shown as it is.
PURPOSES = {
    Purpose.REFERRAL: "referral to a specialist agency",
    Purpose.FOLLOW_UP: "follow-up by the counselling office",
}
METHODS = {
    ConsentMethod.SIGNED_FORM: "signed form",
    ConsentMethod.WITNESSED_VERBAL: "given verbally, with a witness",
    ConsentMethod.ELECTRONIC: "given electronically",
}
CATEGORIES = {
    DataCategory.CLIENT_REFERENCE: "file reference",
    DataCategory.NAME: "name",
    DataCategory.NEEDS: "needs",
    DataCategory.LANGUAGES: "languages",
    DataCategory.AGE: "age",
    DataCategory.AREA: "place of residence",
    DataCategory.CASE_NOTE: "case note",
    DataCategory.CONTACT: "contact details",
    DataCategory.RESIDENCE_STATUS: "residence status",
    DataCategory.HEALTH: "health",
    DataCategory.ETHNIC_ORIGIN: "ethnic origin",
    DataCategory.RELIGION: "religion",
}
KINDS = {
    AgencyKind.LEGAL_AID: "legal aid",
    AgencyKind.RECOGNITION_COUNSELLING: "recognition of foreign qualifications",
    AgencyKind.LANGUAGE_SCHOOL: "language school",
    AgencyKind.MIGRATION_COUNSELLING: "migration counselling",
    AgencyKind.YOUTH_MIGRATION_SERVICE: "youth migration service",
    AgencyKind.JOBCENTER: "Jobcenter",
    AgencyKind.EMPLOYMENT_AGENCY: "employment agency",
    AgencyKind.PSYCHOSOCIAL: "psychosocial support",
    AgencyKind.VIOLENCE_PROTECTION: "protection from violence",
    AgencyKind.HOUSING: "housing help",
    AgencyKind.HEALTH: "health service",
    AgencyKind.EDUCATION: "school or childcare",
    AgencyKind.INTERPRETING: "interpreting",
    AgencyKind.COUNSELLING_OFFICE: "counselling office",
    AgencyKind.AUTHORITY: "public authority",
}
NEEDS = {
    Need.LEGAL_AID: "legal advice",
    Need.LEGAL_AID_RESIDENCE: "legal advice on residence",
    Need.LEGAL_AID_ASYLUM: "legal advice on asylum",
    Need.RECOGNITION: "recognition of foreign qualifications",
    Need.LANGUAGE_COURSE: "German course",
    Need.INTEGRATION_COURSE: "integration course",
    Need.JOB_RELATED_GERMAN: "German course for work",
    Need.LITERACY_COURSE: "literacy course",
    Need.MIGRATION_COUNSELLING: "migration counselling",
    Need.ADULT_MIGRATION_COUNSELLING: "migration counselling for adults",
    Need.YOUTH_MIGRATION_COUNSELLING: "migration counselling for young people",
    Need.EMPLOYMENT: "work and jobs",
    Need.JOBCENTER: "Jobcenter",
    Need.EMPLOYMENT_AGENCY: "employment agency",
    Need.SOCIAL_BENEFITS: "social benefits",
    Need.PSYCHOSOCIAL: "psychosocial support",
    Need.VIOLENCE_PROTECTION: "protection from violence",
    Need.HOUSING: "housing help",
    Need.HEALTH: "health",
    Need.SCHOOLS_CHILDCARE: "school or childcare",
    Need.SCHOOL: "school",
    Need.CHILDCARE: "childcare",
    Need.INTERPRETING: "interpreting",
}
STATES = {
    ReferralStatus.DRAFT: "being prepared",
    ReferralStatus.REQUESTED: "sent, not yet seen by the agency",
    ReferralStatus.RECEIVED: "received by the agency",
    ReferralStatus.ACCEPTED: "accepted: the agency will contact you",
    ReferralStatus.REJECTED: "declined by the agency",
    ReferralStatus.IN_PROGRESS: "the agency is helping you",
    ReferralStatus.ON_HOLD: "paused",
    ReferralStatus.COMPLETED: "finished",
    ReferralStatus.FAILED: "could not be finished",
    ReferralStatus.CANCELLED: "withdrawn",
    ReferralStatus.FORWARDED: "passed on to another agency that can help you better",
}
"""A referral's state in plain words, as the person's page says it."""
DELETIONS = {
    DeletionKind.REQUESTED: "asked to delete your data",
    DeletionKind.REMINDED: "reminded to delete your data",
    DeletionKind.ESCALATED: "has not yet confirmed the deletion; the office is following it up",
    DeletionKind.CONFIRMED: "has confirmed that your data is deleted",
}
"""Where an agency's deletion of the person's data stands after a withdrawal."""
RESIDENCE = {
    ResidenceStatus.PERMISSION_TO_RESIDE: "permission to reside during the asylum procedure",
    ResidenceStatus.TOLERATION: "toleration (Duldung)",
    ResidenceStatus.RESIDENCE_PERMIT: "residence permit",
    ResidenceStatus.SETTLEMENT_PERMIT: "settlement permit",
    ResidenceStatus.EU_LONG_TERM: "EU long-term residence permit",
    ResidenceStatus.FICTION_CERTIFICATE: "certificate that an application is pending",
    ResidenceStatus.VISA: "visa",
    ResidenceStatus.EU_FREE_MOVEMENT: "EU freedom of movement",
    ResidenceStatus.NATURALISED: "German citizen",
    ResidenceStatus.UNKNOWN: "not known",
}
CHANNELS = {
    ContactChannel.PHONE: "phone",
    ContactChannel.SMS: "text message",
    ContactChannel.EMAIL: "e-mail",
    ContactChannel.POST: "letter",
    ContactChannel.VIA_OFFICE: "through the counselling office",
}


def printed_in(language: PersonLanguage) -> list[PersonLanguage]:
    """The languages a document for the person is printed in, in order: theirs, then the
    binding German (once, if theirs is German)."""
    binding = PersonLanguage(BINDING)
    return [language] if language == binding else [language, binding]


class MissingText(KeyError):
    """A person-facing text has no translation in a language (never shown in English
    instead)."""


@dataclass(frozen=True, slots=True)
class Review:
    """How far a language's texts can be trusted."""

    state: str  # source, draft or reviewed
    by: str = ""
    on: str = ""

    @property
    def draft(self) -> bool:
        return self.state == "draft"


@dataclass(frozen=True, slots=True)
class Catalogue:
    """One language's texts and their review."""

    language: PersonLanguage
    texts: dict[str, str]
    review: Review

    def __call__(self, message: str, **values: str) -> str:
        """The text for `message` (its English id), with `values` filled in."""
        found = self.texts.get(message)
        if not found:
            raise MissingText(f"{message!r} has no {self.language} text")
        return found.format(**values) if values else found


def path(language: PersonLanguage) -> Path:
    return LOCALES / language.value / "LC_MESSAGES" / "person.po"


@cache
def catalogue(language: PersonLanguage) -> Catalogue:
    """A language's catalogue, read once."""
    file = path(language)
    with file.open("rb") as po:
        texts = {str(m.id): str(m.string) for m in read_po(po) if m.id}
    header = dict(
        re.findall(r'^"(X-Review(?:ed)?-[A-Za-z-]+): ?(.*?)\\n"$', file.read_text(), re.M)
    )
    review = Review(
        header.get("X-Review-State", "draft"),
        header.get("X-Reviewed-By", ""),
        header.get("X-Reviewed-On", ""),
    )
    return Catalogue(language, texts, review)

"""What the pages call each code of the shared vocabulary (English ids of the catalogues)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.vocabulary import (
    REASONS_FOR,
    AgencyKind,
    ConsentMethod,
    DataCategory,
    DeadlineKind,
    DeletionKind,
    Need,
    Outcome,
    OverdueKind,
    Purpose,
    ReasonCode,
    ReferralStatus,
    Urgency,
    WithdrawnBy,
)
from services.consent import texts
from services.consent.texts import SCRIPTS, PersonLanguage
from services.directory.needs import LABELS as TAXONOMY
from services.referral.legal_deadline import LAENDER as LAENDER
from services.web.i18n import N_


def needs(language: str) -> list[tuple[str, str]]:
    """Every need with its name in `language`, from the directory's published taxonomy."""
    return [(need.value, TAXONOMY[need].name(language)) for need in Need]


def need_name(code: str, language: str) -> str:
    """A need's name in `language`; an unknown code as it is."""
    try:
        return TAXONOMY[Need(code)].name(language)
    except ValueError:
        return code


KINDS = {
    AgencyKind.LEGAL_AID: N_("Legal aid"),
    AgencyKind.RECOGNITION_COUNSELLING: N_("Recognition counselling"),
    AgencyKind.LANGUAGE_SCHOOL: N_("Language school"),
    AgencyKind.MIGRATION_COUNSELLING: N_("Migration counselling service"),
    AgencyKind.YOUTH_MIGRATION_SERVICE: N_("Youth migration service"),
    AgencyKind.JOBCENTER: N_("Jobcenter"),
    AgencyKind.EMPLOYMENT_AGENCY: N_("Employment agency"),
    AgencyKind.PSYCHOSOCIAL: N_("Psychosocial service"),
    AgencyKind.VIOLENCE_PROTECTION: N_("Violence protection service"),
    AgencyKind.HOUSING: N_("Housing service"),
    AgencyKind.HEALTH: N_("Health service"),
    AgencyKind.EDUCATION: N_("School or childcare service"),
    AgencyKind.INTERPRETING: N_("Interpreting service"),
    AgencyKind.COUNSELLING_OFFICE: N_("Counselling office"),
    AgencyKind.AUTHORITY: N_("Authority"),
}

CATEGORIES = {
    DataCategory.CLIENT_REFERENCE: N_("Client reference"),
    DataCategory.NAME: N_("Name"),
    DataCategory.NEEDS: N_("Needs"),
    DataCategory.LANGUAGES: N_("Languages"),
    DataCategory.AGE: N_("Age"),
    DataCategory.AREA: N_("Place of residence"),
    DataCategory.CASE_NOTE: N_("Case note"),
    DataCategory.CONTACT: N_("Contact details"),
    DataCategory.RESIDENCE_STATUS: N_("Residence status"),
    DataCategory.HEALTH: N_("Health data"),
    DataCategory.ETHNIC_ORIGIN: N_("Ethnic origin"),
    DataCategory.RELIGION: N_("Religion"),
}

METHODS = {
    ConsentMethod.SIGNED_FORM: N_("Signed form"),
    ConsentMethod.WITNESSED_VERBAL: N_("Verbal, witnessed"),
    ConsentMethod.ELECTRONIC: N_("Electronic"),
}

PURPOSES = {
    Purpose.REFERRAL: N_("Referral to the agency"),
    Purpose.FOLLOW_UP: N_("Follow-up by the office"),
}

URGENCIES = {
    Urgency.ROUTINE: N_("Routine"),
    Urgency.SOON: N_("Soon"),
    Urgency.URGENT: N_("Urgent"),
}

STATES = {
    ReferralStatus.DRAFT: N_("Being sent"),
    ReferralStatus.REQUESTED: N_("Offered"),
    ReferralStatus.RECEIVED: N_("Received"),
    ReferralStatus.ACCEPTED: N_("Accepted"),
    ReferralStatus.REJECTED: N_("Declined"),
    ReferralStatus.IN_PROGRESS: N_("In progress"),
    ReferralStatus.ON_HOLD: N_("On hold"),
    ReferralStatus.COMPLETED: N_("Completed"),
    ReferralStatus.FAILED: N_("Failed"),
    ReferralStatus.CANCELLED: N_("Withdrawn"),
    ReferralStatus.FORWARDED: N_("Forwarded"),
}

REPORT_COLUMNS = {
    "declined": N_("Declined"),
    "failed": N_("Failed"),
    "reminded-only": N_("Reminded"),
    "escalated": N_("Escalated"),
}
"""The monitoring report's columns on the ombudsperson's pages."""

OVERDUE = {
    OverdueKind.REMINDED: N_("Reminder sent"),
    OverdueKind.ESCALATED: N_("Escalated: no answer"),
    OverdueKind.EXPIRED: N_("Expired without answer"),
}

DELETION = {
    DeletionKind.REQUESTED: N_("Deletion requested"),
    DeletionKind.REMINDED: N_("Deletion reminder sent"),
    DeletionKind.ESCALATED: N_("Deletion overdue"),
    DeletionKind.CONFIRMED: N_("Deletion confirmed"),
}

WITHDRAWN_BY = {
    WithdrawnBy.OFFICE: N_("by the office"),
    WithdrawnBy.PERSON: N_("with the person's own link, on their page"),
}

REASONS = {
    "need.offered": N_("Offers this help"),
    "area.municipality": N_("Serves the municipality"),
    "area.postcode": N_("Serves the postcode"),
    "area.county": N_("Serves the county"),
    "area.state": N_("Serves the whole Land"),
    "area.remote": N_("Helps remotely"),
    "area.any": N_("No place given"),
    "language.match": N_("Speaks the person's language"),
    "language.any": N_("No language asked for"),
    "language.bridged": N_("With an interpreter"),
    "age.within": N_("Age within its limits"),
    "waiting.days": N_("Waiting time"),
    "capacity.free": N_("Free places"),
    "area.outside": N_("Does not serve the place"),
    "language.not-offered": N_("Does not speak the person's languages"),
    "age.outside-limits": N_("Age outside its limits"),
    "capacity.none": N_("No free places"),
    "inactive": N_("Not taking referrals"),
}

REASON_DETAILS = {
    "area.municipality": N_("%(place)s (+%(points)s)"),
    "area.postcode": N_("%(place)s (+%(points)s)"),
    "area.county": N_("%(place)s (+%(points)s)"),
    "area.state": N_("%(place)s (+%(points)s)"),
    "area.remote": N_("remotely in %(place)s (+%(points)s)"),
    "area.any": N_("+%(points)s"),
    "need.offered": N_("%(needs)s (+%(points)s)"),
    "language.match": N_("%(languages)s (+%(points)s)"),
    "language.any": N_("+%(points)s"),
    "language.bridged": N_("%(interpreter_name)s interprets %(languages)s and %(between)s"),
    "age.within": N_("age %(age)s; limits: %(limits)s"),
    "age.outside-limits": N_("age %(age)s; limits: %(limits)s"),
    "waiting.days": N_("%(days)s days (+%(points)s for this urgency)"),
    "capacity.free": N_("%(slots)s free (+%(points)s)"),
    "area.outside": N_("%(place)s"),
    "language.not-offered": N_("asked for: %(languages)s"),
}
"""The directory's facts behind a reason, in the reader's language (a code without an entry
shows no detail; a reason without facts, from an older directory, its English sentence)."""
AGE_LIMITS = {
    "both": N_("%(min_age)s to %(max_age)s"),
    "min": N_("%(min_age)s and over"),
    "max": N_("up to %(max_age)s"),
    "none": N_("none"),
}


def reason_detail(reason: dict[str, Any], gettext: Callable[[str], str], language: str) -> str:
    """What a reason of the directory says, in `language`: its place by name, its needs and
    languages named, its points; no English sentence and no bare key."""
    facts = reason.get("facts") or {}
    if not facts:
        return str(reason.get("text", ""))
    form = REASON_DETAILS.get(reason.get("code", ""))
    if form is None:
        return ""
    values = {k: "" if v is None else v for k, v in facts.items()}
    if facts.get("place"):
        name = facts.get("place_name")
        values["place"] = f"{name} ({facts['place']})" if name else str(facts["place"])
    values["needs"] = ", ".join(need_name(n, language) for n in facts.get("needs") or [])
    for named in ("languages", "between"):
        values[named] = ", ".join(
            gettext(LANGUAGES[code]) if code in LANGUAGES else code
            for code in facts.get(named) or []
        )
    bounded = (facts.get("min_age") is not None, facts.get("max_age") is not None)
    limits = {(True, True): "both", (True, False): "min", (False, True): "max"}.get(bounded)
    try:
        values["limits"] = gettext(AGE_LIMITS[limits or "none"]) % values
        return gettext(form) % values
    except (KeyError, ValueError, TypeError):  # facts this version does not know: as sent
        return str(reason.get("text", ""))


NOT_SENDABLE = {
    "agency.inactive": N_("not taking referrals"),
    "agency.no-key": N_("cannot receive sealed data yet (no key)"),
    "consent.withdrawn": N_("the consent was withdrawn"),
    "consent.not-covered": N_("not covered by the consent"),
    "consent.not-explicit": N_("needs explicit consent to health data"),
    "consent.expired": N_("the consent has expired"),
    "consent.not-yet-given": N_("the consent is dated in the future"),
    "consent.purpose": N_("the consent does not cover referral"),
    "consent.categories": N_("the consent does not release the data it needs"),
}
"""Why a suggested agency cannot be sent the request (the codes of intake's one rule)."""

CONTACT_CHANNELS = {
    "phone": N_("phone call"),
    "sms": N_("text message"),
    "email": N_("e-mail"),
    "post": N_("letter"),
    "via-office": N_("through our office"),
}

PLAN_STATES = {
    "open": N_("no agency has taken the person on yet"),
    "under-way": N_("an agency has taken the person on"),
    "done": N_("every referral has ended"),
}

DEADLINE_KINDS = {
    DeadlineKind.ASYLUM_LAWSUIT_2W: N_("Lawsuit against an asylum decision: 2 weeks (§ 74 AsylG)"),
    DeadlineKind.ASYLUM_LAWSUIT_1W: N_(
        "Lawsuit, application rejected as manifestly unfounded or inadmissible: 1 week "
        "(§ 74 with § 36 AsylG)"
    ),
    DeadlineKind.OBJECTION_1M: N_("Objection (Widerspruch): 1 month (§ 70 VwGO)"),
    DeadlineKind.OTHER: N_("Another deadline (give the day it ends)"),
}

RESIDENCE = {
    "permission-to-reside": N_(
        "Permission to reside during the asylum procedure (Aufenthaltsgestattung)"
    ),
    "toleration": N_("Toleration (Duldung)"),
    "residence-permit": N_("Residence permit (Aufenthaltserlaubnis)"),
    "settlement-permit": N_("Settlement permit (Niederlassungserlaubnis)"),
    "eu-long-term-residence": N_("EU long-term residence (Daueraufenthalt-EU)"),
    "fiction-certificate": N_("Application pending (Fiktionsbescheinigung)"),
    "visa": N_("Visa"),
    "eu-free-movement": N_("EU, EEA or Swiss citizen"),
    "naturalised": N_("German citizen (naturalised)"),
    "unknown": N_("Unknown"),
}

WARNINGS = {
    "place.unchecked": N_(
        "The directory did not answer, so the place and the agencies named in the consent "
        "were not checked. The suggestions below show what the directory makes of them."
    ),
    "place.unknown-postcode": N_(
        "The directory does not know this postcode: only agencies that list it, or serve the "
        "whole Land or remotely, can be suggested. Check it, or give the municipality."
    ),
    "place.postcode-elsewhere": N_(
        "The postcode lies in another municipality than the one given: the municipality "
        "decides which agencies serve the person. Check both."
    ),
}
"""What intake recorded a request with but asks the counsellor to check (its warning codes)."""

LANGUAGES = {
    "de": N_("German"),
    "en": N_("English"),
    "ar": N_("Arabic"),
    "fa": N_("Persian"),
    "ru": N_("Russian"),
    "uk": N_("Ukrainian"),
    "tr": N_("Turkish"),
    "ti": N_("Tigrinya"),
    "so": N_("Somali"),
    "ps": N_("Pashto"),
    "ku": N_("Kurdish"),
    "fr": N_("French"),
    "es": N_("Spanish"),
    "pl": N_("Polish"),
    "ro": N_("Romanian"),
    "sq": N_("Albanian"),
    "vi": N_("Vietnamese"),
}
"""The languages offered in the request form (ISO 639-1); others can be typed."""

CHANNELS = {
    "nats": N_("NATS (its own software)"),
    "webhook": N_("Webhook (its case software)"),
    "email": N_("E-mail and portal"),
    "fhir": N_("FHIR (its clinical software)"),
}

CUSTODY = {
    "agency": N_("The agency itself"),
    "gateway": N_("The gateway, for the agency"),
    "county": N_("The county (sample agency)"),
    "": N_("No key yet"),
}
"""Who holds the private half of an agency's sealing key (see services/directory/identities)."""

REASON_CODES = {
    ReasonCode.NO_CAPACITY: N_("No capacity"),
    ReasonCode.NOT_ELIGIBLE: N_("Not eligible"),
    ReasonCode.OUT_OF_AREA: N_("Outside the area served"),
    ReasonCode.LANGUAGE_NOT_OFFERED: N_("Language not offered"),
    ReasonCode.COULD_NOT_CONTACT: N_("Could not reach the person"),
    ReasonCode.PERSON_DECLINED: N_("The person declined"),
    ReasonCode.REFERRED_ELSEWHERE: N_("Referred elsewhere"),
    ReasonCode.MISSING_DOCUMENTS: N_("Documents missing"),
    ReasonCode.DUPLICATE: N_("Duplicate referral"),
    ReasonCode.NEED_MET: N_("Need met otherwise"),
    ReasonCode.SENT_IN_ERROR: N_("Sent in error"),
    ReasonCode.CONSENT_WITHDRAWN: N_("Consent withdrawn"),
    ReasonCode.NOT_ACKNOWLEDGED: N_("Not acknowledged in time"),
    ReasonCode.OTHER: N_("Other reason"),
}
"""Why a referral ended or paused (schemas.vocabulary.ReasonCode); older referrals may show
free text instead, as it was."""

CANCEL_REASONS = [(code.value, REASON_CODES[code]) for code in sorted(REASONS_FOR["cancel"])]
"""The reasons the office can give for withdrawing a referral."""

OUTCOMES = {
    Outcome.PROVIDED: N_("Help provided"),
    Outcome.PARTLY_PROVIDED: N_("Help partly provided"),
    Outcome.NOT_PROVIDED: N_("Help not provided"),
}

PERSON_LANGUAGES = [
    (language.value, SCRIPTS[language], texts.catalogue(language).review.draft)
    for language in PersonLanguage
]
"""The languages a person can read their receipt in: code, name in itself and direction,
and whether its text is still a draft translation."""

EVERYTHING = {
    **{k.value: v for k, v in STATES.items()},
    **{k.value: v for k, v in OVERDUE.items()},
    **{k.value: v for k, v in DELETION.items()},
}

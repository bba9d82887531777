"""Controlled vocabularies shared by the contracts and the services."""

from __future__ import annotations

from enum import StrEnum


class Need(StrEnum):
    """What a person needs help with: the codes of the directory's needs taxonomy.

    A sub-need's code extends its parent's with a dot ("language-course.literacy"). An agency
    offering a need offers its sub-needs too; one asked for a need may offer any of them.
    """

    LEGAL_AID = "legal-aid"
    LEGAL_AID_RESIDENCE = "legal-aid.residence"
    LEGAL_AID_ASYLUM = "legal-aid.asylum"
    RECOGNITION = "recognition"
    LANGUAGE_COURSE = "language-course"
    INTEGRATION_COURSE = "language-course.integration"
    JOB_RELATED_GERMAN = "language-course.job"
    LITERACY_COURSE = "language-course.literacy"
    MIGRATION_COUNSELLING = "migration-counselling"
    ADULT_MIGRATION_COUNSELLING = "migration-counselling.adults"
    YOUTH_MIGRATION_COUNSELLING = "migration-counselling.youth"
    EMPLOYMENT = "employment"
    JOBCENTER = "employment.jobcenter"
    EMPLOYMENT_AGENCY = "employment.employment-agency"
    SOCIAL_BENEFITS = "social-benefits"
    PSYCHOSOCIAL = "psychosocial"
    VIOLENCE_PROTECTION = "violence-protection"
    HOUSING = "housing"
    HEALTH = "health"
    SCHOOLS_CHILDCARE = "schools-childcare"
    SCHOOL = "schools-childcare.school"
    CHILDCARE = "schools-childcare.childcare"
    INTERPRETING = "interpreting"

    @property
    def parent(self) -> Need | None:
        """The broader need, or None for a top-level one."""
        return Need(self.value.rsplit(".", 1)[0]) if "." in self.value else None

    @property
    def root(self) -> Need:
        """The top-level need this one belongs to."""
        return Need(self.value.split(".", 1)[0])

    def related(self) -> frozenset[Need]:
        """Needs an agency may offer to help with this one: itself, broader and narrower needs."""
        return _RELATED[self]


_RELATED: dict[Need, frozenset[Need]] = {
    asked: frozenset(
        need
        for need in Need
        if need == asked
        or asked.value.startswith(need.value + ".")
        or need.value.startswith(asked.value + ".")
    )
    for asked in Need
}


class AgencyKind(StrEnum):
    """Kinds of agency; a consent may name a kind instead of one agency."""

    LEGAL_AID = "legal-aid"
    RECOGNITION_COUNSELLING = "recognition-counselling"
    LANGUAGE_SCHOOL = "language-school"
    MIGRATION_COUNSELLING = "migration-counselling"
    YOUTH_MIGRATION_SERVICE = "youth-migration-service"
    JOBCENTER = "jobcenter"
    EMPLOYMENT_AGENCY = "employment-agency"
    PSYCHOSOCIAL = "psychosocial"
    VIOLENCE_PROTECTION = "violence-protection"
    HOUSING = "housing"
    HEALTH = "health"
    EDUCATION = "education"
    INTERPRETING = "interpreting"
    COUNSELLING_OFFICE = "counselling-office"
    AUTHORITY = "authority"


class Urgency(StrEnum):
    """How soon the person needs help."""

    ROUTINE = "routine"
    SOON = "soon"
    URGENT = "urgent"


class DeadlineKind(StrEnum):
    """The legal deadlines a request can be under (services/referral/legal_deadline.py counts
    them): a lawsuit against a negative asylum decision within two weeks (§74(1) AsylG), or
    one week when the application was rejected as manifestly unfounded or inadmissible
    (§74(1) with §36(3) AsylG); an objection within a month (§70 VwGO); another deadline
    given by its date."""

    ASYLUM_LAWSUIT_2W = "asylum-lawsuit-2w"
    ASYLUM_LAWSUIT_1W = "asylum-lawsuit-1w"
    OBJECTION_1M = "objection-1m"
    OTHER = "other"


class ContactChannel(StrEnum):
    """How the person prefers to be contacted by the agency."""

    PHONE = "phone"
    SMS = "sms"
    EMAIL = "email"
    POST = "post"
    VIA_OFFICE = "via-office"
    """Through the counselling office, which arranges the first contact."""


class ResidenceStatus(StrEnum):
    """The person's residence status, as German law names it (what an agency needs to know
    to see whether it may help: courses, benefits and legal remedies depend on it)."""

    PERMISSION_TO_RESIDE = "permission-to-reside"
    """Aufenthaltsgestattung (§ 55 AsylG): the asylum procedure is running."""
    TOLERATION = "toleration"
    """Duldung (§ 60a AufenthG): deportation is suspended."""
    RESIDENCE_PERMIT = "residence-permit"
    """Aufenthaltserlaubnis (§ 7 AufenthG), with its legal basis, e.g. § 25 Abs. 2."""
    SETTLEMENT_PERMIT = "settlement-permit"
    """Niederlassungserlaubnis (§ 9 AufenthG)."""
    EU_LONG_TERM = "eu-long-term-residence"
    """Erlaubnis zum Daueraufenthalt-EU (§ 9a AufenthG)."""
    FICTION_CERTIFICATE = "fiction-certificate"
    """Fiktionsbescheinigung (§ 81 AufenthG): an application is pending."""
    VISA = "visa"
    EU_FREE_MOVEMENT = "eu-free-movement"
    """EU, EEA or Swiss citizen (FreizügG/EU)."""
    NATURALISED = "naturalised"
    UNKNOWN = "unknown"


class WithdrawnBy(StrEnum):
    """Who withdrew a consent (GDPR Art. 7(3): withdrawing must be as easy as giving)."""

    OFFICE = "office"
    """The counselling office, on the person's word."""
    PERSON = "person"
    """With the person's own link, on their page (whoever holds the link: the person, as a
    rule, since only the receipt handed to them carries it)."""


class DataCategory(StrEnum):
    """Categories of personal data a consent may release to a recipient."""

    CLIENT_REFERENCE = "client-reference"
    NAME = "name"
    NEEDS = "needs"
    LANGUAGES = "languages"
    AGE = "age"
    AREA = "area"
    CASE_NOTE = "case-note"
    CONTACT = "contact"
    RESIDENCE_STATUS = "residence-status"
    HEALTH = "health"
    ETHNIC_ORIGIN = "ethnic-origin"
    RELIGION = "religion"


SPECIAL_CATEGORIES = frozenset(
    {DataCategory.HEALTH, DataCategory.ETHNIC_ORIGIN, DataCategory.RELIGION}
)
"""GDPR Art. 9 special categories: shared only under explicit consent."""


class Purpose(StrEnum):
    """Why data is processed; a consent lists the purposes it covers."""

    REFERRAL = "referral"
    FOLLOW_UP = "follow-up"


class ConsentMethod(StrEnum):
    """How the person gave consent (GDPR Art. 7(1): the controller must prove it)."""

    SIGNED_FORM = "signed-form"
    WITNESSED_VERBAL = "witnessed-verbal"
    ELECTRONIC = "electronic"


class ReferralStatus(StrEnum):
    """FHIR Task states, as in DOMAIN.md."""

    DRAFT = "draft"
    REQUESTED = "requested"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_PROGRESS = "in-progress"
    ON_HOLD = "on-hold"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    FORWARDED = "forwarded"
    """Closed: the agency passed the referral on to another agency, which got a referral of
    its own (FHIR has no such state: a Task `completed`, with the new Task `partOf` it)."""


CLOSED_STATES = frozenset(
    {
        ReferralStatus.REJECTED,
        ReferralStatus.COMPLETED,
        ReferralStatus.FAILED,
        ReferralStatus.CANCELLED,
        ReferralStatus.FORWARDED,
    }
)
"""The states a referral ends in: nothing moves it on (but deletion after a withdrawal); the
office may send the same agency a new referral."""


ANSWER_KINDS = frozenset({ReferralStatus.ACCEPTED, ReferralStatus.REJECTED})
"""The kinds of event (`ww.referral.<agency>.<kind>`, each named after the state it leads to)
in which an agency answers an offer: it takes the referral on or declines it."""

ACKNOWLEDGING_KINDS = ANSWER_KINDS | {ReferralStatus.RECEIVED}
"""The kinds of event that show an agency saw an offer: its acknowledgement, or an answer
given at once. The time to acknowledge runs to the first of them, the time to answer to an
answer (`ANSWER_KINDS`)."""


class OverdueKind(StrEnum):
    """What the referral service says of an offer not acknowledged in time, in this order: the
    kinds of event (`ww.referral.<agency>.<kind>`) that mark a referral overdue."""

    REMINDED = "reminded"
    """The agency is reminded of the offer."""
    ESCALATED = "escalated"
    """The office is alerted: the offer is still not acknowledged."""
    EXPIRED = "expired"
    """The offer lapsed: the referral is cancelled (`not-acknowledged`)."""


OVERDUE_KINDS = tuple(OverdueKind)
"""The overdue kinds in the order they fall due."""

REMINDER_KINDS = frozenset({OverdueKind.REMINDED, OverdueKind.ESCALATED})
"""The overdue kinds that leave the offer open (expiry closes it): their reason is the
deadline's, not an answer of the agency."""


class DeletionKind(StrEnum):
    """The kinds of event (`ww.referral.<agency>.<kind>`) that track an agency's deletion of a
    person's data after a withdrawn consent: requested, reminded and escalated while it is not
    confirmed in time, until confirmed."""

    REQUESTED = "deletion-requested"
    REMINDED = "deletion-reminded"
    ESCALATED = "deletion-escalated"
    CONFIRMED = "deletion-confirmed"


DELETION_OVERDUE_KINDS = (DeletionKind.REMINDED, DeletionKind.ESCALATED)
"""What the referral service says of a deletion not confirmed in time, in this order."""


class AgencyAction(StrEnum):
    """What an agency can answer to a referral."""

    ACKNOWLEDGE = "acknowledge"
    ACCEPT = "accept"
    REJECT = "reject"
    START = "start"
    HOLD = "hold"
    RESUME = "resume"
    COMPLETE = "complete"
    FAIL = "fail"
    FORWARD = "forward"
    CONFIRM_DELETION = "confirm-deletion"


REASONED_ANSWERS = frozenset(
    {AgencyAction.REJECT, AgencyAction.HOLD, AgencyAction.FAIL, AgencyAction.FORWARD}
)
"""The answers an agency must give a reason for (the referral service refuses them without
one; the agency SDK refuses to send them without one)."""


REASON_CODES_VERSION = 1
"""The version of the closed vocabulary below. A code is never renamed or given another
meaning; a new code is added in a new version, and the events that may carry it get a new
version too (an older reader would refuse it)."""


class ReasonCode(StrEnum):
    """Why a referral was rejected, put on hold, failed, cancelled or expired, or why a
    service was not provided: a code, never free text (which may hold personal data; a comment
    travels sealed beside it). Aligned with what closed-loop referral platforms record as the
    FHIR Task's `statusReason` (SDOH Clinical Care: rejected, on-hold, failed, cancelled)."""

    NO_CAPACITY = "no-capacity"
    NOT_ELIGIBLE = "not-eligible"
    OUT_OF_AREA = "out-of-area"
    LANGUAGE_NOT_OFFERED = "language-not-offered"
    COULD_NOT_CONTACT = "could-not-contact"
    PERSON_DECLINED = "person-declined"
    REFERRED_ELSEWHERE = "referred-elsewhere"
    MISSING_DOCUMENTS = "missing-documents"
    DUPLICATE = "duplicate"
    NEED_MET = "need-met"
    SENT_IN_ERROR = "sent-in-error"
    CONSENT_WITHDRAWN = "consent-withdrawn"
    NOT_ACKNOWLEDGED = "not-acknowledged"
    OTHER = "other"


_EVERY_ANSWER = frozenset(ReasonCode) - {ReasonCode.CONSENT_WITHDRAWN, ReasonCode.NOT_ACKNOWLEDGED}
REASONS_FOR: dict[str, frozenset[ReasonCode]] = {
    AgencyAction.REJECT: _EVERY_ANSWER - {ReasonCode.NEED_MET, ReasonCode.SENT_IN_ERROR},
    AgencyAction.HOLD: frozenset(
        {
            ReasonCode.NO_CAPACITY,
            ReasonCode.COULD_NOT_CONTACT,
            ReasonCode.MISSING_DOCUMENTS,
            ReasonCode.PERSON_DECLINED,
            ReasonCode.OTHER,
        }
    ),
    AgencyAction.FAIL: _EVERY_ANSWER - {ReasonCode.DUPLICATE, ReasonCode.SENT_IN_ERROR},
    AgencyAction.COMPLETE: _EVERY_ANSWER - {ReasonCode.DUPLICATE, ReasonCode.SENT_IN_ERROR},
    AgencyAction.FORWARD: frozenset(
        {
            ReasonCode.NO_CAPACITY,
            ReasonCode.NOT_ELIGIBLE,
            ReasonCode.OUT_OF_AREA,
            ReasonCode.LANGUAGE_NOT_OFFERED,
            ReasonCode.OTHER,
        }
    ),
    "cancel": frozenset(
        {
            ReasonCode.PERSON_DECLINED,
            ReasonCode.REFERRED_ELSEWHERE,
            ReasonCode.NEED_MET,
            ReasonCode.DUPLICATE,
            ReasonCode.SENT_IN_ERROR,
            ReasonCode.COULD_NOT_CONTACT,
            ReasonCode.OTHER,
        }
    ),
    "withdraw-consent": frozenset({ReasonCode.CONSENT_WITHDRAWN}),
    "expire": frozenset({ReasonCode.NOT_ACKNOWLEDGED}),
}
"""Which codes fit which action (an agency's answer, the office's cancellation, or what the
referral service does itself); a code that does not fit is refused. On completion a reason
explains an outcome other than `provided`."""


class Outcome(StrEnum):
    """What came of a completed referral (the FHIR Task's output)."""

    PROVIDED = "provided"
    PARTLY_PROVIDED = "partly-provided"
    NOT_PROVIDED = "not-provided"


def reason_problem(
    action: str, reason: ReasonCode | None, outcome: Outcome | None = None
) -> tuple[str, str] | None:
    """What is wrong with the reason and outcome given for `action`, as (stable code,
    message), or None. The one rule: the referral service refuses by it, the agency SDK and
    intake check by it before anything is sent."""
    fitting = REASONS_FOR.get(action, frozenset())
    allowed = ", ".join(sorted(fitting))
    if action == AgencyAction.COMPLETE:
        if outcome is None:
            choices = ", ".join(o.value for o in Outcome)
            return "referral.outcome-required", f"'complete' needs an outcome: one of {choices}"
        if outcome is not Outcome.PROVIDED and reason is None:
            return "referral.reason-required", f"outcome '{outcome}' needs a reason: {allowed}"
        if outcome is Outcome.PROVIDED and reason is not None:
            return "referral.reason-unfit", "outcome 'provided' takes no reason"
    elif outcome is not None:
        return "referral.outcome-unfit", f"only 'complete' has an outcome, not '{action}'"
    if reason is None:
        if action in REASONED_ANSWERS or action == "cancel":
            return "referral.reason-required", f"'{action}' needs a reason: one of {allowed}"
        return None
    if reason not in fitting:
        if not fitting:
            return "referral.reason-unfit", f"'{action}' takes no reason"
        return "referral.reason-unfit", f"'{reason}' is no reason to {action}: one of {allowed}"
    return None

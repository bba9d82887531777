"""Controlled vocabularies shared by the contracts and the services."""

from enum import StrEnum


class Need(StrEnum):
    """What a person needs help with; the directory's taxonomy codes."""

    LEGAL_AID = "legal-aid"
    RECOGNITION = "recognition"
    LANGUAGE_COURSE = "language-course"
    MIGRATION_COUNSELLING = "migration-counselling"
    YOUTH_MIGRATION_COUNSELLING = "youth-migration-counselling"
    EMPLOYMENT = "employment"
    SOCIAL_BENEFITS = "social-benefits"
    PSYCHOSOCIAL = "psychosocial"
    VIOLENCE_PROTECTION = "violence-protection"
    HOUSING = "housing"
    HEALTH = "health"
    SCHOOLS_CHILDCARE = "schools-childcare"
    INTERPRETING = "interpreting"


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
    CONFIRM_DELETION = "confirm-deletion"

"""The HTTP contract of intake (what the counselling office sends and sees)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.events import (
    Ags,
    ConsentTerms,
    Contact,
    Land,
    Language,
    LegalDeadline,
    Postcode,
    Recipient,
    Residence,
    TextLanguage,
    require_explicit,
)
from schemas.queries import Candidate, Excluded
from schemas.vocabulary import (
    AgencyKind,
    ConsentMethod,
    DataCategory,
    DeadlineKind,
    Need,
    Outcome,
    Purpose,
    ReasonCode,
    ReferralStatus,
    Urgency,
    reason_problem,
)
from services.consent.texts import PersonLanguage
from wegweiser.platform.db import as_utc

CLOCK_SKEW = timedelta(minutes=5)
"""How far a device's clock may run ahead of intake's: a consent given 'now' on a tablet whose
clock is a little fast is still accepted."""


Utc = Annotated[
    AwareDatetime, BeforeValidator(lambda v: as_utc(v) if isinstance(v, datetime) else v)
]
"""A time the API shows: always with its zone (SQLite hands back times without one; every
time Wegweiser stores is UTC)."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConsentIn(Strict):
    """The consent the person gave, as recorded by the counsellor (the controller is the
    office, from settings; the person is the request's client reference)."""

    recipients: list[Recipient] = Field(min_length=1)
    purposes: list[Purpose] = Field(min_length=1)
    data_categories: list[DataCategory] = Field(min_length=1)
    explicit_special_categories: bool = False
    method: ConsentMethod
    given_at: AwareDatetime
    expires_at: AwareDatetime | None = None
    text_version: str = Field(min_length=1, max_length=40)
    text_language: TextLanguage = "de"

    @model_validator(mode="after")
    def _special_needs_explicit(self) -> ConsentIn:
        require_explicit(self.data_categories, self.recipients, self.explicit_special_categories)
        return self

    @field_validator("given_at")
    @classmethod
    def _not_in_the_future(cls, given_at: datetime) -> datetime:
        if given_at > datetime.now(UTC) + CLOCK_SKEW:
            raise ValueError("a consent cannot be given in the future: check the date and time")
        return given_at

    @field_validator("expires_at")
    @classmethod
    def _after_giving(cls, expires_at: datetime | None, info: ValidationInfo) -> datetime | None:
        given_at = info.data.get("given_at")
        if expires_at is not None and given_at is not None and expires_at <= given_at:
            raise ValueError("a consent must expire after it was given")
        return expires_at


class LegalDeadlineIn(Strict):
    """The legal deadline the person is under: its kind and the Land whose public holidays
    count, with the day the decision was delivered (Wegweiser counts the deadline by German
    procedural law) or the deadline itself (kind `other`, or when the delivery is unknown);
    both given, they must agree."""

    kind: DeadlineKind
    land: Land
    delivered_on: date | None = None
    ends_on: date | None = None


class RequestCreate(Strict):
    """A request for help, with the person's consent."""

    client_reference: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
    client_name: str | None = Field(default=None, max_length=200)
    needs: list[Need] = Field(min_length=1)
    languages: list[Language] = Field(default_factory=list)
    municipality: Ags | None = None
    postcode: Postcode | None = None
    age: int | None = Field(default=None, ge=0, le=130)
    urgency: Urgency = Urgency.ROUTINE
    note: str | None = Field(default=None, max_length=2000)
    contact: Contact | None = Field(
        default=None, description="sent only to agencies the consent releases `contact` to"
    )
    residence: Residence | None = Field(
        default=None,
        description="sent only to agencies the consent releases `residence-status` to",
    )
    legal_deadline: LegalDeadlineIn | None = Field(
        default=None,
        description="the offers' clock counts back from it; its kind is sent only to agencies "
        "the consent releases `residence-status` to",
    )
    auto_reoffer: bool = Field(
        default=False,
        description="under a legal deadline, with a consent that names a kind of agency: when "
        "the office is alerted that no agency has accepted, intake offers the request to the "
        "next fitting agency of the kind the alerted referral went to, on its own (recorded "
        "as `requested-automatically`)",
    )
    consent: ConsentIn

    @model_validator(mode="after")
    def _somewhere(self) -> RequestCreate:
        if self.municipality is None and self.postcode is None:
            raise ValueError("give the person's municipality (AGS) or postcode")
        return self


class Refusal(BaseModel):
    """Why something cannot be done (or, as a warning, may not work as meant): a stable
    code, the field concerned if any, and a sentence in English."""

    code: str = Field(description="stable, e.g. consent.not-explicit or agency.no-key")
    field: str | None = Field(default=None, description="e.g. postcode or consent.given_at")
    detail: str


class RequestPublic(BaseModel):
    """A recorded request, with what the counsellor should check (`warnings`)."""

    request_id: str
    consent_id: str
    needs: list[Need]
    urgency: Urgency
    recorded_at: Utc
    warnings: list[Refusal] = Field(default_factory=list)


class RequestDetail(BaseModel):
    """A request as its office sees it: the person's data unless erased, and the consent."""

    request_id: str
    client_reference: str
    recorded_at: Utc
    urgency: Urgency
    consent_id: str
    consent_withdrawn_at: Utc | None = None
    erased: bool = False
    client_name: str | None = None
    needs: list[Need] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    municipality: str | None = None
    postcode: str | None = None
    age: int | None = None
    note: str | None = None
    contact: Contact | None = None
    residence: Residence | None = None
    legal_deadline: LegalDeadline | None = None
    auto_reoffer: bool = False
    needs_another_agency: bool = Field(
        default=False,
        description="under a legal deadline: its alert has come (legal_alert_margin working "
        "days left) and no agency has accepted; send to another fitting agency",
    )


class ReferralCreate(Strict):
    """Send the request to one agency."""

    agency_id: Annotated[str, Field(min_length=1, max_length=64)]


class PlanCreate(Strict):
    """Send the request to several agencies together, as one plan."""

    agency_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=2, max_length=10, description="two or more agencies, each once"
    )

    @field_validator("agency_ids")
    @classmethod
    def _each_once(cls, agency_ids: list[str]) -> list[str]:
        if len(set(agency_ids)) != len(agency_ids):
            raise ValueError("name each agency once")
        return agency_ids


class PlanCancel(Strict):
    """Withdraw every open referral of a plan, saying why by a code."""

    reason: ReasonCode

    @model_validator(mode="after")
    def _fits(self) -> PlanCancel:
        problem = reason_problem("cancel", self.reason)
        if problem is not None:
            raise ValueError(problem[1])
        return self


class CancelIn(Strict):
    """Withdraw a referral: why, as a code, and an optional comment for the agency (sealed to
    it before it leaves intake; never stored in clear)."""

    reason: ReasonCode = Field(description="one of schemas.vocabulary.REASONS_FOR['cancel']")
    comment: Annotated[str, Field(min_length=1, max_length=2000)] | None = None

    @model_validator(mode="after")
    def _fits(self) -> CancelIn:
        problem = reason_problem("cancel", self.reason)
        if problem is not None:
            raise ValueError(problem[1])
        return self


class CommentPublic(BaseModel):
    """A comment as the office reads it: the agency's text, opened with the office's key, or
    why it cannot be read (`sealed-to-agency`: the office's own, for the agency only)."""

    text: str | None = None
    unreadable: str | None = None


class TrailItem(BaseModel):
    kind: str
    status: str | None
    version: int | None
    reason: str | None = Field(description="a reason code (free text in older entries)")
    outcome: Outcome | None = None
    comment: CommentPublic | None = None
    occurred_at: Utc


class ReferralPublic(BaseModel):
    """A referral as the office sees it."""

    referral_id: str
    request_id: str
    client_reference: str | None = Field(
        default=None, description="the office's reference of the person (in lists)"
    )
    agency_id: str
    agency_name: str
    status: str
    created_at: Utc | None = None
    updated_at: Utc | None = None
    reason: str | None = Field(
        default=None, description="a reason code (free text in referrals from before codes)"
    )
    outcome: Outcome | None = None
    comment: CommentPublic | None = Field(default=None, description="the agency's latest")
    problem: str | None = None
    overdue: str | None = None
    deletion: str | None = None
    legal_deadline_ends_on: date | None = Field(
        default=None, description="the day the request's legal deadline ends, if it is under one"
    )
    forwarded_from: str | None = Field(
        default=None, description="the referral whose agency forwarded the request to this one"
    )
    forwarded_to: str | None = Field(
        default=None, description="the referral this one's agency forwarded the request to"
    )
    trail: list[TrailItem] = Field(default_factory=list)


class PlanPublic(BaseModel):
    """A plan as the office sees it: its referrals and their state together."""

    plan_id: str
    request_id: str
    created_at: Utc
    state: Annotated[str, Field(pattern="^(open|under-way|done)$")] = Field(
        description="open: no agency has taken the person on yet; under-way: one has, others "
        "are open; done: every referral has ended"
    )
    referrals: list[ReferralPublic]


class Suggestion(BaseModel):
    """A directory candidate, and whether this request can be sent to it now: `sendable` is
    the very rule that sending applies, so a sendable suggestion is never refused with 422."""

    need: Need
    candidate: Candidate
    consent_covers: bool = Field(description="the consent names the agency or its kind")
    sendable: bool
    not_sendable: Refusal | None = Field(
        default=None, description="why it cannot be sent (when `sendable` is false)"
    )
    interpreter: Suggestion | None = Field(
        default=None,
        description="in `bridges` only: the interpreting service to send with it (send both)",
    )


class SuggestionsPublic(BaseModel):
    suggestions: list[Suggestion]
    excluded: list[Excluded]
    bridges: list[Suggestion] = Field(
        default_factory=list,
        description="when no suggestion speaks the person's languages: agencies that fit "
        "but for the language, each with an interpreting service (`interpreter`) to send too",
    )
    next_to_try: list[str] = Field(
        default_factory=list,
        description="the agencies to try next, best first: suggested, covered by the consent "
        "and never sent this request (what the office is offered, one action each, when a "
        "legal deadline comes close and no agency has accepted)",
    )


class WithdrawalPublic(BaseModel):
    """A withdrawn consent and what follows from it."""

    consent_id: str
    request_id: str
    withdrawn_at: Utc
    person_data_erased: bool
    referrals: list[ReferralPublic]


class PersonLinkCreate(Strict):
    """The language the person's page opens in (they can switch it there)."""

    language: PersonLanguage = PersonLanguage.DE


class PersonLinkIssued(BaseModel):
    """A new link to the person's page. The token is shown this once: intake keeps only its
    hash. Print it on the receipt (as `/p/<token>` of the web app, and its QR code)."""

    consent_id: str
    language: PersonLanguage
    token: str
    issued_at: Utc


class PersonReferral(BaseModel):
    """A referral as the person's page shows it: who, where it stands, and the deletion."""

    agency_id: str
    agency_name: str
    status: ReferralStatus
    deletion: str | None = None
    updated_at: Utc


class PersonRecipient(BaseModel):
    """Who the consent lets receive what: one agency (by its directory name, if the directory
    knows it) or any agency of a kind."""

    agency_id: str | None = None
    agency_name: str | None = None
    kind: AgencyKind | None = None
    categories: list[DataCategory]


class PersonPage(BaseModel):
    """The person's page: what they agreed to (the consent's terms, with its pseudonym) and
    what happened, but none of the person's data itself; that is in `PersonData`."""

    consent_id: str
    language: PersonLanguage
    terms: ConsentTerms
    withdrawn_at: Utc | None = None
    recipients: list[PersonRecipient]
    referrals: list[PersonReferral]


class PersonData(BaseModel):
    """Everything intake holds about the person for this request (GDPR Art. 15 and 20): the
    request with their data (unless erased), the consent receipt and every referral with its
    trail and the agencies' comments."""

    exported_at: Utc
    language: PersonLanguage = Field(description="the language the office chose for the page")
    request: RequestDetail
    municipality_name: str | None = Field(
        default=None, description="the request's municipality by name, as the directory has it"
    )
    consent: dict[str, Any]
    referrals: list[ReferralPublic]


class ReceiptFact(BaseModel):
    label: str
    value: str


class ReceiptRecipient(BaseModel):
    who: str
    receives: list[str]


class ReceiptPart(BaseModel):
    """The receipt in one language, in words, ready to lay out (no codes in it)."""

    language: PersonLanguage
    right_to_left: bool
    title: str
    draft: str | None = Field(description="that the translation is a draft, if it is")
    facts: list[ReceiptFact]
    recipients_heading: str
    recipients: list[ReceiptRecipient]
    special_categories: str | None = None
    withdrawal: str


class ReceiptDocument(BaseModel):
    """The receipt for the person: their language first, then the binding German."""

    consent_id: str
    parts: list[ReceiptPart]

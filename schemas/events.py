"""Version 1 of every event payload. Change a field only by adding a new version."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from schemas.envelope import Contract, Payload
from schemas.vocabulary import (
    SPECIAL_CATEGORIES,
    AgencyAction,
    AgencyKind,
    ConsentMethod,
    ContactChannel,
    DataCategory,
    DeadlineKind,
    Need,
    Outcome,
    Purpose,
    ReasonCode,
    ReferralStatus,
    ResidenceStatus,
    Urgency,
    WithdrawnBy,
)

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
AgencyId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Ags = Annotated[
    str,
    Field(
        pattern=r"^(0[1-9]|1[0-6])[0-9]{6}$",
        description="Amtlicher Gemeindeschlüssel: 8 digits, the first two a Land (01 to 16)",
    ),
]
Postcode = Annotated[
    str, Field(pattern=r"^(0[1-9]|[1-9][0-9])[0-9]{3}$", description="German postcode (PLZ)")
]
Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}$", description="ISO 639 code")]
COUNTY_KEY = r"^(0[1-9]|1[0-6])[0-9]{3}$"
"""A Kreisschlüssel: the first two digits a Land (01 to 16), three more for the county."""
County = Annotated[
    str,
    Field(
        pattern=COUNTY_KEY,
        description="Kreisschlüssel: the first five digits of a municipality key (AGS)",
    ),
]
TextLanguage = Annotated[
    str,
    Field(
        pattern=r"^[a-z]{2,3}(-x-[a-z]{2,8})?$",
        description="the language a text was read in: an ISO 639 code, or a private-use "
        "variant of one (de-x-ls: Leichte Sprache, easy-read German)",
    ),
]
Reason = Annotated[str, Field(min_length=3, max_length=500)]
"""Free text of version 1 events, kept for the dead-letter and refusal messages only."""
Comment = Annotated[str, Field(min_length=1, max_length=2000)]
"""A free-text comment beside a reason code, as its writer typed it: it never travels or
rests in clear, only inside a SealedNote."""


class Recipient(Contract):
    """One agency, or every agency of one kind, and what it may receive (default: the
    consent's data categories)."""

    agency_id: AgencyId | None = None
    kind: AgencyKind | None = None
    data_categories: tuple[DataCategory, ...] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Recipient:
        if (self.agency_id is None) == (self.kind is None):
            raise ValueError("a recipient names either agency_id or kind, not both or neither")
        return self


class ConsentTerms(Contract):
    """A consent record (after ISO/IEC TS 27560 and the Kantara consent receipt): whose, given
    to which controller, for which purposes, to which recipients, which data, how and when."""

    consent_id: Id
    person_reference: str = Field(min_length=1, max_length=64, description="pseudonymous")
    controller: str = Field(min_length=1, max_length=200)
    recipients: tuple[Recipient, ...] = Field(min_length=1)
    purposes: tuple[Purpose, ...] = Field(min_length=1)
    data_categories: tuple[DataCategory, ...] = Field(min_length=1)
    explicit_special_categories: bool = Field(
        default=False,
        description="GDPR Art. 9(2)(a): the person explicitly consented to sharing health, "
        "ethnic origin or religion; without it those categories never travel",
    )
    method: ConsentMethod
    given_at: AwareDatetime
    expires_at: AwareDatetime | None = None
    text_version: str = Field(min_length=1, max_length=40)
    text_language: TextLanguage
    text_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the exact consent text the person was shown (UTF-8, its "
        "title and paragraphs joined by blank lines), when it was Wegweiser's own text of "
        "that version and language: an office can later prove which words the person read",
    )

    @model_validator(mode="after")
    def _special_needs_explicit(self) -> ConsentTerms:
        require_explicit(self.data_categories, self.recipients, self.explicit_special_categories)
        return self


def require_explicit(
    categories: Iterable[DataCategory], recipients: Iterable[Recipient], explicit: bool
) -> None:
    """Special categories (GDPR Art. 9) may be named only under explicit consent."""
    named = set(categories)
    for recipient in recipients:
        named |= set(recipient.data_categories or ())
    special = sorted(named & SPECIAL_CATEGORIES)
    if special and not explicit:
        raise ValueError(
            f"{', '.join(special)} are special categories (GDPR Art. 9): "
            "set explicit_special_categories only if the person explicitly consented"
        )


Phone = Annotated[
    str, Field(pattern=r"^\+?[0-9][0-9 ()/-]{4,30}$", description="digits, spaces, + ( ) / -")
]
Email = Annotated[str, Field(pattern=r"^[^@\s]{1,64}@[^@\s]{1,253}\.[^@\s]{2,}$", max_length=254)]


class Contact(Contract):
    """How the agency can reach the person (the data category `contact`)."""

    phone: Phone | None = None
    email: Email | None = None
    postal_address: str | None = Field(default=None, min_length=5, max_length=300)
    preferred_channel: ContactChannel | None = None
    reachable: str | None = Field(
        default=None, max_length=200, description="when, e.g. 'weekdays after 3 pm'"
    )
    interpreter_needed: bool = Field(
        default=False, description="contact needs an interpreter (the case's languages)"
    )

    @model_validator(mode="after")
    def _reachable_somehow(self) -> Contact:
        needed = {
            ContactChannel.PHONE: ("phone", self.phone),
            ContactChannel.SMS: ("phone", self.phone),
            ContactChannel.EMAIL: ("email", self.email),
            ContactChannel.POST: ("postal_address", self.postal_address),
        }
        if self.preferred_channel in needed:
            name, value = needed[self.preferred_channel]
            if value is None:
                raise ValueError(f"the preferred channel {self.preferred_channel} needs {name}")
        elif self.preferred_channel is None and not (
            self.phone or self.email or self.postal_address
        ):
            raise ValueError("give a phone number, e-mail or postal address, or a channel")
        return self


class Residence(Contract):
    """The person's residence status (the data category `residence-status`)."""

    status: ResidenceStatus
    legal_basis: str | None = Field(
        default=None,
        max_length=60,
        description="for a residence permit, e.g. '§ 25 Abs. 2 AufenthG'",
    )
    valid_until: date | None = None


Land = Annotated[
    str, Field(pattern=r"^(BB|BE|BW|BY|HB|HE|HH|MV|NI|NW|RP|SH|SL|SN|ST|TH)$", description=(
        "a German Land by its ISO 3166-2 code without the DE- prefix; its public holidays "
        "count for the deadline"
    )),
]  # fmt: skip


class LegalDeadline(Contract):
    """The legal deadline a request is under, counted by services/referral/legal_deadline.py:
    it ends at 24:00 (Europe/Berlin) of `ends_on`. The kind tells the matter (an asylum
    decision, an objection), so it travels only sealed, inside the case."""

    kind: DeadlineKind
    land: Land
    ends_on: date
    delivered_on: date | None = Field(
        default=None, description="the day the decision was delivered, when it was given"
    )


class DeadlineDate(Contract):
    """Only the day a legal deadline ends and the Land whose holidays count: what the referral
    service needs to place an offer's reminders and expiry before it (not the matter)."""

    ends_on: date
    land: Land


class CaseDetails(Contract):
    """The personal part of a referral, as the agency reads it once unsealed.

    Only fields the consent releases are set. It never travels in clear: see SealedCase.
    """

    client_reference: str | None = None
    client_name: str | None = None
    needs: tuple[Need, ...] = ()
    languages: tuple[Language, ...] = ()
    municipality: Ags | None = None
    postcode: Postcode | None = None
    age: int | None = Field(default=None, ge=0, le=130)
    urgency: Urgency = Urgency.ROUTINE
    note: str | None = None
    contact: Contact | None = None
    residence: Residence | None = None
    legal_deadline: LegalDeadline | None = Field(
        default=None, description="released with residence-status: its kind tells the matter"
    )
    released_categories: tuple[DataCategory, ...] = ()


class SealedCase(Contract):
    """CaseDetails signed by the office (JWS, EdDSA) and encrypted to one agency (JWE,
    ECDH-ES on X25519, A256GCM), in JWE compact serialization."""

    jwe: str = Field(min_length=20)
    recipient_kid: AgencyId
    signer_kid: str
    released_categories: tuple[DataCategory, ...]


class SealedNote(Contract):
    """A free-text comment on one referral, encrypted to its one reader (the office for an
    agency's comment, the agency for the office's) and, from the office, signed like
    SealedCase. Inside: {"comment": "...", "referral_id": "..."}; see
    wegweiser/platform/sealing.py."""

    jwe: str = Field(min_length=20, max_length=12_000)
    recipient_kid: str = Field(min_length=1, max_length=64)
    signer_kid: str | None = Field(
        default=None, max_length=64, description="the office's, when the office wrote it"
    )


class RequestRecorded(Payload):
    """The counselling office recorded a request (metadata only: even the needs can reveal
    a special category, so they stay in intake)."""

    event_type = "de.wegweiser.intake.request.recorded.v3"
    request_id: Id
    office_id: Id
    urgency: Urgency
    recorded_at: AwareDatetime
    county: County | None = Field(
        default=None,
        description="the county of the request's municipality, for the monitoring report",
    )
    language: Language | None = Field(
        default=None,
        description="the person's first language (the monitoring report sets the languages "
        "asked for against those the agencies offer); the others stay in intake",
    )


AGE_BANDS = ("0-17", "18-26", "27-44", "45-64", "65+")
"""The age bands the monitoring report counts in (the youth migration service ends at 26)."""


def age_band(age: int | None) -> str | None:
    """The band an age falls in."""
    if age is None:
        return None
    for band, upper in zip(AGE_BANDS, (17, 26, 44, 64, 200), strict=True):
        if age <= upper:
            return band
    return AGE_BANDS[-1]


class ExclusionCount(Contract):
    """How many agencies that offer the need one reason ruled out (the directory's code)."""

    code: str = Field(pattern=r"^[a-z]+(\.[a-z-]+)?$", max_length=60)
    agencies: int = Field(ge=1)


class UnmetNeedRecorded(Payload):
    """One need of a request that no agency took up: none fitted when it was recorded
    (`none-fitting`), or every referral of the request ended without an agency helping
    (`none-took-it`). Metadata for the monitoring report only: the request's pseudonymous
    id, which the report drops, and no personal data."""

    event_type = "de.wegweiser.intake.need.unmet.v1"
    request_id: Id
    office_id: Id
    need: Need
    stage: Literal["none-fitting", "none-took-it"]
    county: County | None = None
    municipality: Ags | None = None
    languages: tuple[Language, ...] = ()
    age_band: Literal["0-17", "18-26", "27-44", "45-64", "65+"] | None = None
    urgency: Urgency
    excluded: tuple[ExclusionCount, ...] = Field(
        default=(), description="why the agencies offering the need there were ruled out"
    )
    recorded_at: AwareDatetime


class ConsentRecorded(Payload):
    """The person's consent was recorded for a request."""

    event_type = "de.wegweiser.intake.consent.recorded.v3"
    request_id: Id
    terms: ConsentTerms


class ConsentWithdrawn(Payload):
    """The person withdrew a consent: no new offers, open referrals cancelled, data deleted."""

    event_type = "de.wegweiser.intake.consent.withdrawn.v2"
    consent_id: Id
    request_id: Id
    office_id: Id
    withdrawn_at: AwareDatetime
    withdrawn_by: WithdrawnBy = Field(
        description="the office, on the person's word, or the person on their own page"
    )


class PersonLinkIssued(Payload):
    """An office issued a new link to the person's own page for a consent (an earlier one
    stopped working): the ombudsperson sees who could act "with the person's own link" since
    when. The token itself never leaves intake."""

    event_type = "de.wegweiser.intake.person-link.issued.v1"
    consent_id: Id
    request_id: Id
    office_id: Id
    issued_at: AwareDatetime


class Forwarding(Contract):
    """The referral a forwarded one continues (FHIR: the new Task is `partOf` it), and the
    forwarding agency's reason: the referral service closes that one as forwarded."""

    referral_id: Id
    agency_id: AgencyId
    reason: ReasonCode
    answer_id: Id = Field(description="the event id of the agency's answer that asked for it")


class ReferralRequested(Payload):
    """The office asks the referral service to offer a request to one agency, or intake does
    for an agency that forwarded its referral (`forwarded_from`)."""

    event_type = "de.wegweiser.intake.referral.requested.v6"
    referral_id: Id
    request_id: Id
    office_id: Id
    agency_id: AgencyId
    agency_kind: AgencyKind
    consent: ConsentTerms
    case: SealedCase
    deadline: DeadlineDate | None = Field(
        default=None,
        description="the request's legal deadline: the offer's clock counts back from it",
    )
    forwarded_from: Forwarding | None = Field(
        default=None, description="the referral this one continues, forwarded by its agency"
    )


class ReferralForwardRefused(Payload):
    """Intake could not forward a referral as its agency asked (the consent does not cover
    the agency, it is unknown or cannot be sealed to): the referral service tells the agency,
    the office sees why in the referral's trail."""

    event_type = "de.wegweiser.intake.referral.forward-refused.v1"
    referral_id: Id
    agency_id: AgencyId
    forward_to: str = Field(min_length=1, max_length=64)
    answer_id: Id = Field(description="the event id of the agency's answer that asked for it")
    code: str = Field(min_length=1, max_length=80)
    message: str = Field(min_length=1, max_length=500)
    refused_at: AwareDatetime


class ReferralCancellationRequested(Payload):
    """The office withdraws a referral it sent, saying why by a code; its comment is sealed
    to the agency."""

    event_type = "de.wegweiser.intake.referral.cancellation-requested.v2"
    referral_id: Id
    office_id: Id
    reason: ReasonCode
    comment: SealedNote | None = None


class AgencyAnswer(Payload):
    """An agency's answer to a referral it received: why, by a code (see REASONS_FOR), what
    came of it on completion, and a comment sealed to the office."""

    event_type = "de.wegweiser.agency.answer.v3"
    referral_id: Id
    agency_id: AgencyId
    action: AgencyAction
    reason: ReasonCode | None = None
    outcome: Outcome | None = None
    comment: SealedNote | None = None
    forward_to: AgencyId | None = Field(
        default=None, description="on 'forward': the agency the referral is to go to"
    )


class AgencyCapacityUpdated(Payload):
    """An agency reports how many referrals it can take now and how long people wait."""

    event_type = "de.wegweiser.agency.capacity-updated.v1"
    agency_id: AgencyId
    capacity: int = Field(ge=0, le=100_000)
    waiting_days: int = Field(ge=0, le=3650)
    reported_at: AwareDatetime


Kid = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{16,64}$")]  # a JWK thumbprint, or a nkey


class PublishedKey(Contract):
    """One public key of an agency, as the directory publishes it (never a private half)."""

    kid: Kid
    use: Literal["enc", "sig", "nats"]
    custody: Literal["agency", "gateway", "county"]
    valid_from: AwareDatetime


class AgencyKeysPublished(Payload):
    """The directory published keys of an agency: on its enrolment, its rotation, or (for the
    keys the county holds) from the key folder. Offices seal to the newest in effect."""

    event_type = "de.wegweiser.directory.agency-keys-published.v1"
    agency_id: AgencyId
    change: Literal["enrolled", "rotated", "on-file"]
    keys: tuple[PublishedKey, ...] = Field(min_length=1, max_length=8)


class AgencyRevoked(Payload):
    """Every key of an agency ended: it has no broker access, nothing is sealed to it."""

    event_type = "de.wegweiser.directory.agency-revoked.v1"
    agency_id: AgencyId
    keys_ended: int = Field(ge=0)
    revoked_at: AwareDatetime


class ReferralChange(Payload):
    """Common fields of every event the referral service emits about one referral."""

    event_type = "de.wegweiser.referral.change.v2"
    referral_id: Id
    request_id: Id
    agency_id: AgencyId
    status: ReferralStatus
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    reason: ReasonCode | None = None
    outcome: Outcome | None = None
    comment: SealedNote | None = Field(
        default=None, description="sealed to the office (an agency's) or the agency (the office's)"
    )


class ReferralOffered(ReferralChange):
    """A referral was offered to an agency; the answer clock runs until `acknowledge_by`."""

    event_type = "de.wegweiser.referral.offered.v3"
    office_id: Id = Field(description="the office that sent it: an agency's comment is for it")
    consent_id: Id
    case: SealedCase
    acknowledge_by: AwareDatetime


class ReferralReceived(ReferralChange):
    """The agency acknowledged receipt."""

    event_type = "de.wegweiser.referral.received.v2"


class ReferralAccepted(ReferralChange):
    """The agency will help."""

    event_type = "de.wegweiser.referral.accepted.v2"


class ReferralRejected(ReferralChange):
    """The agency will not help, with a reason."""

    event_type = "de.wegweiser.referral.rejected.v2"


class ReferralStarted(ReferralChange):
    """The agency is working on it."""

    event_type = "de.wegweiser.referral.started.v2"


class ReferralPutOnHold(ReferralChange):
    """Work paused, with a reason."""

    event_type = "de.wegweiser.referral.put-on-hold.v2"


class ReferralResumed(ReferralChange):
    """Work resumed after a hold."""

    event_type = "de.wegweiser.referral.resumed.v2"


class ReferralCompleted(ReferralChange):
    """The outcome was reached."""

    event_type = "de.wegweiser.referral.completed.v2"


class ReferralFailed(ReferralChange):
    """The agency could not help, with a reason."""

    event_type = "de.wegweiser.referral.failed.v2"


class ReferralCancelled(ReferralChange):
    """The office withdrew the referral, with a reason."""

    event_type = "de.wegweiser.referral.cancelled.v2"


class ReferralForwardRequested(ReferralChange):
    """The agency asked to forward the referral to another agency (its state stays as it is
    until intake has sealed the case afresh to that agency and the new referral is offered)."""

    event_type = "de.wegweiser.referral.forward-requested.v1"
    forward_to: AgencyId


class ReferralForwarded(ReferralChange):
    """The referral closed as forwarded: `forwarded_to` is the new referral, to `forward_to`."""

    event_type = "de.wegweiser.referral.forwarded.v1"
    forward_to: AgencyId
    forwarded_to: Id


class AcknowledgementReminded(ReferralChange):
    """The agency has not acknowledged in time: first reminder."""

    event_type = "de.wegweiser.referral.reminded.v2"


class ReferralEscalated(ReferralChange):
    """Still no acknowledgement: the office is alerted; `urgent` when the referral races a
    legal deadline and only the alert margin is left (the office must find another agency)."""

    event_type = "de.wegweiser.referral.escalated.v3"
    urgent: bool = False


class ReferralExpired(ReferralChange):
    """No acknowledgement before the final deadline: the offer lapsed (status cancelled)."""

    event_type = "de.wegweiser.referral.expired.v2"


class DeletionEvent(Payload):
    """Common fields of the events that track an agency's deletion of a person's data."""

    event_type = "de.wegweiser.referral.deletion.v1"
    referral_id: Id
    request_id: Id
    agency_id: AgencyId
    consent_id: Id
    confirm_by: AwareDatetime
    occurred_at: AwareDatetime


class DeletionRequested(DeletionEvent):
    """The consent was withdrawn: the agency must delete what it received and confirm."""

    event_type = "de.wegweiser.referral.deletion-requested.v1"


class DeletionReminded(DeletionEvent):
    """The agency has not confirmed the deletion in time: reminder."""

    event_type = "de.wegweiser.referral.deletion-reminded.v1"


class DeletionEscalated(DeletionEvent):
    """Still no confirmation after the deadline: the office is alerted."""

    event_type = "de.wegweiser.referral.deletion-escalated.v1"


class DeletionConfirmed(DeletionEvent):
    """The agency confirmed it deleted the person's data."""

    event_type = "de.wegweiser.referral.deletion-confirmed.v1"


class TransitionRefused(Payload):
    """A command on a referral was refused; sent back to whoever sent it."""

    event_type = "de.wegweiser.referral.refused.v1"
    referral_id: Id
    agency_id: AgencyId
    refused_event_id: Id
    sender: str = Field(description="'office' or 'agency:<id>'")
    attempted: str
    current_status: ReferralStatus | None
    code: str
    message: str
    occurred_at: datetime


class DeadLettered(Payload):
    """A service gave up on a message; it is parked here with the reason."""

    event_type = "de.wegweiser.deadletter.v1"
    service: str
    original_subject: str
    original_event_id: str | None
    stream_sequence: int | None
    deliveries: int
    reason: str
    payload: str = Field(description="the original body, UTF-8 with replacement characters")
    occurred_at: AwareDatetime


class AuditHeadSigned(Payload):
    """The audit log signed a tree head: published so that others keep it (the ombudsperson,
    witnesses), and a log rolled back or rewritten later is caught against it."""

    event_type = "de.wegweiser.audit.head-signed.v1"
    log_id: str = Field(pattern=r"^[a-z0-9-]{1,64}$")
    size: int = Field(ge=0)
    root: str = Field(pattern=r"^[0-9a-f]{64}$")
    time: str
    signature: str
    key_fingerprint: str = Field(pattern=r"^sha256:[0-9a-f]{32}$")

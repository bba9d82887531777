"""The event catalogue: every event type, its payload model and the subject it travels on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas import enrolment, events, queries
from schemas.envelope import Envelope, Payload
from schemas.vocabulary import REASON_CODES_VERSION, REASONS_FOR, Outcome, ReasonCode

JSON_SCHEMA_DIR = Path(__file__).parent / "json"
AGENCY_PRODUCER = "agency adapter"
"""The producer of an agency's own events: the agency's software, or the gateway for it."""
EVERY_SERVICE = "every service"
"""The producer of events any service may publish (its dead letters)."""


@dataclass(frozen=True)
class EventSpec:
    """One row of the catalogue."""

    model: type[Payload]
    subject: str
    producer: str
    consumers: str

    @property
    def event_type(self) -> str:
        return self.model.event_type


R = "ww.referral.<agency>"
CATALOGUE: tuple[EventSpec, ...] = (
    EventSpec(events.RequestRecorded, "ww.intake.request.recorded", "intake", "audit"),
    EventSpec(events.UnmetNeedRecorded, "ww.intake.need.unmet", "intake", "audit"),
    EventSpec(events.ConsentRecorded, "ww.intake.consent.recorded", "intake", "audit"),
    EventSpec(events.ConsentWithdrawn, "ww.intake.consent.withdrawn", "intake", "referral, audit"),
    EventSpec(events.PersonLinkIssued, "ww.intake.person-link.issued", "intake", "audit"),
    EventSpec(events.ReferralRequested, "ww.intake.referral.requested", "intake", "referral"),
    EventSpec(
        events.ReferralForwardRefused, "ww.intake.referral.forward-refused", "intake", "referral"
    ),
    EventSpec(
        events.ReferralCancellationRequested,
        "ww.intake.referral.cancellation-requested",
        "intake",
        "referral",
    ),
    EventSpec(events.AgencyAnswer, "ww.answer.<agency>.<action>", "agency adapter", "referral"),
    EventSpec(
        events.AgencyCapacityUpdated, "ww.agency.<agency>.capacity", "agency adapter", "directory"
    ),
    EventSpec(
        events.AgencyKeysPublished, "ww.directory.<agency>.keys-published", "directory", "audit"
    ),
    EventSpec(events.AgencyRevoked, "ww.directory.<agency>.revoked", "directory", "audit"),
    EventSpec(events.ReferralOffered, f"{R}.offered", "referral", "agency, intake"),
    EventSpec(events.ReferralReceived, f"{R}.received", "referral", "intake"),
    EventSpec(events.ReferralAccepted, f"{R}.accepted", "referral", "intake"),
    EventSpec(events.ReferralRejected, f"{R}.rejected", "referral", "intake"),
    EventSpec(events.ReferralStarted, f"{R}.started", "referral", "intake"),
    EventSpec(events.ReferralPutOnHold, f"{R}.put-on-hold", "referral", "intake"),
    EventSpec(events.ReferralResumed, f"{R}.resumed", "referral", "intake"),
    EventSpec(events.ReferralCompleted, f"{R}.completed", "referral", "intake"),
    EventSpec(events.ReferralFailed, f"{R}.failed", "referral", "intake"),
    EventSpec(events.ReferralCancelled, f"{R}.cancelled", "referral", "agency, intake"),
    EventSpec(events.ReferralForwardRequested, f"{R}.forward-requested", "referral", "intake"),
    EventSpec(events.ReferralForwarded, f"{R}.forwarded", "referral", "agency, intake"),
    EventSpec(events.AcknowledgementReminded, f"{R}.reminded", "referral", "agency, intake"),
    EventSpec(events.ReferralEscalated, f"{R}.escalated", "referral", "intake"),
    EventSpec(events.ReferralExpired, f"{R}.expired", "referral", "agency, intake"),
    EventSpec(events.TransitionRefused, f"{R}.refused", "referral", "agency, intake"),
    EventSpec(events.DeletionRequested, f"{R}.deletion-requested", "referral", "agency, intake"),
    EventSpec(events.DeletionReminded, f"{R}.deletion-reminded", "referral", "agency, intake"),
    EventSpec(events.DeletionEscalated, f"{R}.deletion-escalated", "referral", "intake"),
    EventSpec(events.DeletionConfirmed, f"{R}.deletion-confirmed", "referral", "intake"),
    EventSpec(events.DeadLettered, "ww.deadletter.<service>", "every service", "operators"),
    EventSpec(events.AuditHeadSigned, "ww.audit.head-signed", "audit", "ombudsperson, witnesses"),
)

BY_TYPE: dict[str, type[Payload]] = {spec.event_type: spec.model for spec in CATALOGUE}

QUERY_MODELS: tuple[type[BaseModel], ...] = (
    queries.ResolveAgencies,
    queries.Suggestions,
    queries.LookupAgency,
    queries.AgencyLookup,
    queries.QueryFailed,
    queries.AskVerdict,
    queries.Verdict,
)


def subject_suffix(model: type[Payload]) -> str:
    """The last subject token of a referral event, e.g. `accepted`."""
    return model.event_type.split(".")[-2]


# What a partner handles besides events: the case once unsealed, and its enrolment's bodies.
PARTNER_MODELS: tuple[type[BaseModel], ...] = (
    events.CaseDetails,
    enrolment.EnrolmentRequest,
    enrolment.KeyRotation,
)


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema of every enveloped event and every query model."""
    out: dict[str, dict[str, Any]] = {}
    for spec in CATALOGUE:
        schema = Envelope[spec.model].model_json_schema()  # type: ignore[name-defined]
        schema["title"] = spec.event_type
        schema["$id"] = f"https://wegweiser.example/schemas/{spec.event_type}.json"
        out[f"{spec.event_type}.json"] = schema
    for model in QUERY_MODELS:
        out[f"de.wegweiser.query.{model.__name__}.json"] = model.model_json_schema()
    for model in PARTNER_MODELS:
        out[f"de.wegweiser.partner.{model.__name__}.json"] = model.model_json_schema()
    out[f"de.wegweiser.vocabulary.reasons.v{REASON_CODES_VERSION}.json"] = reasons_document()
    return out


def reasons_document() -> dict[str, Any]:
    """The closed vocabulary of reasons and outcomes, for partners: which code fits which
    action (what the referral service refuses otherwise), as a JSON Schema per action."""
    return {
        "$id": f"https://wegweiser.example/schemas/vocabulary/reasons.v{REASON_CODES_VERSION}",
        "title": f"Wegweiser reason codes, version {REASON_CODES_VERSION}",
        "description": (ReasonCode.__doc__ or "").strip(),
        "version": REASON_CODES_VERSION,
        "outcomes": [o.value for o in Outcome],
        "$defs": {
            action: {"enum": sorted(code.value for code in codes)}
            for action, codes in sorted(REASONS_FOR.items())
        },
    }

"""A simulated referral network's events, made with the real event models, and the truth they
were made from: what the monitoring report must count (its tests) and what it is timed on
(`bench/report.py`). Each referral's fate is drawn first; its events follow from it."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from schemas import subjects
from schemas.catalogue import subject_suffix
from schemas.envelope import Payload, new_event
from schemas.events import (
    AcknowledgementReminded,
    ConsentRecorded,
    ConsentTerms,
    ConsentWithdrawn,
    DeletionConfirmed,
    DeletionRequested,
    ReferralAccepted,
    ReferralChange,
    ReferralCompleted,
    ReferralEscalated,
    ReferralExpired,
    ReferralFailed,
    ReferralOffered,
    ReferralReceived,
    ReferralRejected,
    ReferralRequested,
    RequestRecorded,
    SealedCase,
    UnmetNeedRecorded,
    age_band,
)
from schemas.vocabulary import (
    REASONS_FOR,
    AgencyKind,
    ConsentMethod,
    DataCategory,
    Need,
    Outcome,
    Purpose,
    ReasonCode,
    ReferralStatus,
    Urgency,
    WithdrawnBy,
)
from services.audit.metadata import metadata

KINDS = (AgencyKind.MIGRATION_COUNSELLING, AgencyKind.LEGAL_AID, AgencyKind.LANGUAGE_SCHOOL)
COUNTIES = ("13076", "09780")
FATES = ("open", "taken-on", "completed", "declined", "failed", "expired")


@dataclass
class Truth:
    """What was simulated, counted independently of the report."""

    referrals: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    unmet: list[dict[str, Any]] = field(default_factory=list)
    withdrawals: list[dict[str, Any]] = field(default_factory=list)
    deletions: list[dict[str, Any]] = field(default_factory=list)


def simulate(
    referrals: int, start: datetime, days: int, seed: int = 1, agencies: int = 6
) -> tuple[list[tuple[str, dict[str, Any]]], Truth]:
    """(subject, event JSON) in time order, and the truth."""
    rng = random.Random(seed)
    events: list[tuple[datetime, str, Payload]] = []
    truth = Truth()
    for n in range(referrals):
        _one(
            rng, n, start + timedelta(seconds=rng.uniform(0, days * 86400)), agencies, events, truth
        )
    events.sort(key=lambda e: e[0])
    return [(subject, _json(payload, at)) for at, subject, payload in events], truth


def entries(events: list[tuple[str, dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    """What the audit log keeps of each event (its metadata allow-list), in order."""
    for sequence, (subject, event) in enumerate(events, start=1):
        yield {"index": sequence, **metadata(event, subject, sequence)}


def _json(payload: Payload, at: datetime) -> dict[str, Any]:
    subject = str(getattr(payload, "referral_id", None) or getattr(payload, "request_id", "x"))
    return dict(
        json.loads(
            new_event(payload, source="/wegweiser/sim", subject=subject, now=at).model_dump_json()
        )
    )


def _one(
    rng: random.Random,
    n: int,
    offered: datetime,
    agencies: int,
    events: list[tuple[datetime, str, Payload]],
    truth: Truth,
) -> None:
    request_id, consent_id, rid = (
        f"{p}-{uuid.UUID(int=rng.getrandbits(128))}" for p in ("req", "con", "ref")
    )
    county = rng.choice(COUNTIES)
    kind = rng.choice(KINDS)
    agency = f"agency-{rng.randrange(agencies)}"
    office = "office-1"
    recorded = offered - timedelta(minutes=10)
    first_language = rng.choice(["ar", "fa", "uk", "ti", "ru"])
    truth.requests.append({"language": first_language, "county": county, "at": recorded})
    events.append(
        (
            recorded,
            subjects.REQUEST_RECORDED,
            RequestRecorded(
                request_id=request_id,
                office_id=office,
                urgency=Urgency.ROUTINE,
                recorded_at=recorded,
                county=county,
                language=first_language,
            ),
        )
    )
    terms = ConsentTerms(
        consent_id=consent_id,
        person_reference=f"p{n}",
        controller="Landkreis",
        recipients=({"kind": kind},),
        purposes=(Purpose.REFERRAL,),
        data_categories=(DataCategory.NEEDS,),
        method=ConsentMethod.SIGNED_FORM,
        given_at=recorded,
        text_version="1",
        text_language="de",
    )
    events.append(
        (recorded, subjects.CONSENT_RECORDED, ConsentRecorded(request_id=request_id, terms=terms))
    )
    sealed = SealedCase(
        jwe="x" * 40,
        recipient_kid=agency,
        signer_kid=office,
        released_categories=(DataCategory.NEEDS,),
    )
    events.append(
        (
            offered,
            subjects.REFERRAL_REQUESTED,
            ReferralRequested(
                referral_id=rid,
                request_id=request_id,
                office_id=office,
                agency_id=agency,
                agency_kind=kind,
                consent=terms,
                case=sealed,
            ),
        )
    )
    fate = rng.choice(FATES)
    version = 1
    fields = {"referral_id": rid, "request_id": request_id, "agency_id": agency}

    def change(
        model: type[ReferralChange], at: datetime, status: ReferralStatus, **said: Any
    ) -> None:
        nonlocal version
        payload = model(**fields, status=status, version=version, occurred_at=at, **said)
        events.append((at, subjects.referral_event(agency, subject_suffix(model)), payload))
        version += 1

    change(
        ReferralOffered,
        offered,
        ReferralStatus.REQUESTED,
        office_id=office,
        consent_id=consent_id,
        case=sealed,
        acknowledge_by=offered + timedelta(days=3),
    )
    row: dict[str, Any] = {
        "kind": kind.value,
        "agency": agency,
        "county": county,
        "offered": offered,
        "fate": fate,
        "ack_hours": None,
        "accept_hours": None,
        "reason": None,
        "reminded": False,
        "escalated": False,
    }
    at = offered
    if fate == "expired" or rng.random() < 0.2:
        at += timedelta(days=3)
        change(AcknowledgementReminded, at, ReferralStatus.REQUESTED)
        row["reminded"] = True
        if fate == "expired" or rng.random() < 0.5:
            at += timedelta(days=4)
            change(ReferralEscalated, at, ReferralStatus.REQUESTED)
            row["escalated"] = True
    if fate == "expired":
        change(
            ReferralExpired,
            at + timedelta(days=7),
            ReferralStatus.CANCELLED,
            reason=ReasonCode.NOT_ACKNOWLEDGED,
        )
    elif fate != "open" or rng.random() < 0.5:
        at += timedelta(hours=rng.uniform(1, 60))
        if fate == "declined":
            reason = rng.choice(sorted(REASONS_FOR["reject"]))
            change(ReferralRejected, at, ReferralStatus.REJECTED, reason=reason)
            row["reason"], row["ack_hours"] = reason.value, (at - offered).total_seconds() / 3600
        else:
            change(ReferralReceived, at, ReferralStatus.RECEIVED)
            row["ack_hours"] = (at - offered).total_seconds() / 3600
            if fate in ("taken-on", "completed", "failed"):
                at += timedelta(hours=rng.uniform(1, 48))
                change(ReferralAccepted, at, ReferralStatus.ACCEPTED)
                row["accept_hours"] = (at - offered).total_seconds() / 3600
            if fate == "completed":
                change(
                    ReferralCompleted,
                    at + timedelta(days=5),
                    ReferralStatus.COMPLETED,
                    outcome=Outcome.PROVIDED,
                )
            elif fate == "failed":
                reason = rng.choice(sorted(REASONS_FOR["fail"]))
                change(ReferralFailed, at + timedelta(days=2), ReferralStatus.FAILED, reason=reason)
                row["reason"] = reason.value
    truth.referrals.append(row)
    if rng.random() < 0.15:
        need = rng.choice([Need.LEGAL_AID_ASYLUM, Need.PSYCHOSOCIAL, Need.LANGUAGE_COURSE])
        languages = (rng.choice(["ar", "fa", "uk", "ti"]), "de")
        municipality = county + f"{rng.randrange(100, 104):03d}"
        events.append(
            (
                recorded,
                subjects.NEED_UNMET,
                UnmetNeedRecorded(
                    request_id=request_id,
                    office_id=office,
                    need=need,
                    stage="none-fitting",
                    county=county,
                    municipality=municipality,
                    languages=languages,
                    age_band=age_band(rng.randrange(16, 70)),
                    urgency=Urgency.ROUTINE,
                    excluded=(),
                    recorded_at=recorded,
                ),
            )
        )
        truth.unmet.append(
            {
                "need": need.value,
                "county": county,
                "municipality": municipality,
                "language": languages[0],
                "at": recorded,
            }
        )
    if rng.random() < 0.05:
        withdrawn = offered + timedelta(days=rng.uniform(1, 5))
        by = rng.choice(list(WithdrawnBy))
        events.append(
            (
                withdrawn,
                subjects.CONSENT_WITHDRAWN,
                ConsentWithdrawn(
                    consent_id=consent_id,
                    request_id=request_id,
                    office_id=office,
                    withdrawn_at=withdrawn,
                    withdrawn_by=by,
                ),
            )
        )
        truth.withdrawals.append({"by": by.value, "county": county, "at": withdrawn})
        deletion = {
            "referral_id": rid,
            "request_id": request_id,
            "agency_id": agency,
            "consent_id": consent_id,
            "confirm_by": withdrawn + timedelta(days=14),
        }
        events.append(
            (
                withdrawn,
                subjects.referral_event(agency, "deletion-requested"),
                DeletionRequested(**deletion, occurred_at=withdrawn),
            )
        )
        confirmed = withdrawn + timedelta(hours=rng.uniform(1, 200)) if rng.random() < 0.7 else None
        if confirmed is not None:
            events.append(
                (
                    confirmed,
                    subjects.referral_event(agency, "deletion-confirmed"),
                    DeletionConfirmed(**deletion, occurred_at=confirmed),
                )
            )
        truth.deletions.append({"county": county, "at": withdrawn, "confirmed": confirmed})

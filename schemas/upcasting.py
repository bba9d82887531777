"""Older versions of events, read as the current ones: the stream keeps events for a year and
partners upgrade on their own schedule, so a reader meets every version still in use.

An upcaster turns the JSON of one version into the next, before validation against the
current model; `read` applies them in turn. Add one whenever an event gets a new version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from schemas.envelope import Envelope, Payload
from schemas.vocabulary import AgencyAction, Outcome, ReasonCode, WithdrawnBy

P = TypeVar("P", bound=Payload)
Json = dict[str, Any]


def code_for(text: str | None, *, kind: str | None = None) -> str | None:
    """The reason code for a version 1 free-text reason. The text itself is dropped: it was
    typed by a person, may hold personal data and cannot be sealed after the fact (the version
    1 event in the stream still holds it). What the referral service wrote itself maps to its
    code; a text that is a code stays that code; everything else becomes `other`."""
    if text is None:
        return None
    if kind == "expired" or text.startswith("not acknowledged within"):
        return ReasonCode.NOT_ACKNOWLEDGED.value
    if text == "consent withdrawn":
        return ReasonCode.CONSENT_WITHDRAWN.value
    return text if text in {code.value for code in ReasonCode} else ReasonCode.OTHER.value


def _answer_v1(data: Json) -> Json:
    """Version 1 answers carried free text; a completion had no outcome (it was provided)."""
    data = {**data, "reason": code_for(data.get("reason"))}
    if data.get("action") == AgencyAction.COMPLETE.value:
        data["outcome"] = Outcome.PROVIDED.value
        data["reason"] = None
    return data


def _cancellation_v1(data: Json) -> Json:
    return {**data, "reason": code_for(data.get("reason")) or ReasonCode.OTHER.value}


def _change(kind: str) -> Callable[[Json], Json]:
    """A referral service event of the version before reason codes."""

    def upcast(data: Json) -> Json:
        data = {**data, "reason": code_for(data.get("reason"), kind=kind)}
        if kind == "completed":
            data["outcome"], data["reason"] = Outcome.PROVIDED.value, None
        return data

    return upcast


def _offered_v2(data: Json) -> Json:
    """Version 2 offers named their office only as the sealed case's signer (the same id)."""
    case = data.get("case")
    office = case.get("signer_kid") if isinstance(case, dict) else None
    return {**_change("offered")(data), "office_id": office}


CHANGE_KINDS = (
    "received",
    "accepted",
    "rejected",
    "started",
    "put-on-hold",
    "resumed",
    "completed",
    "failed",
    "cancelled",
    "reminded",
    "escalated",
    "expired",
)

UPCASTERS: dict[str, tuple[str, Callable[[Json], Json]]] = {
    "de.wegweiser.agency.answer.v1": ("de.wegweiser.agency.answer.v2", _answer_v1),
    # before a request named its county (unknown: None)
    "de.wegweiser.intake.request.recorded.v2": ("de.wegweiser.intake.request.recorded.v3", dict),
    # before escalations said whether they were the urgent alert before a legal deadline
    "de.wegweiser.referral.escalated.v2": ("de.wegweiser.referral.escalated.v3", dict),
    # before an agency could forward (nothing to forward to)
    "de.wegweiser.agency.answer.v2": ("de.wegweiser.agency.answer.v3", dict),
    "de.wegweiser.intake.referral.cancellation-requested.v1": (
        "de.wegweiser.intake.referral.cancellation-requested.v2",
        _cancellation_v1,
    ),
    "de.wegweiser.referral.offered.v2": ("de.wegweiser.referral.offered.v3", _offered_v2),
    # before the consent terms had their text's fingerprint (it stays unknown: None)
    "de.wegweiser.intake.consent.recorded.v2": ("de.wegweiser.intake.consent.recorded.v3", dict),
    # before a person could withdraw on their own page: every withdrawal was the office's
    "de.wegweiser.intake.consent.withdrawn.v1": (
        "de.wegweiser.intake.consent.withdrawn.v2",
        lambda data: {**data, "withdrawn_by": WithdrawnBy.OFFICE.value},
    ),
    "de.wegweiser.intake.referral.requested.v3": (
        "de.wegweiser.intake.referral.requested.v4",
        dict,
    ),
    # before a request could be under a legal deadline (none: the ordinary clock)
    "de.wegweiser.intake.referral.requested.v4": (
        "de.wegweiser.intake.referral.requested.v5",
        dict,
    ),
    # before agencies forwarded: every request came from an office
    "de.wegweiser.intake.referral.requested.v5": (
        "de.wegweiser.intake.referral.requested.v6",
        dict,
    ),
    **{
        f"de.wegweiser.referral.{kind}.v1": (f"de.wegweiser.referral.{kind}.v2", _change(kind))
        for kind in CHANGE_KINDS
    },
}
"""Old event type -> (the next version's type, how its data becomes that version's)."""


def upcast(event: Json) -> Json:
    """An event's JSON as the newest version of its type (unchanged if it is the newest)."""
    while isinstance(event.get("type"), str) and event["type"] in UPCASTERS:
        newer, step = UPCASTERS[event["type"]]
        data = event.get("data")
        event = {**event, "type": newer, "data": step(data) if isinstance(data, dict) else data}
    return event


def read(body: bytes | str, contract: type[P]) -> Envelope[P]:
    """Decode and validate an event as `contract`, upcasting an older version of it first;
    ValueError (a pydantic ValidationError for a bad shape) if it is neither."""
    try:
        decoded = json.loads(body)
    except ValueError:  # not JSON: pydantic says so, in the shape every caller handles
        return Envelope[contract].model_validate_json(body)  # type: ignore[valid-type]
    if isinstance(decoded, dict):
        decoded = upcast(decoded)
    return Envelope[contract].model_validate(decoded)  # type: ignore[valid-type]

"""What the portal shows an e-mail agency of its case: the case the office sealed to it and the
office's comment, opened with the key the gateway holds for the agency (custody `gateway`),
and what the agency answers, checked before its comment is sealed to the office."""

from __future__ import annotations

from dataclasses import dataclass

from jwcrypto import jwk

from schemas.events import CaseDetails, SealedNote
from services.gateway.store import CaseRow
from wegweiser.platform import sealing
from wegweiser.platform.sealing import SealError


@dataclass(frozen=True, slots=True)
class CaseView:
    """The portal page of one referral, as the agency may see it."""

    referral_id: str
    agency_name: str
    state: str
    csrf: str
    case: CaseDetails | None = None
    office_comment: str | None = None
    error: str | None = None
    """Why the case does not open (no key, a seal that does not verify)."""


@dataclass(frozen=True, slots=True)
class PortalForm:
    """An answer as the portal's form sends it: every field as typed, none checked yet."""

    csrf: str
    action: str
    reason: str | None = None
    outcome: str | None = None
    comment: str | None = None
    forward_to: str | None = None


def opened_case(
    case: CaseRow | None, key: jwk.JWK | None, signers: dict[str, jwk.JWK]
) -> tuple[CaseDetails | None, str | None]:
    """The case details, or why they do not open (None, None: there is no case to show)."""
    if case is None or case.sealed_case is None:
        return None, None
    if key is None:
        return None, "the gateway holds no key for this agency"
    try:
        payload = sealing.unseal(case.sealed_case, key=key, kid=case.agency_id, signers=signers)
    except SealError as exc:
        return None, f"{exc.code}: {exc}"
    return CaseDetails.model_validate(payload), None


def office_comment(
    case: CaseRow | None, key: jwk.JWK | None, signers: dict[str, jwk.JWK]
) -> str | None:
    """The office's comment for this agency (on a cancellation), opened for the portal page;
    one that does not open says why."""
    if case is None or case.office_note is None or key is None:
        return None
    note = SealedNote.model_validate_json(case.office_note)
    try:
        return sealing.open_comment(
            note, case.referral_id, key=key, kid=case.agency_id, signers=signers
        )
    except SealError as exc:
        return f"({exc.code})"

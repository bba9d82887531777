"""The office a call acts for, and the rule that an office sees and changes only its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from jwcrypto import jwk

from services.intake.vault import Vault


@dataclass(frozen=True)
class Office:
    """One counselling office served by this intake: who it is (the controller the person's
    consent names), the vault of its people's data, the key it signs every case with and the
    key agencies seal their comments to."""

    office_id: str
    vault: Vault
    signer: jwk.JWK
    sealing: jwk.JWK
    controller: str = "Wegweiser counselling office"


class NotFound(Exception):
    """No such request, consent or referral (for this office)."""


class Forbidden(Exception):
    """The request, consent or referral exists but belongs to another office."""


class Conflict(Exception):
    """The command contradicts the referral's known state."""


class Owned(Protocol):
    office_id: str


OwnedRow = TypeVar("OwnedRow", bound=Owned)


def owned(row: OwnedRow | None, office_id: str, what: str) -> OwnedRow:
    """`row` if it exists and is this office's; NotFound or Forbidden otherwise."""
    if row is None:
        raise NotFound(f"no {what}")
    if row.office_id != office_id:
        raise Forbidden(f"{what} belongs to another office")
    return row

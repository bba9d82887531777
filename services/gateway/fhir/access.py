"""Who may use a FHIR agency's endpoint: the bearer of the access token the county issued it
(`wegweiser agency credentials`). The gateway keeps only each token's SHA-256, one file per
agency, readable by its owner alone; a token is compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from schemas import subjects
from wegweiser.platform.files import write_private

PREFIX = "wwfhir_"


@dataclass(frozen=True)
class TokenFolder:
    """Each FHIR agency's access-token digest under `keys_dir/fhir`."""

    folder: Path

    @classmethod
    def under(cls, keys_dir: Path) -> TokenFolder:
        return cls(keys_dir / "fhir")

    def path(self, agency_id: str) -> Path:
        return self.folder / f"{subjects.token(agency_id)}.sha256"

    def has(self, agency_id: str) -> bool:
        return self.path(agency_id).exists()

    def issue(self, agency_id: str) -> str:
        """A new token for the agency, replacing any it had (that one stops working)."""
        token = PREFIX + secrets.token_urlsafe(32)
        write_private(self.path(agency_id), _digest(token) + "\n")
        return token

    def admits(self, agency_id: str, token: str) -> bool:
        """Whether `token` is the agency's current token."""
        path = self.path(agency_id)
        if not path.exists():
            return False
        return hmac.compare_digest(path.read_text().strip(), _digest(token))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

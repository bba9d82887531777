"""Webhook signing secrets: one file per agency, readable by its owner alone from the first byte.

The county issues an agency's secret (`wegweiser agency credentials`, or the directory on
approving an enrolment); the gateway signs with it. The secrets follow the Standard Webhooks
format (standardwebhooks.com): `whsec_` and the base64 of 24 random bytes.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from schemas import subjects
from wegweiser.platform.files import write_private

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks format (`whsec_` + base64 of 24 bytes)."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(24)).decode()


@dataclass(frozen=True)
class SecretFolder:
    """Each webhook agency's signing secret, one file under `keys_dir/webhooks`, readable by
    its owner alone from the first byte (never written, then restricted)."""

    folder: Path

    def path(self, agency_id: str) -> Path:
        return self.folder / f"{subjects.token(agency_id)}.secret"

    def get(self, agency_id: str) -> str | None:
        """The agency's secret, None if none was issued."""
        path = self.path(agency_id)
        return path.read_text().strip() if path.exists() else None

    def ensure(self, agency_id: str) -> str:
        """The agency's secret; a new one if none was issued yet."""
        return self.get(agency_id) or self.issue(agency_id)

    def issue(self, agency_id: str) -> str:
        """A new secret for the agency, replacing any it had."""
        secret = new_secret()
        write_private(self.path(agency_id), secret + "\n")
        return secret

"""The enrolment contract between an agency's machine and the directory (HTTP, JSON).

Both proofs of possession sign the same `statement`: the invitation code (by its SHA-256,
so the proof does not carry the code twice) bound to the thumbprints of the sealing and
signing keys and to the broker user's public nkey.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def statement(code: str, sealing_kid: str, signing_kid: str, nats_user: str) -> bytes:
    """What both proofs sign, as canonical JSON (sorted keys, no spaces)."""
    fields = {
        "enrolment_code_sha256": digest(code),
        "sealing_kid": sealing_kid,
        "signing_kid": signing_kid,
        "nats_user": nats_user,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


class EnrolmentRequest(BaseModel):
    """What an agency sends to enrol: the code, its public keys, and proofs of possession."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=8, max_length=100)
    sealing_key: dict[str, Any] = Field(description="public X25519 JWK for sealed cases")
    signing_key: dict[str, Any] = Field(description="public Ed25519 JWK")
    nats_user: str = Field(pattern=r"^U[A-Z2-7]{55}$", description="public nkey of its user")
    proof: str = Field(max_length=4000, description="compact JWS of `statement` (EdDSA)")
    nats_proof: str = Field(max_length=200, description="base64url nkey signature of it")

"""The enrolment contract between an agency's machine and the directory (HTTP, JSON).

Both proofs of possession sign the same `statement`: the invitation code (by its SHA-256,
so the proof does not carry the code twice) bound to the thumbprints of the sealing and
signing keys and to the broker user's public nkey.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


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


def rotation_statement(
    agency_id: str, sealing_kid: str, signing_kid: str, valid_from: str
) -> bytes:
    """What a key rotation signs (by the current signing key and by the new one)."""
    fields = {
        "agency_id": agency_id,
        "sealing_kid": sealing_kid,
        "signing_kid": signing_kid,
        "valid_from": valid_from,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


class KeyRotation(BaseModel):
    """An enrolled agency's new keys, valid from a time; its current keys retire an overlap
    later. Signed by its current signing key (it is the agency) and by the new one (it holds
    it)."""

    model_config = ConfigDict(extra="forbid")

    sealing_key: dict[str, Any]
    signing_key: dict[str, Any]
    valid_from: AwareDatetime
    proof: str = Field(max_length=4000, description="JWS of the statement by the current key")
    new_proof: str = Field(max_length=4000, description="JWS of the statement by the new key")

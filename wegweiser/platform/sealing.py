"""Sealing personal data for one recipient: signed by the sender (JWS, EdDSA), then
encrypted to the recipient's X25519 key (JWE, ECDH-ES + A256GCM), with jwcrypto.

Only the holder of the recipient's private key can read a sealed payload, and it can tell
who sealed it; the broker, the referral service and any log see ciphertext.
"""

from __future__ import annotations

import json
from typing import Any

from jwcrypto import jwe, jwk, jws
from jwcrypto.common import JWException

ENC = {"alg": "ECDH-ES", "enc": "A256GCM"}


class SealError(Exception):
    """A sealed payload that cannot be trusted or read; `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def seal(
    payload: dict[str, Any],
    *,
    recipient: jwk.JWK,
    recipient_kid: str,
    signer: jwk.JWK,
    signer_kid: str,
) -> str:
    """Sign `payload` as `signer_kid`, then encrypt it to `recipient_kid`'s public key."""
    signed = jws.JWS(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode())
    signed.add_signature(
        signer, alg="EdDSA", protected=json.dumps({"alg": "EdDSA", "kid": signer_kid})
    )
    token = jwe.JWE(
        signed.serialize(compact=True).encode(),
        protected=json.dumps({**ENC, "kid": recipient_kid, "cty": "JWS"}),
    )
    token.add_recipient(recipient)
    return str(token.serialize(compact=True))


def unseal(token: str, *, key: jwk.JWK, kid: str, signers: dict[str, jwk.JWK]) -> dict[str, Any]:
    """Decrypt with our private key and verify the signature; SealError says what is wrong."""
    encrypted = jwe.JWE()
    try:
        encrypted.deserialize(token)
    except (JWException, ValueError) as exc:
        raise SealError("seal.malformed", f"not a JWE compact token: {exc}") from None
    header = encrypted.jose_header
    if header.get("kid") != kid:
        raise SealError(
            "seal.wrong-recipient", f"sealed for {header.get('kid')!r}, not for {kid!r}"
        )
    if header.get("alg") != ENC["alg"] or header.get("enc") != ENC["enc"]:
        raise SealError(
            "seal.algorithm", f"unexpected algorithms {header.get('alg')}/{header.get('enc')}"
        )
    try:
        encrypted.decrypt(key)
    except JWException:
        raise SealError(
            "seal.undecryptable",
            "decryption failed: the ciphertext was altered or not made for this key",
        ) from None
    signed = jws.JWS()
    try:
        signed.deserialize(encrypted.payload.decode())
    except (JWException, ValueError) as exc:
        raise SealError("seal.malformed", f"no signed payload inside: {exc}") from None
    signer_kid = signed.jose_header.get("kid")
    signer = signers.get(str(signer_kid))
    if signer is None:
        raise SealError("seal.unknown-signer", f"signed by unknown key {signer_kid!r}")
    try:
        signed.verify(signer, alg="EdDSA")
    except JWException:
        raise SealError(
            "seal.bad-signature", f"signature by {signer_kid!r} does not verify"
        ) from None
    return dict(json.loads(signed.payload))

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

from schemas.events import SealedNote

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
    inner = _decrypt(token, key, kid)
    signed = jws.JWS()
    try:
        signed.deserialize(inner.decode())
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


def _decrypt(token: str, key: jwk.JWK, kid: str) -> bytes:
    """The plaintext of a JWE made for `kid` with our algorithms; SealError otherwise."""
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
    return bytes(encrypted.payload)


def encrypt(payload: dict[str, Any], *, recipient: jwk.JWK, recipient_kid: str) -> str:
    """Encrypt `payload` to `recipient_kid`'s public key, unsigned: for a writer without a
    signing key the reader knows (an agency's comment to the office), whose authenticity
    comes from the channel it travels on. Read with `decrypt`."""
    token = jwe.JWE(
        json.dumps(payload, ensure_ascii=False, sort_keys=True).encode(),
        protected=json.dumps({**ENC, "kid": recipient_kid, "cty": "json"}),
    )
    token.add_recipient(recipient)
    return str(token.serialize(compact=True))


def decrypt(token: str, *, key: jwk.JWK, kid: str) -> dict[str, Any]:
    """Decrypt what `encrypt` made for us; SealError says what is wrong."""
    try:
        decoded = json.loads(_decrypt(token, key, kid))
    except ValueError:
        decoded = None
    if not isinstance(decoded, dict):
        raise SealError("seal.malformed", "the sealed payload is not a JSON object")
    return decoded


def seal_comment(
    text: str,
    referral_id: str,
    *,
    recipient: jwk.JWK,
    recipient_kid: str,
    signer: jwk.JWK | None = None,
    signer_kid: str | None = None,
) -> SealedNote:
    """A free-text comment on one referral for its one reader: signed when the writer has a
    key the reader trusts (the office, whose key every agency has), else only encrypted (an
    agency's comment to the office: the broker lets only that agency answer on its subject)."""
    payload = {"comment": text, "referral_id": referral_id}
    if signer is not None and signer_kid is not None:
        token = seal(
            payload,
            recipient=recipient,
            recipient_kid=recipient_kid,
            signer=signer,
            signer_kid=signer_kid,
        )
    else:
        token = encrypt(payload, recipient=recipient, recipient_kid=recipient_kid)
    return SealedNote(jwe=token, recipient_kid=recipient_kid, signer_kid=signer_kid)


def open_comment(
    note: SealedNote,
    referral_id: str,
    *,
    key: jwk.JWK,
    kid: str,
    signers: dict[str, jwk.JWK] | None = None,
) -> str:
    """The text of a comment on `referral_id` sealed to us; with `signers`, it must be signed
    by one of them. SealError if it cannot be read, or was made for another referral."""
    if signers is not None:
        payload = unseal(note.jwe, key=key, kid=kid, signers=signers)
    else:
        payload = decrypt(note.jwe, key=key, kid=kid)
    if payload.get("referral_id") != referral_id:
        raise SealError("seal.wrong-referral", "the comment was written about another referral")
    text = payload.get("comment")
    if not isinstance(text, str):
        raise SealError("seal.malformed", "the sealed payload holds no comment")
    return text


class NoOfficeKey(ValueError):
    """A comment for an office whose sealing key is not on file (or for no office named,
    when several are)."""


def comment_to_office(
    text: str, referral_id: str, office_keys: dict[str, jwk.JWK], office: str | None = None
) -> SealedNote:
    """An agency's comment sealed to the office that sent the referral (`office`; may be left
    out when only one office's key is on file)."""
    if office is None and len(office_keys) == 1:
        office = next(iter(office_keys))
    key = office_keys.get(office or "")
    if key is None or office is None:
        known = ", ".join(sorted(office_keys)) or "none on file"
        raise NoOfficeKey(f"no sealing key of office {office!r} for the comment: {known}")
    return seal_comment(text, referral_id, recipient=key, recipient_kid=office)

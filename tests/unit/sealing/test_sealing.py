"""Sealed data opens only for its recipient, only if unaltered, only from a known signer."""

from __future__ import annotations

import base64

import pytest

from wegweiser.platform import keys
from wegweiser.platform.sealing import SealError, seal, unseal

AGENCY, OTHER = keys.generate_encryption_key(), keys.generate_encryption_key()
OFFICE, FORGER = keys.generate_signing_key(), keys.generate_signing_key()
PAYLOAD = {"client_name": "Amira K.", "note": "Frist am 3. Dezember", "needs": ["legal-aid"]}


def sealed(**kw) -> str:
    args = {
        "recipient": keys.from_dict(keys.public_dict(AGENCY)),
        "recipient_kid": "agency-a",
        "signer": OFFICE,
        "signer_kid": "office-1",
    }
    args.update(kw)
    return seal(PAYLOAD, **args)


def test_the_recipient_opens_what_the_office_sealed():
    token = sealed()
    assert "Amira" not in token and "Frist" not in token
    assert unseal(token, key=AGENCY, kid="agency-a", signers={"office-1": OFFICE}) == PAYLOAD


def test_a_token_sealed_for_another_agency_is_refused_as_wrongly_addressed():
    with pytest.raises(SealError, match="sealed for 'agency-a', not for 'agency-b'") as err:
        unseal(sealed(), key=OTHER, kid="agency-b", signers={"office-1": OFFICE})
    assert err.value.code == "seal.wrong-recipient"


def test_a_token_readdressed_to_another_key_does_not_decrypt():
    token = sealed(recipient=keys.from_dict(keys.public_dict(OTHER)), recipient_kid="agency-a")
    with pytest.raises(SealError) as err:
        unseal(token, key=AGENCY, kid="agency-a", signers={"office-1": OFFICE})
    assert err.value.code == "seal.undecryptable"


@pytest.mark.parametrize("part", [2, 3, 4], ids=["iv", "ciphertext", "tag"])
def test_changing_any_part_of_the_token_is_detected(part):
    pieces = sealed().split(".")
    raw = bytearray(base64.urlsafe_b64decode(pieces[part] + "=" * (-len(pieces[part]) % 4)))
    raw[len(raw) // 2] ^= 0x01
    pieces[part] = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(SealError) as err:
        unseal(".".join(pieces), key=AGENCY, kid="agency-a", signers={"office-1": OFFICE})
    assert err.value.code in {"seal.undecryptable", "seal.malformed"}


def test_a_changed_protected_header_is_detected():
    pieces = sealed().split(".")
    header = base64.urlsafe_b64decode(pieces[0] + "=" * (-len(pieces[0]) % 4))
    pieces[0] = (
        base64.urlsafe_b64encode(header.replace(b"A256GCM", b"A128GCM")).decode().rstrip("=")
    )
    with pytest.raises(SealError):
        unseal(".".join(pieces), key=AGENCY, kid="agency-a", signers={"office-1": OFFICE})


def test_a_signature_by_an_unknown_or_impersonating_key_is_refused():
    with pytest.raises(SealError, match="signed by unknown key 'office-9'"):
        unseal(
            sealed(signer_kid="office-9"), key=AGENCY, kid="agency-a", signers={"office-1": OFFICE}
        )
    forged = sealed(signer=FORGER)  # claims to be office-1
    with pytest.raises(SealError) as err:
        unseal(forged, key=AGENCY, kid="agency-a", signers={"office-1": OFFICE})
    assert err.value.code == "seal.bad-signature"


def test_garbage_is_refused_as_malformed():
    with pytest.raises(SealError) as err:
        unseal("not-a-token", key=AGENCY, kid="agency-a", signers={})
    assert err.value.code == "seal.malformed"

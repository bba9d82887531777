"""Sealed data opens only for its recipient, only if unaltered, only from a known signer."""

from __future__ import annotations

import base64

import pytest

from wegweiser.platform import keys
from wegweiser.platform.sealing import (
    NoOfficeKey,
    SealError,
    comment_to_office,
    open_comment,
    seal,
    seal_comment,
    unseal,
)

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


# --- comments: free text on one referral, for its one reader --------------------------------

OFFICE_KEY = keys.generate_encryption_key()


def public(key):
    return keys.from_dict(keys.public_dict(key))


def test_an_agencys_comment_opens_for_the_office_it_names_and_that_referral_only():
    note = comment_to_office("Bring the diploma", "ref-1", {"office-1": public(OFFICE_KEY)})
    assert note.recipient_kid == "office-1" and note.signer_kid is None
    assert "diploma" not in note.jwe
    assert open_comment(note, "ref-1", key=OFFICE_KEY, kid="office-1") == "Bring the diploma"
    with pytest.raises(SealError, match="another referral") as err:
        open_comment(note, "ref-2", key=OFFICE_KEY, kid="office-1")
    assert err.value.code == "seal.wrong-referral"
    with pytest.raises(SealError) as err:
        open_comment(note, "ref-1", key=OTHER, kid="office-1")
    assert err.value.code == "seal.undecryptable"


def test_with_several_offices_a_comment_names_its_office():
    offices = {"office-1": public(OFFICE_KEY), "office-2": public(OTHER)}
    with pytest.raises(NoOfficeKey, match="office-1, office-2"):
        comment_to_office("hello", "ref-1", offices)
    with pytest.raises(NoOfficeKey, match="'office-9'"):
        comment_to_office("hello", "ref-1", offices, "office-9")
    note = comment_to_office("hello", "ref-1", offices, "office-2")
    assert open_comment(note, "ref-1", key=OTHER, kid="office-2") == "hello"


def test_the_offices_comment_must_carry_a_trusted_signature_where_one_is_required():
    signed = seal_comment(
        "call first",
        "ref-1",
        recipient=public(AGENCY),
        recipient_kid="agency-a",
        signer=OFFICE,
        signer_kid="office-1",
    )
    signers = {"office-1": OFFICE}
    assert open_comment(signed, "ref-1", key=AGENCY, kid="agency-a", signers=signers) == (
        "call first"
    )
    unsigned = seal_comment(
        "call first", "ref-1", recipient=public(AGENCY), recipient_kid="agency-a"
    )
    with pytest.raises(SealError) as err:  # a signature stripped off is not accepted
        open_comment(unsigned, "ref-1", key=AGENCY, kid="agency-a", signers=signers)
    assert err.value.code == "seal.malformed"
    forged = seal_comment(
        "call first",
        "ref-1",
        recipient=public(AGENCY),
        recipient_kid="agency-a",
        signer=FORGER,
        signer_kid="office-1",
    )
    with pytest.raises(SealError) as err:
        open_comment(forged, "ref-1", key=AGENCY, kid="agency-a", signers=signers)
    assert err.value.code == "seal.bad-signature"

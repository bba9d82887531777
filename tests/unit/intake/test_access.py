"""Intake's API clients and tokens: who gets a token for which office, and which tokens hold."""

from __future__ import annotations

import base64
import json

import pytest
from jwcrypto import jwt

from services.intake import access
from services.intake.access import ApiClient, Refused, Tokens
from wegweiser.platform import keys
from wegweiser.platform.db import Database

OFFICES = {"office-a", "office-b"}


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'intake.db'}", [ApiClient])
    database.migrate()
    yield database
    database.dispose()


def add(db, *offices: str):
    return db.run_sync(lambda s: access.add_client(s, "office software", list(offices), OFFICES))


def test_only_the_digest_of_a_secret_is_stored_and_the_secret_authenticates(db, tmp_path):
    credential = add(db, "office-a")
    row = db.run_sync(
        lambda s: access.authenticate(s, credential.client_id, credential.client_secret)
    )
    assert row.offices == ["office-a"]
    assert credential.client_secret not in (tmp_path / "intake.db").read_bytes().decode("latin-1")
    assert row.secret_sha256 != credential.client_secret


@pytest.mark.parametrize("who", ["wrong secret", "unknown client", "revoked"])
def test_a_wrong_secret_an_unknown_client_and_a_revoked_one_are_refused(db, who):
    credential = add(db, "office-a")
    client_id, secret = credential.client_id, credential.client_secret
    if who == "wrong secret":
        secret += "x"
    elif who == "unknown client":
        client_id = "client-0000000000000000"
    else:
        db.run_sync(lambda s: access.revoke(s, client_id))
    with pytest.raises(Refused) as refused:
        db.run_sync(lambda s: access.authenticate(s, client_id, secret))
    assert refused.value.code == "invalid_client"


def test_a_client_gets_tokens_only_for_its_own_offices(db):
    one_id, both_id = add(db, "office-a").client_id, add(db, "office-a", "office-b").client_id
    one = db.read_sync(lambda s: s.get(ApiClient, one_id))
    both = db.read_sync(lambda s: s.get(ApiClient, both_id))
    assert access.office_for(one, None) == "office-a"
    assert access.office_for(both, "office:office-b") == "office-b"
    for client, scope in [
        (one, "office:office-b"),  # another office
        (both, None),  # which one?
        (both, "office:office-a office:office-b"),  # two at once
        (one, "office-a"),  # not a scope
    ]:
        with pytest.raises(Refused) as refused:
            access.office_for(client, scope)
        assert refused.value.code == "invalid_scope"


def test_a_client_for_an_office_intake_does_not_serve_is_not_created(db):
    with pytest.raises(Refused, match="unknown office office-z"):
        add(db, "office-a", "office-z")
    with pytest.raises(Refused, match="at least one office"):
        add(db)
    assert db.run_sync(access.clients) == []


def test_a_token_says_whose_it_is_and_for_which_office():
    tokens = Tokens(keys.generate_signing_key())
    issued, lifetime = tokens.issue("client-1", "office-a")
    claims = tokens.check(issued)
    assert (claims.client_id, claims.office, lifetime) == ("client-1", "office-a", 600)


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["office"] = "office-b"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _unsigned(token: str) -> str:
    _header, payload, _signature = token.split(".")
    none = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    return f"{none}.{payload}."


def _other_key(_token: str) -> str:
    return Tokens(keys.generate_signing_key()).issue("client-1", "office-a")[0]


def _expired(_token: str) -> str:
    return ISSUER_KEY_TOKENS_EXPIRED


ISSUER_KEY = keys.generate_signing_key()
ISSUER_KEY_TOKENS_EXPIRED = Tokens(ISSUER_KEY, lifetime=-120).issue("client-1", "office-a")[0]


@pytest.mark.parametrize(
    "forge", [_tampered, _unsigned, _other_key, _expired, lambda _t: "not a token"]
)
def test_a_tampered_unsigned_foreign_or_expired_token_is_refused(forge):
    tokens = Tokens(ISSUER_KEY)
    good, _ = tokens.issue("client-1", "office-a")
    assert tokens.check(good).office == "office-a"
    with pytest.raises(Refused) as refused:
        tokens.check(forge(good))
    assert refused.value.code == "invalid_token"


def test_a_token_of_another_issuer_with_our_key_is_refused():
    """Same key, but not a token we issued for intake (another audience)."""
    token = jwt.JWT(
        header={"alg": "EdDSA"},
        claims={
            "iss": "someone",
            "aud": "elsewhere",
            "sub": "c",
            "office": "office-a",
            "exp": 4_000_000_000,
        },
    )
    token.make_signed_token(ISSUER_KEY)
    with pytest.raises(Refused):
        Tokens(ISSUER_KEY).check(token.serialize())


async def test_a_revocation_is_seen_within_the_refresh_interval(db):
    credential = add(db, "office-a")
    revocations = access.Revocations(lambda: _async(db.read_sync(access.revoked_ids)), every=0)
    assert not await revocations.is_revoked(credential.client_id)
    db.run_sync(lambda s: access.revoke(s, credential.client_id))
    assert await revocations.is_revoked(credential.client_id)


async def _async(value):
    return value


def test_a_development_credential_is_made_once_and_kept_private(tmp_path):
    path = tmp_path / "web" / "intake-client.json"
    first = access.development_credential(path, ["office-a"])
    again = access.development_credential(path, ["office-b"])
    assert first == again and path.stat().st_mode & 0o077 == 0

"""Who may call intake's API: registered API clients, and the short-lived tokens they get.

OAuth 2.0 client credentials (RFC 6749 §4.4): a client (the web app, an office's own software)
authenticates at `POST /token` with its id and secret and receives a bearer token for one
office, an EdDSA-signed JWT valid for minutes. Every other route but `/health` (and the API's
documentation) requires such a token; the office a call acts for is the token's, never a
header the caller sets. Secrets are 256-bit random, so a SHA-256 of each is all that is kept
(a slow password hash would add nothing but a way to burn the server's CPU).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from jwcrypto import jwk, jws, jwt
from sqlalchemy import JSON, Column, DateTime
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from services.intake.credential import Credential
from wegweiser.platform.keys import write_once
from wegweiser.settings import Settings

Run = Callable[[Callable[[Session], Any]], Awaitable[Any]]

ISSUER = "wegweiser-intake"
TOKEN_LIFETIME = 600  # seconds: short, so that a revoked client's tokens die soon anyway
SCOPE_PREFIX = "office:"


def _now() -> datetime:
    return datetime.now(UTC)


class ApiClient(SQLModel, table=True):
    """A registered caller of intake's API and the offices it may act for."""

    __tablename__ = "api_clients"
    client_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    offices: list[str] = Field(sa_column=Column(JSON, nullable=False))
    secret_sha256: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Refused(Exception):
    """A token request or a token that is refused; `code` is the OAuth 2.0 error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def add_client(
    session: Session, name: str, offices: list[str], known_offices: set[str]
) -> Credential:
    """Register a client for `offices`; its credential, whose secret is never stored."""
    unknown = sorted(set(offices) - known_offices)
    if not offices or unknown:
        raise Refused(
            "invalid_request",
            f"unknown office {', '.join(unknown)}" if unknown else "name at least one office",
        )
    credential = new_credential(offices)
    register(session, name, credential)
    return credential


def new_credential(offices: list[str]) -> Credential:
    return Credential(f"client-{uuid.uuid4().hex[:16]}", secrets.token_urlsafe(32), tuple(offices))


def development_credential(path: Path, offices: list[str]) -> Credential:
    """The credential in `path`, made (owner-only, first writer wins) if there is none."""
    return Credential.from_json(
        write_once(path, new_credential(offices).to_json().encode()).decode()
    )


def register(session: Session, name: str, credential: Credential) -> None:
    """Record `credential`'s client (its secret's digest), unless it is already recorded."""
    if session.get(ApiClient, credential.client_id) is None:
        session.add(
            ApiClient(
                client_id=credential.client_id,
                name=name,
                offices=list(credential.offices),
                secret_sha256=_digest(credential.client_secret),
            )
        )


def revoke(session: Session, client_id: str) -> ApiClient:
    """Revoke a client: no new tokens, and its tokens are refused from now on."""
    row = session.get(ApiClient, client_id)
    if row is None:
        raise Refused("invalid_client", f"no API client {client_id}")
    if row.revoked_at is None:
        row.revoked_at = _now()
        session.add(row)
    return row


def clients(session: Session) -> list[ApiClient]:
    return list(session.exec(select(ApiClient).order_by(col(ApiClient.created_at))))


def authenticate(session: Session, client_id: str, secret: str) -> ApiClient:
    """The client whose id and secret these are, if it is not revoked."""
    row = session.get(ApiClient, client_id)
    expected = row.secret_sha256 if row else _digest(secrets.token_urlsafe(32))
    if not hmac.compare_digest(expected, _digest(secret)) or row is None:
        raise Refused("invalid_client", "unknown client or wrong secret")
    if row.revoked_at is not None:
        raise Refused("invalid_client", f"client {client_id} is revoked")
    return row


def office_for(client: ApiClient, scope: str | None) -> str:
    """The office a token is asked for (`scope` is `office:<id>`; optional when the client
    has only one)."""
    if not scope:
        if len(client.offices) == 1:
            return client.offices[0]
        raise Refused("invalid_scope", "name the office: scope=office:<id>")
    office = scope.removeprefix(SCOPE_PREFIX)
    if not scope.startswith(SCOPE_PREFIX) or " " in office:
        raise Refused("invalid_scope", "the scope is one office: office:<id>")
    if office not in client.offices:
        raise Refused("invalid_scope", f"client {client.client_id} may not act for {office}")
    return office


@dataclass(frozen=True, slots=True)
class Claims:
    client_id: str
    office: str
    expires_at: int


class Tokens:
    """Issues and checks the bearer tokens, EdDSA-signed by intake's own key."""

    def __init__(self, key: jwk.JWK, lifetime: int = TOKEN_LIFETIME) -> None:
        self.key = key
        self.lifetime = lifetime

    def issue(self, client_id: str, office: str) -> tuple[str, int]:
        """A token for `client_id` acting for `office`, and its lifetime in seconds."""
        now = int(time.time())
        token = jwt.JWT(
            header={"alg": "EdDSA", "typ": "at+jwt", "kid": self.key.thumbprint()},
            claims={
                "iss": ISSUER,
                "aud": ISSUER,
                "sub": client_id,
                "office": office,
                "iat": now,
                "exp": now + self.lifetime,
                "jti": uuid.uuid4().hex,
            },
        )
        token.make_signed_token(self.key)
        return token.serialize(), self.lifetime

    def check(self, token: str) -> Claims:
        """The claims of a valid, unexpired token of ours; else Refused."""
        try:
            parsed = jwt.JWT(
                jwt=token,
                key=self.key,
                algs=["EdDSA"],
                check_claims={"iss": ISSUER, "aud": ISSUER, "exp": None},
                expected_type="JWS",
            )
            claims: dict[str, Any] = json.loads(parsed.claims)
            return Claims(str(claims["sub"]), str(claims["office"]), int(claims["exp"]))
        except (
            jwt.JWException,
            jws.InvalidJWSSignature,
            jws.InvalidJWSObject,
            ValueError,
            KeyError,
            TypeError,
        ) as exc:
            raise Refused("invalid_token", f"the bearer token is not valid: {exc}") from None


class Revocations:
    """Which clients are revoked, read from the store at most once every `every` seconds, so
    that a revoked client's tokens stop working within seconds without a read per call."""

    def __init__(self, read_revoked: Any, every: float = 2.0) -> None:
        self.read_revoked = read_revoked
        self.every = every
        self.revoked: set[str] = set()
        self.read_at = float("-inf")

    async def is_revoked(self, client_id: str) -> bool:
        if time.monotonic() - self.read_at >= self.every:
            self.revoked = await self.read_revoked()
            self.read_at = time.monotonic()
        return client_id in self.revoked


def revoked_ids(session: Session) -> set[str]:
    stmt = select(ApiClient.client_id).where(col(ApiClient.revoked_at).is_not(None))
    return set(session.exec(stmt))


async def register_development_clients(run: Run, settings: Settings) -> None:
    """In development, the web app's and `wegweiser demo`'s credentials: made on first start
    in their own key folders, registered here (production: `wegweiser api-client add`)."""
    made = [
        ("web app", settings.web_intake_credential_path, list(settings.all_offices)),
        ("wegweiser demo", settings.demo_intake_credential_path, [settings.office_id]),
    ]
    for name, path, offices in made:
        credential = development_credential(path, offices)
        with contextlib.suppress(IntegrityError):  # another instance registered it first
            await run(partial(register, name=name, credential=credential))

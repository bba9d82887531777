"""The broker's accounts and users, rendered from the grants (see `grants`).

NATS accounts are the tenant boundary: a subject in one account is a different subject from
the same name in another, and nothing crosses unless one account exports it and the other
imports it. Permissions within one account cannot stop reply-subject reflection (a pull's
408 status or a PubAck sent by the server to whatever reply the client named, see
shared NATS-NOTES), accounts can: the stream's account has no user but the administrator,
and every service and agency is an account of its own that imports only its grant.

Every user is an nkey (Ed25519): the server holds public keys only. Seeds live in
`<keys_dir>/nats/`: `admin.nk`, `<service>.nk`, `agency-<id>.nk`.
"""

from __future__ import annotations

import base64
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from infra import jetstream_settings
from schemas import subjects
from wegweiser.platform.grants import ADMIN, STREAM_ACCOUNT, Grant, local_name


class Seeds:
    """The nkey seed files of one installation (`<keys_dir>/nats/`), created on demand."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, principal: str) -> Path:
        return self.folder / f"{subjects.token(principal)}.nk"

    def agency_path(self, agency_id: str) -> Path:
        return self.path(f"agency-{subjects.token(agency_id)}")

    def ensure(self, path: Path) -> Path:
        """The seed file at `path`, made now (readable by its owner only) when missing."""
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it a moment ago
                return path
            with os.fdopen(descriptor, "wb") as out:
                out.write(seed)
        return path

    def agencies(self) -> list[str]:
        """The agencies that have broker credentials here."""
        return sorted(p.stem.removeprefix("agency-") for p in self.folder.glob("agency-*.nk"))


class BadUserSignature(Exception):
    """Not a user nkey, or not its signature."""


def verify_user_signature(user: str, data: bytes, signature: bytes) -> None:
    """Check that the holder of user nkey `user` (public, "U…") signed `data` (nkeys for
    Python verifies only with a seed at hand; a public nkey is base32 of a prefix byte, the
    Ed25519 key and a CRC-16)."""
    try:
        raw = base64.b32decode(user + "=" * (-len(user) % 8))
    except ValueError as exc:
        raise BadUserSignature(f"{user!r} is not an nkey: {exc}") from None
    body, crc = raw[:-2], raw[-2:]
    if len(raw) != 35 or body[0] != nkeys.PREFIX_BYTE_USER or nkeys.crc16_checksum(body) != crc:
        raise BadUserSignature(f"{user!r} is not a user nkey")
    try:
        Ed25519PublicKey.from_public_bytes(bytes(body[1:])).verify(signature, data)
    except InvalidSignature:
        raise BadUserSignature(f"not a signature of {user}") from None


def public_key(seed_file: Path) -> str:
    keypair = nkeys.from_seed(bytearray(seed_file.read_bytes().strip()))
    return bytes(keypair.public_key).decode()


@dataclass(frozen=True, slots=True)
class Principal:
    """A grant and the public nkey of the user that holds it."""

    grant: Grant
    nkey: str


def permissions(grant: Grant) -> dict[str, Any]:
    """The user's own permissions inside its account: exactly what it imports, its inboxes,
    and the queries it answers (with replies to them)."""
    inboxes = ["_INBOX.>"]
    if grant.agency:
        inboxes.append(f"_INBOX_{grant.principal.removeprefix('agency-')}.>")
    rights: dict[str, Any] = {
        "publish": {
            "allow": [*grant.publishes, *map(local_name, grant.jetstream_api()), *grant.asks]
        },
        "subscribe": {"allow": [*inboxes, *grant.answers]},
    }
    if grant.answers:
        rights["allow_responses"] = True
    return rights


def render(admin_nkey: str, principals: list[Principal]) -> str:
    """The `accounts` block of a nats-server configuration (the same on every node)."""
    exports: dict[tuple[str, str], set[str]] = defaultdict(set)  # (account, subject) -> to
    for p in principals:
        for subject in (*p.grant.publishes, *p.grant.jetstream_api()):
            exports[(STREAM_ACCOUNT, subject)].add(p.grant.account)
    answerers = {q: p.grant.account for p in principals for q in p.grant.answers}

    def answering(query: str) -> str | None:
        """The account that answers a query subject (its pattern may cover many)."""
        return next((a for p, a in answerers.items() if subjects.matches(p, query)), None)

    for p in principals:
        for query in p.grant.asks:
            if (owner := answering(query)) is not None:
                exports[(owner, query)].add(p.grant.account)  # the one subject, to the one asker
    admin_asks = [
        (q.subject, owner)
        for q in subjects.QUERIES
        if ADMIN in q.asked_by and (owner := answering(q.subject)) is not None
    ]
    for query, owner in admin_asks:
        exports[(owner, query)].add(STREAM_ACCOUNT)

    def exports_of(account: str) -> list[str]:
        lines = []
        for (owner, subject), to in sorted(exports.items()):
            if owner != account:
                continue
            stream = ", response_type: stream" if ".MSG.NEXT." in subject else ""
            lines.append(
                f"      {{service: {_q(subject)}, accounts: [{', '.join(sorted(to))}]{stream}}}"
            )
        return lines

    limits = jetstream_settings()["agency_account"]
    out = [
        "accounts {",
        f"  {STREAM_ACCOUNT} {{",
        "    jetstream: enabled",
        f"    users: [{{nkey: {_q(admin_nkey)}}}]  # {ADMIN}: provisioning and the admin CLI",
        "    exports: [",
        *exports_of(STREAM_ACCOUNT),
        "    ]",
        "    imports: [",
        *(f"      {{service: {{account: {owner}, subject: {_q(q)}}}}}" for q, owner in admin_asks),
        "    ]",
        "  }",
    ]
    for p in principals:
        account = p.grant.account
        imports = [
            f"      {{service: {{account: {STREAM_ACCOUNT}, subject: {_q(s)}}}"
            + (f", to: {_q(local_name(s))}}}" if local_name(s) != s else "}")
            for s in (*p.grant.publishes, *p.grant.jetstream_api())
        ] + [
            f"      {{service: {{account: {owner}, subject: {_q(q)}}}}}"
            for q in p.grant.asks
            if (owner := answering(q)) is not None
        ]
        out += [
            f"  {account} {{  # {p.grant.principal}",
            f"    users: [{{nkey: {_q(p.nkey)}, permissions: {json.dumps(permissions(p.grant))}}}]",
        ]
        if p.grant.agency:
            out.append(
                "    limits: {"
                f"max_connections: {limits['max_connections']}, "
                f"max_subscriptions: {limits['max_subscriptions']}, "
                f"max_payload: {limits['max_payload_bytes']}, max_leafnodes: 0}}"
            )
        out += ["    imports: [", *imports, "    ]"]
        if own := exports_of(account):
            out += ["    exports: [", *own, "    ]"]
        out.append("  }")
    out += ["}", ""]
    return "\n".join(out)


def _q(value: str) -> str:
    """A quoted string for the server's configuration format (`$` is literal inside)."""
    return json.dumps(value)

"""Who may do what on the broker: nkey users, and each agency sealed off from every other.

The services authenticate as one `system` user with full rights. Each agency that reads its
referrals over NATS authenticates with its own nkey (Ed25519: the server holds only public
keys) and may only

* fetch from and ack on its own durable consumer, which the network creates for it with a
  filter on its own referral subjects (it may not create, list or inspect consumers, read the
  stream's info or messages, or use direct get: subscribe permissions alone do not stop
  JetStream reads, so everything under `$JS.API` not listed here is denied);
* publish its own answers (`ww.answer.<agency>.>`) and capacity (`ww.agency.<agency>.>`);
* receive replies on its own inbox prefix `_INBOX_<agency>` (never the shared `_INBOX.>`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys

from schemas import subjects
from wegweiser.platform import topology

SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class User:
    """One nkey user: a name for people, its public nkey, and its rights (None: all)."""

    name: str
    nkey: str
    permissions: dict[str, Any] | None


def inbox_prefix(agency_id: str) -> str:
    return f"_INBOX_{subjects.token(agency_id)}"


def agency_permissions(agency_id: str) -> dict[str, Any]:
    agency = subjects.token(agency_id)
    durable = topology.agency_consumer(agency).durable
    stream = subjects.STREAM
    return {
        "publish": {
            "allow": [
                f"ww.answer.{agency}.>",
                f"ww.agency.{agency}.>",
                f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
                f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
                f"$JS.ACK.{stream}.{durable}.>",
            ]
        },
        "subscribe": {"allow": [f"{inbox_prefix(agency)}.>"]},
    }


class Seeds:
    """The nkey seed files of one installation (`<keys_dir>/nats/`), created on demand."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.nk"

    def agency_path(self, agency_id: str) -> Path:
        return self.path(f"agency-{subjects.token(agency_id)}")

    def ensure(self, path: Path) -> Path:
        """The seed file at `path`, made now (readable by its owner only) when missing."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(seed)
        return path

    def users(self) -> list[User]:
        """The system user and every agency with a seed here."""
        found = [User(SYSTEM, public_key(self.ensure(self.path(SYSTEM))), None)]
        for path in sorted(self.folder.glob("agency-*.nk")):
            agency = path.stem.removeprefix("agency-")
            found.append(User(agency, public_key(path), agency_permissions(agency)))
        return found


def public_key(seed_file: Path) -> str:
    keypair = nkeys.from_seed(bytearray(seed_file.read_bytes().strip()))
    return bytes(keypair.public_key).decode()


def render(users: list[User]) -> str:
    """The `authorization` block of a nats-server configuration."""
    lines = ["authorization {", "  users = ["]
    for user in users:
        lines.append(f"    # {user.name}")
        if user.permissions is None:
            lines.append(f'    {{nkey: "{user.nkey}"}}')
            continue
        lines.append(f'    {{nkey: "{user.nkey}", permissions: {{')
        for direction in ("publish", "subscribe"):
            allowed = ", ".join(f'"{s}"' for s in user.permissions[direction]["allow"])
            lines.append(f"      {direction}: {{allow: [{allowed}]}}")
        lines.append("    }}")
    lines += ["  ]", "}", ""]
    return "\n".join(lines)

"""A secured broker as `wegweiser up` builds it, for the isolation and attack tests: who is on
it, the seed messages, connections as each principal, and the administrator's view of the
stream account (`Network.snapshot()` and `Network.assert_intact()`) that says afterwards whether
anything happened to the stream or a consumer that an attacker's grant does not allow.

The broker knows the administrator, every service on the broker, two agencies reading over
NATS (A and B) and a webhook agency (W, served by the gateway). The fixtures that start it,
provision it and publish one seed message on every stream subject family are in
tests/integration/conftest.py; test_broker_isolation.py and test_broker_attacks.py use them.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from schemas import subjects
from schemas.subjects import matches
from tests.support.consumers import fetch
from wegweiser import provisioning, registry
from wegweiser.platform import grants, nats_auth, topology
from wegweiser.platform.grants import JS_API_PREFIX, Agency, Grant
from wegweiser.platform.nats_server import EmbeddedNats, servers
from wegweiser.registry import ON_THE_BROKER
from wegweiser.settings import Settings

A, B, W = "agency-a", "agency-b", "agency-w"
AGENCIES = [Agency(A, "nats"), Agency(B, "nats"), Agency(W, "webhook")]
STREAM = subjects.STREAM

DENIED = (nats.errors.Error, asyncio.TimeoutError, TimeoutError)
"""What a refused request looks like at the call site: a permission violation is reported to
the error callback only, the request itself times out (or finds no responders)."""

SEEDED: tuple[str, ...] = (
    *(subjects.referral_event(a.id, "offered") for a in AGENCIES),
    *(subjects.answer(a.id, "accept") for a in AGENCIES),
    *(subjects.agency_capacity(a.id) for a in AGENCIES),
    subjects.REQUEST_RECORDED,
    subjects.CONSENT_RECORDED,
    subjects.CONSENT_WITHDRAWN,
    subjects.REFERRAL_REQUESTED,
    subjects.CANCELLATION_REQUESTED,
    *(subjects.dead_letter(s) for s in ON_THE_BROKER),
)
"""One message on every stream subject family, published by the administrator."""


def seed_body(subject: str) -> bytes:
    """The seed message on `subject`: recognisable wherever it turns up."""
    return f"seed:{subject}".encode()


def leaked_subjects(data: bytes, readable: tuple[str, ...]) -> list[str]:
    """The seed messages quoted in `data` that come from subjects outside `readable`."""
    found = []
    for part in data.split(b"seed:")[1:]:
        subject = part.split(b'"')[0].split(b" ")[0].decode(errors="replace")
        if not any(matches(pattern, subject) for pattern in readable):
            found.append(subject)
    return found


def agency_principal(agency_id: str) -> str:
    return f"agency-{agency_id}"


def principal_grant(principal: str) -> Grant:
    """The grant of a service (`referral`) or of a NATS agency (`agency-agency-a`)."""
    if principal in ON_THE_BROKER:
        return grants.service_grant(registry.service(principal), AGENCIES)
    return grants.agency_grant(principal.removeprefix("agency-"))


def readable_by(grant: Grant) -> tuple[str, ...]:
    """The subjects whose messages the grant may read: its durables' filters."""
    specs = {s.durable: s for s in provisioning.declared_consumers(AGENCIES)}
    return tuple(f for durable in grant.consumes for f in specs[durable].filter_subjects)


class Violations:
    """The errors the server reports to one connection (permission violations among them)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def record(self, exc: Exception) -> None:
        self.seen.append(str(exc))

    def denied(self) -> set[str]:
        return {
            v.lower().removeprefix("nats: permissions violation for ")
            for v in self.seen
            if "permissions violation" in v.lower()
        }


@dataclass(frozen=True)
class ConsumerState:
    config: str
    num_pending: int
    ack_floor: int
    delivered: int
    num_ack_pending: int
    paused: bool
    leader: str | None
    filters: tuple[str, ...]

    @classmethod
    def of(cls, info: Any) -> ConsumerState:
        config = info.config
        filters = tuple(config.filter_subjects or [config.filter_subject or ">"])
        return cls(
            config=json.dumps(config.as_dict(), sort_keys=True, default=str),
            num_pending=info.num_pending or 0,
            ack_floor=info.ack_floor.stream_seq if info.ack_floor else 0,
            delivered=info.delivered.stream_seq if info.delivered else 0,
            num_ack_pending=info.num_ack_pending or 0,
            paused=bool(info.paused),
            leader=info.cluster.leader if info.cluster else None,
            filters=filters,
        )


@dataclass(frozen=True)
class Snapshot:
    """What the administrator sees of the stream account."""

    streams: tuple[str, ...]
    config: str
    messages: int
    first_seq: int
    last_seq: int
    deleted: int
    per_subject: dict[str, int]
    leader: str | None
    peers: tuple[str, ...]
    meta_leader: str | None
    consumers: dict[str, ConsumerState]

    def added(self, later: Snapshot) -> dict[str, int]:
        """Subject -> messages added on it between this snapshot and `later`."""
        return {
            s: n - self.per_subject.get(s, 0)
            for s, n in later.per_subject.items()
            if n != self.per_subject.get(s, 0)
        }


@dataclass
class Broker:
    """The running servers of one installation, with its settings and seeds."""

    settings: Settings
    nodes: list[EmbeddedNats]
    url: str
    cluster: bool

    @property
    def seeds(self) -> nats_auth.Seeds:
        return provisioning.seeds(self.settings)

    def seed(self, principal: str) -> Path:
        return self.seeds.path(principal)

    def meta_leader(self) -> str | None:
        if not self.cluster:
            return None
        for node in self.nodes:
            try:
                with urllib.request.urlopen(f"{node.monitor_url}/jsz", timeout=2) as response:
                    leader = json.load(response).get("meta_cluster", {}).get("leader")
            except OSError:
                continue
            if leader:
                return str(leader)
        return None


@dataclass
class Network:
    """The broker, provisioned and seeded, with an administrator's connection."""

    broker: Broker
    admin: Client
    opened: list[Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.broker.url

    @property
    def first_url(self) -> str:
        return self.broker.nodes[0].url

    @property
    def cluster(self) -> bool:
        return self.broker.cluster

    @property
    def admin_js(self) -> JetStreamContext:
        return self.admin.jetstream(timeout=5)

    async def connect(
        self,
        principal: str,
        *,
        seed: Path | None = None,
        url: str | None = None,
        inbox_prefix: str | None = None,
        **options: Any,
    ) -> tuple[Client, Violations]:
        """A connection as `principal` (a service, or `agency-<id>` for an agency)."""
        violations = Violations()
        if inbox_prefix is None and principal.startswith("agency-"):
            inbox_prefix = grants.inbox_prefix(principal.removeprefix("agency-"))
        nc = await nats.connect(
            servers(url or self.url),
            nkeys_seed=str(seed or self.broker.seed(principal)),
            error_cb=violations.record,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=3,
            name=f"test-{principal}",
            **({"inbox_prefix": inbox_prefix} if inbox_prefix else {}),
            **options,
        )
        self.opened.append(nc)
        return nc, violations

    def server_log(self) -> str:
        """What every node has logged so far."""
        return "\n".join(
            (n.store_dir / "nats-server.log").read_text(errors="replace") for n in self.broker.nodes
        )

    @staticmethod
    def jetstream(nc: Client, timeout: float = 2.0) -> JetStreamContext:
        """JetStream as services and agencies reach it: through their account's imports."""
        return nc.jetstream(prefix=JS_API_PREFIX, timeout=timeout)

    async def snapshot(self) -> Snapshot:
        js = self.admin_js
        streams = tuple(sorted(s.config.name or "" for s in await js.streams_info()))
        info = await js.stream_info(STREAM, subjects_filter=">")
        consumers = {c.name: ConsumerState.of(c) for c in await js.consumers_info(STREAM)}
        state = info.state
        return Snapshot(
            streams=streams,
            config=json.dumps(info.config.as_dict(), sort_keys=True, default=str),
            messages=state.messages,
            first_seq=state.first_seq,
            last_seq=state.last_seq,
            deleted=state.num_deleted or 0,
            per_subject=dict(state.subjects or {}),
            leader=info.cluster.leader if info.cluster else None,
            peers=tuple(sorted(r.name or "" for r in (info.cluster.replicas or [])))
            if info.cluster
            else (),
            meta_leader=self.broker.meta_leader(),
            consumers=consumers,
        )

    async def assert_intact(self, before: Snapshot, attacker: Grant, within: float = 3.0) -> int:
        """Assert that since `before` nothing was removed from or changed in the stream, no
        consumer was removed, added, changed or moved on except the attacker's own, and every
        message added is on a subject the attacker may publish itself. Returns the number of
        consumers checked. Retries briefly while a cluster's consumer counts catch up (harm
        does not undo itself)."""
        deadline = time.monotonic() + within
        while True:
            after = await self.snapshot()
            try:
                _compare(before, after, attacker)
                return len(after.consumers)
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)


def _compare(before: Snapshot, after: Snapshot, attacker: Grant) -> None:
    who = attacker.principal
    assert after.streams == before.streams, f"{who}: streams {before.streams} -> {after.streams}"
    assert after.config == before.config, f"{who}: the stream's configuration changed"
    assert after.first_seq == before.first_seq, (
        f"{who}: first_seq {before.first_seq} -> {after.first_seq} (purged?)"
    )
    assert after.deleted == before.deleted, f"{who}: messages deleted from the stream"
    added = before.added(after)
    removed = {s: n for s, n in added.items() if n < 0}
    assert not removed, f"{who}: messages removed from the stream: {removed}"
    assert (
        after.messages - before.messages == after.last_seq - before.last_seq == sum(added.values())
    ), (
        f"{who}: messages {before.messages} -> {after.messages}, "
        f"last_seq {before.last_seq} -> {after.last_seq}, added {added}"
    )
    foreign = [s for s in added if not any(matches(p, s) for p in attacker.publishes)]
    assert not foreign, f"{who}: messages appeared on subjects it may not publish: {foreign}"
    assert (after.leader, after.peers) == (before.leader, before.peers), (
        f"{who}: the stream's leader or peers changed: {before.leader} {before.peers} -> "
        f"{after.leader} {after.peers}"
    )
    assert after.meta_leader == before.meta_leader, (
        f"{who}: the meta leader changed: {before.meta_leader} -> {after.meta_leader}"
    )
    assert set(after.consumers) == set(before.consumers), (
        f"{who}: consumers {sorted(before.consumers)} -> {sorted(after.consumers)}"
    )
    for name, old in before.consumers.items():
        new = after.consumers[name]
        assert new.config == old.config, f"{who}: consumer {name}'s configuration changed"
        assert new.paused == old.paused, f"{who}: consumer {name} paused"
        assert new.leader == old.leader, f"{who}: consumer {name}'s leader changed"
        if name in attacker.consumes:
            continue  # its own: fetching and acking on it is what the grant allows
        arrived = sum(n for s, n in added.items() if any(matches(f, s) for f in old.filters))
        assert (new.ack_floor, new.delivered, new.num_ack_pending) == (
            old.ack_floor,
            old.delivered,
            old.num_ack_pending,
        ), f"{who}: consumer {name} moved: {old} -> {new}"
        assert new.num_pending == old.num_pending + arrived, (
            f"{who}: consumer {name} pending {old.num_pending} -> {new.num_pending}, "
            f"{arrived} arrived"
        )


def authorization_for(settings: Settings) -> str:
    """Seeds for the administrator, every service and the NATS agencies; the accounts block."""
    provisioning.ensure_broker_users(settings)
    found = provisioning.seeds(settings)
    for agency in AGENCIES:
        if agency.channel == "nats":
            found.ensure(found.agency_path(agency.id))
    return provisioning.accounts(settings, AGENCIES)


async def fetch_one(nc: Client, durable: str, timeout: float = 2.0) -> Msg:
    """One message from `durable` through the JetStream API imports (a service's consumer
    in its owner group, as the service pulls)."""
    if any(spec.durable == durable for spec in topology.consumers()):
        (msg,) = await fetch(nc, durable, timeout=timeout, prefix=JS_API_PREFIX)
        return msg
    sub = await Network.jetstream(nc).pull_subscribe_bind(durable, STREAM)
    try:
        (msg,) = await sub.fetch(1, timeout=timeout)
        return msg
    finally:
        await sub.unsubscribe()

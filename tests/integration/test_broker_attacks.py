"""Attacks on the broker by an agency and by each service's user ("Close the broker").

For agency A and for every service on the broker a table of routes is tried, each of them a
way someone has (or could have) reached the stream account's JetStream API or another
principal's data:

* reply-subject reflection: its own `MSG.NEXT` (a 0.2 s pull, so that the 408 fires, and a
  no-wait pull), a PubAck of its own publish, acks (`+WPI`, `+ACK`, `+NXT`) of a message of its
  own durable, and the queries it asks or answers, each with the reply set to every JetStream
  API subject (`$JS.API.…` and `JS.WEGWEISER.API.…`: purge, delete, update, message delete,
  snapshot, leader stepdown, consumer delete/stepdown/pause/reset/create, meta stepdown,
  account purge, server remove, ...), every stream subject of others, the queries of others,
  `$SYS` requests, KV and object store subjects, and the ack subjects of others;
* the same subjects requested directly, with a harmful body; the client library's own calls
  (consumer create with another filter, durable and ephemeral, binding to and fetching from
  B's durable and `audit-all`, direct get, message get, stream and consumer listings, KV and
  object store buckets);
* headers that would let a publish on its own subject reach further (rollup, TTL, schedules
  aimed at another's subject, counters, atomic batches);
* subscriptions on `$SYS.>`, `>`, `ww.>`, `_INBOX.>`, another's inbox prefix, `$JS.>`, `$KV.>`
  and `$O.>`; for an agency the account limits of infra/jetstream.toml;
* acking, terminating or nak'ing B's delivered message by its exact ack subject.

Afterwards the stream and every consumer must be intact (`Network.assert_intact`): nothing
removed or changed, no consumer gone, added, moved on or paused but the attacker's own, and
messages added only on subjects the attacker may publish itself. Nothing the attacker receives
may quote a seed message it may not read. Then, with its own snooping connection, it must see
nothing while B and a service go about their business. Every test prints its count of routes.
It runs on one node and on a three-node cluster (the stream and consumers at three replicas).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from infra import jetstream_settings
from schemas import subjects
from schemas.events import AgencyAnswer
from schemas.subjects import matches
from tests.support.broker import (
    AGENCIES,
    DENIED,
    STREAM,
    A,
    B,
    Network,
    Violations,
    W,
    agency_principal,
    fetch_one,
    leaked_subjects,
    principal_grant,
    readable_by,
)
from tests.support.consumers import fetch, handle_one, stored_messages
from tests.support.waiting import until
from wegweiser import provisioning
from wegweiser.platform import topology
from wegweiser.platform.consumer import ConsumerEdge
from wegweiser.platform.grants import JS_API_PREFIX, Grant, local_name
from wegweiser.platform.nats_auth import permissions
from wegweiser.registry import ON_THE_BROKER

A_USER, B_USER = agency_principal(A), agency_principal(B)
DURABLE_A, DURABLE_B = (topology.agency_consumer(x).durable for x in (A, B))
PRINCIPALS = (A_USER, *ON_THE_BROKER)
SHORT = 0.5  # seconds a denied request may take to time out
EXPIRING_PULL = b'{"batch":1,"expires":200000000}'  # 0.2 s: the 408 fires
NO_WAIT_PULL = b'{"batch":1,"no_wait":true}'
LIMITS_WITHIN = 10.0  # seconds the server may take to act on an account limit it enforces
ANSWERED_WITHIN = 5.0  # seconds for each of the hundreds of answers asked for at once to come
OWNED = {spec.durable for spec in topology.consumers()}


def pulls(durable: str) -> list[tuple[bytes, str]]:
    """The pulls a principal can make on its durable, with the empty-bodied status each gets
    back: a service's consumer (owned, see wegweiser/platform/pull.py) answers a pull
    outside its owner group with a 400, another carrier."""
    if durable not in OWNED:
        return [(NO_WAIT_PULL, "404"), (EXPIRING_PULL, "408")]
    grouped = [(body[:-1] + b',"group":"owner"}', s) for body, s in pulls(f"{durable}/")]
    return [*grouped, (NO_WAIT_PULL, "400")]


DURABLES = [c.durable for c in provisioning.declared_consumers(AGENCIES)]

STREAM_TARGETS = (
    subjects.answer(A, "accept"),
    subjects.answer(B, "accept"),
    subjects.answer(B, "reject"),
    subjects.answer(W, "accept"),
    subjects.agency_capacity(A),
    subjects.agency_capacity(B),
    subjects.referral_event(A, "offered"),
    subjects.referral_event(B, "offered"),
    subjects.referral_event(B, "cancelled"),
    subjects.REQUEST_RECORDED,
    subjects.CONSENT_WITHDRAWN,
    subjects.REFERRAL_REQUESTED,
    subjects.CANCELLATION_REQUESTED,
    *(subjects.dead_letter(s) for s in ON_THE_BROKER),
    subjects.AUDIT_HEAD_SIGNED,  # a forged head would mislead every witness
    # a forged key publication or revocation would mislead the audit of agencies' identities
    subjects.directory_event(A, "keys-published"),
    subjects.directory_event(B, "revoked"),
)
"""Concrete stream subjects; those the attacker may not publish are its targets."""

SYS_TARGETS = (
    "$SYS.REQ.SERVER.PING",
    "$SYS.REQ.SERVER.PING.CONNZ",
    "$SYS.REQ.SERVER.PING.JSZ",
    "$SYS.REQ.SERVER.PING.ACCOUNTZ",
    "$SYS.REQ.ACCOUNT.PING.CONNZ",
    "$SYS.REQ.ACCOUNT.WEGWEISER.CONNZ",
    "$SYS.REQ.ACCOUNT.WEGWEISER.JSZ",
    f"$SYS.REQ.ACCOUNT.AGENCY_{B.upper().replace('-', '_')}.CONNZ",
    "$SYS.REQ.USER.INFO",
    "$SYS.REQ.SERVER.PING.RELOAD",
)
STORE_TARGETS = ("$KV.sneaky.key", "$O.sneaky.C.chunk", "$O.sneaky.M.meta")


def js_api_subjects() -> list[str]:
    """Every JetStream API subject of the stream account that can harm or read it."""
    s = STREAM
    api = "$JS.API"
    out = [
        *(
            f"{api}.STREAM.{op}.{s}"
            for op in (
                "PURGE",
                "DELETE",
                "UPDATE",
                "CREATE",
                "MSG.DELETE",
                "SNAPSHOT",
                "RESTORE",
                "LEADER.STEPDOWN",
                "PEER.REMOVE",
                "INFO",
                "MSG.GET",
            )
        ),
        f"{api}.DIRECT.GET.{s}",
        f"{api}.DIRECT.GET.{s}.{subjects.referral_event(B, 'offered')}",
        f"{api}.CONSUMER.CREATE.{s}",
        f"{api}.CONSUMER.LIST.{s}",
        f"{api}.CONSUMER.NAMES.{s}",
        f"{api}.INFO",
        f"{api}.STREAM.LIST",
        f"{api}.STREAM.NAMES",
        f"{api}.META.LEADER.STEPDOWN",
        f"{api}.ACCOUNT.PURGE.{s}",
        f"{api}.ACCOUNT.STREAM.MOVE.{s}.{s}",
        f"{api}.SERVER.REMOVE",
        f"{api}.STREAM.CREATE.KV_sneaky",
        f"{api}.STREAM.CREATE.OBJ_sneaky",
        f"{api}.STREAM.CREATE.SNEAKY",
    ]
    for d in DURABLES:
        out += [
            *(
                f"{api}.CONSUMER.{op}.{s}.{d}"
                for op in (
                    "DELETE",
                    "LEADER.STEPDOWN",
                    "PAUSE",
                    "RESET",
                    "UNPIN",
                    "INFO",
                    "MSG.NEXT",
                    "CREATE",
                    "DURABLE.CREATE",
                )
            ),
            f"{api}.CONSUMER.CREATE.{s}.{d}.ww.referral.>",
        ]
    return out


JS_API = js_api_subjects()
JS_API_BOTH = [*JS_API, *(local_name(t) for t in JS_API)]


def others_acks(grant: Grant) -> list[str]:
    """Plausible ack subjects of every durable but the attacker's own."""
    return [f"$JS.ACK.{STREAM}.{d}.1.2.1.0.0" for d in DURABLES if d not in grant.consumes]


def reply_targets(grant: Grant, held: str) -> list[str]:
    """Where the attacker points reply subjects: anything it may not publish itself."""
    stream = [s for s in STREAM_TARGETS if not any(matches(p, s) for p in grant.publishes)]
    queries = [q.of(agency) for q in subjects.QUERIES for agency in (A, B)]  # as each asks
    return list(
        dict.fromkeys(
            [
                *JS_API_BOTH,
                *stream,
                *queries,
                *SYS_TARGETS,
                *STORE_TARGETS,
                *others_acks(grant),
                held,
            ]
        )
    )


def harmful_body(subject: str, inbox: str) -> bytes:
    """A request body that would do damage (or deliver data to `inbox`) if it were obeyed."""
    tokens = subject.split(".")
    stream = topology.stream_config().as_dict()
    if "STREAM.UPDATE" in subject or "STREAM.CREATE" in subject:
        body: Any = {**stream, "name": tokens[-1], "max_msgs": 1, "subjects": ["ww.>"]}
    elif "MSG.DELETE" in subject:
        body = {"seq": 1, "no_erase": True}
    elif "SNAPSHOT" in subject:
        body = {"deliver_subject": inbox, "chunk_size": 1024}
    elif "STREAM.PURGE" in subject:
        body = {"filter": f"ww.referral.{B}.>"}
    elif "MSG.GET" in subject or "DIRECT.GET" in subject:
        body = {"last_by_subj": subjects.referral_event(B, "offered")}
    elif "CONSUMER.CREATE" in subject or "DURABLE.CREATE" in subject:
        durable = tokens[-1] if ("DURABLE" in subject or len(tokens) == 6) else None
        config = {
            "ack_policy": "explicit",
            "deliver_policy": "all",
            "filter_subject": "ww.referral.>",
        }
        if durable and durable != STREAM and not durable.startswith("ww"):
            config["durable_name"] = durable
        body = {"stream_name": STREAM, "config": config}
    elif "MSG.NEXT" in subject:
        body = {"batch": 10, "expires": 200_000_000}
    elif "PAUSE" in subject:
        body = {"pause_until": "2099-01-01T00:00:00Z"}
    elif "RESET" in subject:
        body = {"seq": 1}
    elif "SERVER.REMOVE" in subject or "PEER.REMOVE" in subject:
        body = {"peer": "wegweiser-1"}
    elif "ACCOUNT.STREAM.MOVE" in subject:
        body = {"server_tags": []}
    else:
        body = {}
    return json.dumps(body).encode()


def concrete(pattern: str) -> str:
    """A subject of a grant's pattern: `ww.referral.*.offered` -> one for agency A."""
    tokens = pattern.split(".")
    if len(tokens) > 2 and tokens[2] == "*":
        tokens[2] = A
    return ".".join("accept" if t == "*" else t for t in tokens)


@dataclass
class Attack:
    """One attacker's connection and the tally of what it tried and got."""

    network: Network
    principal: str
    nc: Client
    violations: Violations
    held_ack: str
    tried: int = 0
    answered: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    received: int = 0
    first_of: dict[str, Msg | None] = field(default_factory=dict)

    @property
    def grant(self) -> Grant:
        return principal_grant(self.principal)

    @property
    def js(self) -> JetStreamContext:
        return Network.jetstream(self.nc, timeout=SHORT)

    @property
    def plain(self) -> JetStreamContext:
        """JetStream spelled as in the stream account (`$JS.API`)."""
        return self.nc.jetstream(timeout=SHORT)

    def allowed(self, subject: str) -> bool:
        """Whether the attacker's own permissions allow publishing `subject`."""
        return any(matches(p, subject) for p in permissions(self.grant)["publish"]["allow"])

    def inspect(self, where: str, data: bytes) -> None:
        self.received += 1
        for subject in leaked_subjects(data, readable_by(self.grant)):
            self.leaks.append(f"{where}: {subject}")

    async def keep(self, msg: Msg) -> None:
        self.inspect(f"subscription {msg.subject}", msg.data)

    async def publish(self, subject: str, body: bytes = b"", reply: str = "", **kw: Any) -> None:
        self.tried += 1
        await self.nc.publish(subject, body, reply=reply, **kw)

    async def refused(self, route: str, attempt: Awaitable[Any]) -> None:
        """Try a request-like route; anything but a refusal is recorded as answered."""
        self.tried += 1
        try:
            result = await asyncio.wait_for(attempt, 2 * SHORT + 0.2)
        except DENIED:
            return
        except Exception as exc:  # noqa: BLE001 - an API error means: refused, but answered
            if "permissions violation" in str(exc).lower():
                return
            self.answered.append(f"{route}: {exc!r}"[:300])
            return
        text = result.data if isinstance(result, Msg) else repr(result).encode()
        self.inspect(route, text)
        self.answered.append(f"{route}: {text[:300]!r}")

    async def request(self, subject: str, body: bytes) -> None:
        await self.refused(subject, self.nc.request(subject, body, timeout=SHORT))


async def _settle(nc: Client, seconds: float) -> None:
    await nc.flush(timeout=5)
    await asyncio.sleep(seconds)


# --- the routes ------------------------------------------------------------------------------


async def subscriptions(attack: Attack) -> None:
    """Subscribe where others' traffic would show; `_INBOX.>` is allowed (its own account's)."""
    for subject in (
        "$SYS.>",
        ">",
        "ww.>",
        f"ww.referral.{B}.>",
        "_INBOX.>",
        f"_INBOX_{B}.>",
        "$JS.>",
        "$JS.API.>",
        "$JS.ACK.>",
        "$JS.EVENT.>",
        f"{JS_API_PREFIX}.>",
        "$KV.>",
        "$O.>",
        "_R_.>",
    ):
        attack.tried += 1
        await attack.nc.subscribe(subject, cb=attack.keep)
    await attack.nc.flush(timeout=5)


async def drain_own_durables_reflecting_acks(attack: Attack, targets: list[str]) -> None:
    """Fetch each of its own durables empty; ack the first message with every target as the
    ack's reply (`+WPI`, then `+ACK`)."""
    for durable in attack.grant.consumes:
        first: Msg | None = None
        for _ in range(60):  # bounded: the seeds and at most a few of its own
            info = await attack.js.consumer_info(STREAM, durable)
            if info.num_pending == 0 and info.num_ack_pending == 0:
                break
            msg = await fetch_one(attack.nc, durable, timeout=5)
            attack.inspect(f"own durable {durable}", msg.data)
            if first is None:
                for kind in (b"+WPI", b"+ACK"):
                    for target in targets:
                        await attack.publish(msg.reply, kind, reply=target)
                await _settle(attack.nc, 0.05)
                first = msg
            await msg.ack_sync(timeout=5)
        assert info.num_pending == 0, f"{durable} not drained"
        attack.first_of[durable] = first
    await _settle(attack.nc, 0.1)


async def reflect_next(attack: Attack, targets: list[str]) -> None:
    """`+NXT` on an ack subject of its own durable, with every target as the reply: a pull
    whose messages would go to the target (it waits, no expiry: its own durable's problem)."""
    for first in attack.first_of.values():
        if first is not None:
            for target in targets:
                await attack.publish(first.reply, b"+NXT", reply=target)
    await _settle(attack.nc, 0.1)


async def carriers_work(attack: Attack) -> None:
    """Controls: a PubAck and the 408, 404 (and 400) of its own pulls reach the reply it sets,
    here its own inbox (else the reflection routes would prove nothing)."""
    grant, nc = attack.grant, attack.nc
    control = await nc.subscribe(nc.new_inbox())
    for durable in grant.consumes:
        pull = local_name(f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{durable}")
        for body, status in pulls(durable):
            await nc.publish(pull, body, reply=control.subject)
            answer = await control.next_msg(timeout=5)
            got = (answer.headers or {}).get("Status", "")
            assert got == status and answer.data == b"", (durable, answer.headers, answer.data)
    await nc.publish(concrete(grant.publishes[0]), b"{}", reply=control.subject)
    puback = await control.next_msg(timeout=5)
    assert json.loads(puback.data)["stream"] == STREAM, puback.data
    await control.unsubscribe()


async def reflect_pulls(attack: Attack, targets: list[str]) -> None:
    """Its own MSG.NEXT with the reply on every target: the 408 (after 0.2 s), the 404 (no
    wait) and the 400 (outside the owner group) are sent there by the server's internal
    client."""
    for durable in attack.grant.consumes:
        pull = local_name(f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{durable}")
        for body, _ in pulls(durable):
            for target in targets:
                await attack.publish(pull, body, reply=target)
    await _settle(attack.nc, 0.5)


async def reflect_puback(attack: Attack, targets: list[str]) -> None:
    """A publish on its own subject with the reply on every target: the PubAck goes there."""
    own = concrete(attack.grant.publishes[0])
    for target in targets:
        await attack.publish(own, b"{}", reply=target)
    await _settle(attack.nc, 0.3)


async def reflect_queries(attack: Attack, targets: list[str]) -> list[Client]:
    """The queries it asks, with the replies on every target (answered by a stand-in of the
    answering service); the queries it answers, answered with the reply set to every target.
    Returns the helpers' connections."""
    network, grant = attack.network, attack.grant
    helpers: list[Client] = []
    for query in subjects.QUERIES:
        for asked in [s for s in grant.asks if matches(query.pattern, s)]:
            answerer, _ = await network.connect(query.answered_by)

            async def respond(msg: Msg) -> None:
                await msg.respond(b"an answer")

            await answerer.subscribe(asked, cb=respond)
            await answerer.flush(timeout=5)
            helpers.append(answerer)
            await _await_interest(attack.nc, asked)  # else what follows reaches no one
            for target in targets:
                await attack.publish(asked, b"{}", reply=target)
    answered = [q for q in subjects.QUERIES if q.pattern in grant.answers]
    pending = {q.pattern: list(targets) for q in answered}

    async def respond_far(msg: Msg) -> None:
        if msg.data == INTEREST_PROBE:
            await attack.publish(msg.reply, INTEREST_PROBE)
            return
        pattern = next(p for p in pending if matches(p, msg.subject))
        target = pending[pattern].pop()
        await attack.publish(msg.reply, target.encode(), reply=target)
        await attack.publish(msg.reply, b"a second answer", reply=target)  # allowed once

    for query in answered:
        await attack.nc.subscribe(query.pattern, cb=respond_far)
    await attack.nc.flush(timeout=5)
    askers: dict[str, tuple[Client, str]] = {}  # the query's pattern -> who asks, on what
    for query in answered:
        if "admin" in query.asked_by:
            askers[query.pattern] = (network.admin, query.subject)
        elif subjects.EACH_AGENCY in query.asked_by:  # an agency, on its own subject
            asker, _ = await network.connect(A_USER)
            askers[query.pattern] = (asker, query.of(A))
            helpers.append(asker)
        else:
            asker, _ = await network.connect(query.asked_by[0])
            askers[query.pattern] = (asker, query.subject)
            helpers.append(asker)
    for asker, subject in askers.values():
        await _await_interest(asker, subject)
    outcomes = await asyncio.gather(
        *(
            asyncio.gather(
                *(
                    _answer(
                        askers[q.pattern][0].request(
                            askers[q.pattern][1], b"{}", timeout=ANSWERED_WITHIN
                        )
                    )
                    for _ in targets
                )
            )
            for q in answered
        )
    )
    for query, got in zip(answered, outcomes, strict=True):
        # control: the answers arrive, and the asker sees each one's reply remapped to a
        # response subject of its own account (the server drops those aimed at `$JS.ACK.`)
        replies = dict(a for a in got if a)
        arriving = {t for t in targets if not t.startswith("$JS.ACK.")}
        assert arriving <= set(replies), f"{query.subject}: no answer for {arriving - set(replies)}"
        verbatim = {t: r for t, r in replies.items() if not r.startswith("_R_.")}
        assert not verbatim, f"{query.subject}: replies passed through as they were: {verbatim}"
    await _settle(attack.nc, 0.3)
    return helpers


INTEREST_PROBE = b"is anyone there"


async def _await_interest(asker: Client, subject: str) -> None:
    """Until the asker's server knows of the answerer: on the cluster a subscription reaches
    the other nodes some time after its own server confirmed it, and a request before then
    finds no responders."""
    for _ in range(50):
        try:
            await asker.request(subject, INTEREST_PROBE, timeout=SHORT)
            return
        except DENIED:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{subject}: the answerer's subscription never reached the asker")


async def _answer(attempt: Awaitable[Msg]) -> tuple[str, str] | None:
    """(the reply subject the answerer set, as its answer says; the reply the asker sees)"""
    try:
        msg = await attempt
    except DENIED:
        return None
    if msg.reply:  # the asker answers back (only the admin may): it reaches the answerer's
        with contextlib.suppress(Exception):  # own account, on the subject it named
            await msg.respond(b"{}")
    return msg.data.decode(errors="replace"), msg.reply


async def direct_requests(attack: Attack) -> None:
    """Every JetStream API subject, both spellings, `$SYS`, KV and object store subjects and
    others' stream subjects, requested with a harmful body: no answer, nothing done."""
    inbox = attack.nc.new_inbox()
    await attack.nc.subscribe(inbox, cb=attack.keep)
    routes = [t for t in JS_API_BOTH if not attack.allowed(t)]
    routes += [*SYS_TARGETS, *STORE_TARGETS, *others_acks(attack.grant)]
    routes += [s for s in STREAM_TARGETS if not attack.allowed(s)]
    await asyncio.gather(*(attack.request(t, harmful_body(t, inbox)) for t in routes))


async def client_calls(attack: Attack) -> None:
    """What the client library offers, through the imports and as `$JS.API`."""
    grant = attack.grant
    sneaky = ConsumerConfig(durable_name="sneaky", filter_subject=f"ww.referral.{B}.>")
    widened = ConsumerConfig(
        durable_name=grant.consumes[0],
        filter_subject="ww.>",
        deliver_policy=DeliverPolicy.ALL,
    )
    service_durable = next(d for d in ("audit-all", "referral-answers") if d not in grant.consumes)
    calls: dict[str, Awaitable[Any]] = {}
    made = 0
    unpin = json.dumps({"group": "owner"}).encode()
    for spelling, js in (("imports", attack.js), ("$JS.API", attack.plain)):
        api = JS_API_PREFIX if spelling == "imports" else "$JS.API"
        routes: dict[str, Awaitable[Any]] = {
            f"unpin {service_durable}'s owner": attack.nc.request(
                f"{api}.CONSUMER.UNPIN.{STREAM}.{service_durable}", unpin, timeout=SHORT
            ),
            "durable consumer on B's subjects": js.add_consumer(STREAM, sneaky),
            "ephemeral consumer on B's subjects": js.add_consumer(
                STREAM, ConsumerConfig(filter_subject=f"ww.referral.{B}.>")
            ),
            "ephemeral consumer on everything": js.add_consumer(STREAM, ConsumerConfig()),
            "widen its own durable's filter": js.add_consumer(STREAM, widened),
            "bind to B's durable and fetch": _bind_and_fetch(js, DURABLE_B),
            f"bind to {service_durable} and fetch": _bind_and_fetch(js, service_durable),
            "pull_subscribe with B's durable": js.pull_subscribe(
                f"ww.referral.{B}.>", durable=DURABLE_B, stream=STREAM
            ),
            "push subscribe on B's subjects": js.subscribe(f"ww.referral.{B}.>", stream=STREAM),
            "B's consumer info": js.consumer_info(STREAM, DURABLE_B),
            f"{service_durable}'s consumer info": js.consumer_info(STREAM, service_durable),
            "list consumers": js.consumers_info(STREAM),
            "list streams": js.streams_info(),
            "account info": js.account_info(),
            "message get": js.get_msg(STREAM, 1),
            "message get of B's last offer": js.get_last_msg(
                STREAM, subjects.referral_event(B, "offered")
            ),
            "direct get": js.get_msg(STREAM, 1, direct=True),
            "purge": js.purge_stream(STREAM),
            "delete stream": js.delete_stream(STREAM),
            "update stream": js.update_stream(topology.stream_config()),
            "delete a message": js.delete_msg(STREAM, 1),
            "delete B's durable": js.delete_consumer(STREAM, DURABLE_B),
            "delete its own durable": js.delete_consumer(STREAM, attack.grant.consumes[0]),
            "pause B's durable": js.pause_consumer(STREAM, DURABLE_B, "2099-01-01T00:00:00Z"),
            "reset B's durable": js.reset_consumer(STREAM, DURABLE_B),
            "create a KV bucket": js.create_key_value(bucket="sneaky"),
            "open a KV bucket": js.key_value("sneaky"),
            "create an object store": js.create_object_store(bucket="sneaky"),
            "open an object store": js.object_store("sneaky"),
        }
        if spelling == "$JS.API" or not attack.allowed(f"{JS_API_PREFIX}.STREAM.INFO.{STREAM}"):
            routes["stream info"] = js.stream_info(STREAM)
        calls |= {f"({spelling}) {route}": call for route, call in routes.items()}
        made += len(routes)
    assert len(calls) == made, "a route of one spelling shadowed another"
    await asyncio.gather(*(attack.refused(route, call) for route, call in calls.items()))


async def _bind_and_fetch(js: JetStreamContext, durable: str) -> list[Msg]:
    sub = await js.pull_subscribe_bind(durable, STREAM)
    try:
        return list(await sub.fetch(1, timeout=SHORT))
    finally:
        await sub.unsubscribe()


async def others_subjects_and_headers(attack: Attack) -> None:
    """Publishing where it may not, and headers on its own subject that would reach further
    (the stream allows none of rollups, TTLs, schedules, counters and batches)."""
    js = attack.js
    await asyncio.gather(
        *(
            attack.refused(f"publish on {subject}", js.publish(subject, b"{}"))
            for subject in STREAM_TARGETS
            if not attack.allowed(subject)
        )
    )
    own = concrete(attack.grant.publishes[0])
    wild = own.rsplit(".", 1)[0]
    for subject in (f"{wild}.*", f"{wild}.>", "ww.>", f"{own}.extra"):
        await attack.publish(subject, b"{}", reply=attack.nc.new_inbox())
    far = subjects.answer(B, "accept")
    headers = [
        {"Nats-Rollup": "all"},
        {"Nats-Rollup": "sub"},
        {"Nats-TTL": "1s"},
        {"Nats-Schedule": "@at 2000-01-01T00:00:00Z", "Nats-Schedule-Target": far},
        {"Nats-Schedule": "@every 1s", "Nats-Schedule-Target": far, "Nats-TTL": "1s"},
        {"Nats-Incr": "1"},
        {"Nats-Batch-Id": "sneaky", "Nats-Batch-Sequence": "1", "Nats-Batch-Commit": "1"},
        {"Nats-Expected-Stream": "KV_sneaky"},
        {"Nats-Marker-Reason": "Purge"},
    ]
    for header in headers:
        attack.tried += 1
        with contextlib.suppress(Exception):  # refused or stored as a plain message: both fine
            await js.publish(own, b"{}", headers=header)


async def others_held_message(attack: Attack) -> None:
    """B holds a delivered message; the attacker acks, terminates, naks and pulls on its exact
    ack subject, directly and as the reply of its own pull and publish."""
    for kind in (b"+ACK", b"+TERM", b"-NAK", b"+WPI", b"+NXT", b'-NAK {"delay": 1}'):
        await attack.publish(attack.held_ack, kind, reply=attack.nc.new_inbox())
    for durable in attack.grant.consumes:
        await attack.publish(
            local_name(f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{durable}"),
            NO_WAIT_PULL,
            reply=attack.held_ack,
        )
    await attack.publish(concrete(attack.grant.publishes[0]), b"{}", reply=attack.held_ack)
    # its own ack import, spelled with another durable in the token layout of newer servers
    for durable in attack.grant.consumes:
        for kind in (b"+ACK", b"+TERM"):
            await attack.publish(
                f"$JS.ACK.{STREAM}.{durable}.{STREAM}.{DURABLE_B}.1.1.1.0.0.x", kind
            )
            await attack.publish(f"$JS.ACK.{STREAM}.{durable}.1.1.1.0.0", kind)
    await _settle(attack.nc, 0.2)


async def agency_limits(attack: Attack) -> None:
    """max_payload, max_subscriptions and max_connections of the agency account."""
    limits = jetstream_settings()["agency_account"]
    network = attack.network
    # a payload above the account's max_payload, past the client's own check
    big, big_violations = await network.connect(attack.principal)
    big._max_payload = 10 * limits["max_payload_bytes"]  # the client trusts the server's INFO
    attack.tried += 1
    with contextlib.suppress(Exception):
        await Network.jetstream(big, timeout=SHORT).publish(
            subjects.answer(A, "accept"), b"x" * (limits["max_payload_bytes"] + 1)
        )
    # the server logs the violation and closes the connection as it reads the payload: a
    # moment after the client gave up waiting, on a busy machine
    await until(lambda: not big.is_connected, LIMITS_WITHIN, "a payload above the limit refused")
    said = f"maximum payload exceeded: {limits['max_payload_bytes'] + 1} vs"
    await until(lambda: said in network.server_log(), LIMITS_WITHIN, "the server said why")
    assert not big.is_connected, "a payload above the limit was accepted"
    assert said in network.server_log(), big_violations.seen
    with contextlib.suppress(Exception):
        await big.close()
    # more subscriptions than the limit on one connection
    many, _many_violations = await network.connect(attack.principal)
    for n in range(limits["max_subscriptions"] + 5):
        attack.tried += 1
        await many.subscribe(f"_INBOX_{A}.limit.{n}")
    with contextlib.suppress(Exception):
        await many.flush(timeout=2)
    await until(
        lambda: not many.is_connected, LIMITS_WITHIN, "more subscriptions than the limit refused"
    )
    await until(
        lambda: "maximum subscriptions exceeded" in network.server_log(),
        LIMITS_WITHIN,
        "the server said why",
    )
    assert not many.is_connected, "more subscriptions than the limit were accepted"
    assert "maximum subscriptions exceeded" in network.server_log()
    with contextlib.suppress(Exception):
        await many.close()
    # more connections than the limit: the attack's own connection is one of them
    extra: list[Client] = []
    refused = None
    for _ in range(limits["max_connections"] + 1):
        attack.tried += 1
        try:
            nc, _ = await asyncio.wait_for(
                network.connect(attack.principal, url=network.first_url), 5
            )
        except Exception as exc:  # noqa: BLE001 - any refusal will do
            refused = exc
            break
        extra.append(nc)

    def within_the_limit() -> bool:
        """A connection beyond the limit was refused, or closed by the server (on a cluster
        a server learns the account's connections on the others a moment later)."""
        alive = [nc for nc in extra if nc.is_connected]
        return (refused is not None or len(alive) < len(extra)) and (
            1 + len(alive) <= limits["max_connections"]
        )

    await until(within_the_limit, LIMITS_WITHIN, "the account's connection limit enforced")
    alive = [nc for nc in extra if nc.is_connected]
    assert refused is not None or len(alive) < len(extra), "no connection was refused"
    assert 1 + len(alive) <= limits["max_connections"], f"{1 + len(alive)} connections"
    for nc in extra:
        with contextlib.suppress(Exception):
            await nc.close()


async def b_holds_a_message(network: Network) -> tuple[Client, Msg, asyncio.Task[None]]:
    """B fetches its offer and keeps it in progress while the attack runs."""
    b, _ = await network.connect(B_USER)
    msg = await fetch_one(b, DURABLE_B, timeout=5)

    async def in_progress() -> None:
        while True:
            await asyncio.sleep(2)
            await msg.in_progress()

    return b, msg, asyncio.create_task(in_progress())


async def snoop_while_others_work(network: Network, principal: str, b: Client, held: Msg) -> int:
    """A fresh connection of the attacker listens everywhere it can while B acks, answers and
    fetches and a service fetches and acks: it hears nothing. Returns the routes tried."""
    spy, _spy_violations = await network.connect(principal)
    heard: list[str] = []

    async def hear(msg: Msg) -> None:
        heard.append(f"{msg.subject}: {msg.data[:80]!r}")

    snooped = (">", "ww.>", "_INBOX.>", f"_INBOX_{B}.>", "$JS.>", "$SYS.>", "_R_.>")
    for subject in snooped:
        await spy.subscribe(subject, cb=hear)
    await spy.flush(timeout=5)
    # B goes about its business: acks the message it held (still its to ack), answers, fetches
    await held.ack_sync(timeout=5)
    js_b = Network.jetstream(b, timeout=5)
    await js_b.publish(subjects.answer(B, "acknowledge"), b'{"secret": "agency-b"}')
    await js_b.consumer_info(STREAM, DURABLE_B)
    with contextlib.suppress(*DENIED):
        await _bind_and_fetch(js_b, DURABLE_B)
    # and so does a service other than the attacker
    worker = "referral" if principal != "referral" else "intake"
    service, _ = await network.connect(worker)
    durable = principal_grant(worker).consumes[0]
    with contextlib.suppress(*DENIED):
        msg = await fetch_one(service, durable, timeout=2)
        await msg.ack_sync(timeout=5)
    await Network.jetstream(service, timeout=5).stream_info(STREAM)
    await asyncio.sleep(0.3)
    await spy.close()
    await service.close()
    assert heard == [], f"{principal} overheard: {heard}"
    return len(snooped)


# --- the tests -------------------------------------------------------------------------------


ON_THE_CLUSTER = {A_USER, "referral", "gateway"}
"""Who is attacked on the cluster too (every principal on one node): the agency, the service
that answers agencies and the one that acts for them; the routes are the same, the cluster
adds leaders to step down and replicas to lose."""


@pytest.mark.parametrize("principal", PRINCIPALS)
async def test_no_route_harms_the_stream_or_reaches_another_s_data(
    any_network: Network, principal: str
) -> None:
    network = any_network
    if network.cluster and principal not in ON_THE_CLUSTER:
        pytest.skip("on the cluster: the agency and the services that act for agencies")
    started = time.monotonic()
    b, held, keep_held = await b_holds_a_message(network)
    before = await network.snapshot()
    if network.cluster:  # the stream at three replicas, with leaders to step down
        assert len(before.peers) == 2 and before.leader and before.meta_leader, before
    nc, violations = await network.connect(principal)
    attack = Attack(network, principal, nc, violations, held_ack=held.reply)
    grant = attack.grant
    targets = reply_targets(grant, held.reply)
    helpers: list[Client] = []
    phases: list[tuple[str, float]] = []
    try:

        async def phase(name: str, work: Awaitable[Any]) -> Any:
            begun = time.monotonic()
            result = await work
            phases.append((name, time.monotonic() - begun))
            return result

        await phase("subscriptions", subscriptions(attack))
        await phase("drain", drain_own_durables_reflecting_acks(attack, targets))
        await phase("controls", carriers_work(attack))
        await phase("next", reflect_next(attack, targets))
        await phase("pulls", reflect_pulls(attack, targets))
        await phase("puback", reflect_puback(attack, targets))
        helpers = await phase("queries", reflect_queries(attack, targets))
        await phase("direct", direct_requests(attack))
        await phase("client", client_calls(attack))
        await phase("headers", others_subjects_and_headers(attack))
        await phase("held", others_held_message(attack))
        if grant.agency:
            await phase("limits", agency_limits(attack))
        await _settle(nc, 0.5)
        consumers = await network.assert_intact(before, grant)
        assert attack.answered == [], f"{principal}: routes answered"
        assert attack.leaks == [], f"{principal}: saw others' messages"
        assert nc.is_connected, f"{principal}'s connection was closed by the server"
    finally:
        keep_held.cancel()
        for helper in helpers:
            await helper.close()
        await nc.close()
    snooped = await snoop_while_others_work(network, principal, b, held)
    attack.tried += snooped
    kind = "cluster" if network.cluster else "node"
    print(
        f"\n{principal} on the {kind}: {attack.tried} routes tried "
        f"({len(targets)} reply targets, {len(violations.denied())} distinct denials), "
        f"stream and {consumers} consumers intact, nothing overheard "
        f"({time.monotonic() - started:.1f}s: "
        + ", ".join(f"{name} {took:.1f}" for name, took in phases)
        + ")"
    )


async def test_an_agency_cannot_preempt_the_id_of_a_service_s_dead_letter(
    network: Network,
) -> None:
    """The stream de-duplicates by `Nats-Msg-Id` across all its subjects, and a dead letter's
    id is `dl-<consumer>-<stream sequence>`. Agency A learns the stream's sequence from its own
    PubAcks: if it may publish its answers under the ids of dead letters to come, it silently
    suppresses the referral service's dead letter of B's malformed answer."""
    before = await network.snapshot()
    a, _ = await network.connect(A_USER)
    js_a = Network.jetstream(a, timeout=5)
    ahead = 5
    position = (await js_a.publish(subjects.answer(A, "accept"), b"{}")).seq
    for n in range(position + ahead + 1, position + 2 * ahead + 1):
        await js_a.publish(
            subjects.answer(A, "accept"), b"{}", headers={"Nats-Msg-Id": f"dl-referral-answers-{n}"}
        )
    b, _ = await network.connect(B_USER)
    poison = await Network.jetstream(b, timeout=5).publish(
        subjects.answer(B, "accept"), b"not an answer"
    )
    assert position + ahead < poison.seq <= position + 2 * ahead
    # the referral service's consumer edge meets B's malformed answer and dead-letters it
    referral, _ = await network.connect("referral")
    edge = ConsumerEdge(
        "referral",
        run=lambda _: None,
        js=Network.jetstream(referral, timeout=5),
        max_deliver=5,
    )
    for _ in range(20):
        (msg,) = await fetch(referral, "referral-answers", timeout=5, prefix=JS_API_PREFIX)
        await handle_one(edge, msg, "referral-answers", AgencyAnswer, lambda *_: None)
        if msg.metadata.sequence.stream == poison.seq:
            break
    await network.assert_intact(before, combined(A_USER, B_USER, "referral"))
    letters = await dead_letters_of(network, "referral")
    if poison.seq not in letters:  # say why: the stream took the letter for a duplicate
        probe = await Network.jetstream(referral, timeout=5).publish(
            subjects.dead_letter("referral"),
            b"probe",
            headers={"Nats-Msg-Id": f"dl-referral-answers-{poison.seq}"},
        )
        print(f"\nthe referral user's publish with that id: {probe}")
    assert poison.seq in letters, (
        f"the referral service's dead letter of B's malformed answer (stream sequence "
        f"{poison.seq}) was dropped as a duplicate of A's earlier answer with Nats-Msg-Id "
        f"dl-referral-answers-{poison.seq}; dead letters stored for sequences {sorted(letters)}"
    )
    for nc in (a, b, referral):
        await nc.close()


def combined(*principals: str) -> Grant:
    """The grants of several principals acting in one test, as one."""
    parts = [principal_grant(p) for p in principals]
    return Grant(
        principal="+".join(principals),
        publishes=tuple(p for g in parts for p in g.publishes),
        consumes=tuple(c for g in parts for c in g.consumes),
    )


async def dead_letters_of(network: Network, service: str) -> set[int]:
    """The stream sequences of the messages `service` has dead letters for (read as admin)."""
    found: set[int] = set()
    for msg in await stored_messages(network.admin_js, subjects.dead_letter(service), idle=0.2):
        body = json.loads(msg.data) if msg.data.startswith(b"{") else {}
        sequence = body.get("data", {}).get("stream_sequence")
        if isinstance(sequence, int):
            found.add(sequence)
    return found

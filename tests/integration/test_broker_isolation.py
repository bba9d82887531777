"""With real nats-server accounts, each principal can do exactly what the declaration says.

The declaration is the event catalogue (who produces what, on which subject), the durables of
infra/jetstream.toml (who reads what) and `schemas.subjects.QUERIES` (who asks and answers
what). The generated permissions and accounts are compared with it, then tried live: an
agency reads only its own referrals and answers only for itself, by no route (subscribe,
consumer creation, another's consumer, direct get, message get, stream info, the shared
inbox) can agency A see agency B's offers, and each service's user can publish, fetch and
ask exactly what its grant names. The attacks beyond that are in test_broker_attacks.py.
"""

from __future__ import annotations

import asyncio
import re
import tomllib
from collections.abc import Awaitable
from pathlib import Path

import nats.errors
import pytest
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from infra import JETSTREAM_TOML
from schemas import subjects
from schemas.catalogue import CATALOGUE
from schemas.subjects import matches
from schemas.vocabulary import AgencyAction
from tests.support.broker import (
    AGENCIES,
    DENIED,
    STREAM,
    A,
    B,
    Network,
    W,
    agency_principal,
    authorization_for,
    fetch_one,
    principal_grant,
    seed_body,
)
from wegweiser import provisioning, registry
from wegweiser.platform import grants, nats_auth, topology
from wegweiser.platform.connect import NotAuthorized, connect
from wegweiser.platform.grants import JS_API_PREFIX
from wegweiser.registry import ON_THE_BROKER

A_USER, B_USER = agency_principal(A), agency_principal(B)
DURABLE_A, DURABLE_B = (topology.agency_consumer(x).durable for x in (A, B))
SHORT = 0.5  # seconds a denied request may take to time out


# --- the generated permissions against the declaration (no server) --------------------------


def _declared_durables(service: str) -> list[str]:
    """The durables infra/jetstream.toml gives `service`, read from the file itself: a
    consumer of N partitions is `name`, `name-p1` ... `name-p<N-1>`."""
    toml = tomllib.loads(Path(JETSTREAM_TOML).read_text())
    return [
        name if p == 0 else f"{name}-p{p}"
        for name, c in toml["consumers"].items()
        if c["service"] == service
        for p in range(c.get("partitions", 1))
    ]


def _catalogue_subjects(producer: str, service: str = "*", agency: str = "*") -> set[str]:
    out = set()
    for spec in CATALOGUE:
        if spec.producer != producer:
            continue
        subject = spec.subject.replace("<agency>", agency).replace("<service>", service)
        # an answer's last token is one of the lifecycle's actions, never a free one
        actions = [a.value for a in AgencyAction] if "<action>" in subject else ["*"]
        for action in actions:
            out.add(re.sub(r"<[a-z-]+>", "*", subject.replace("<action>", action)))
    return out


OWNED = {spec.durable for spec in topology.consumers()}


def _js_api(durables: list[str], stream_info: bool) -> set[str]:
    api = {f"{JS_API_PREFIX}.STREAM.INFO.{STREAM}"} if stream_info else set()
    for durable in durables:
        api |= {
            f"{JS_API_PREFIX}.CONSUMER.INFO.{STREAM}.{durable}",
            f"{JS_API_PREFIX}.CONSUMER.MSG.NEXT.{STREAM}.{durable}",
            f"$JS.ACK.{STREAM}.{durable}.>",
        }
        if durable in OWNED:  # a service's own consumer: it may step aside as its owner
            api.add(f"{JS_API_PREFIX}.CONSUMER.UNPIN.{STREAM}.{durable}")
    return api


def _expected_service_publish(service: str) -> set[str]:
    own = _catalogue_subjects(service) | _catalogue_subjects("every service", service=service)
    durables = _declared_durables(service)
    if service == "gateway":  # it acts for the webhook and e-mail agencies it serves
        for agency in AGENCIES:
            if agency.channel in {"webhook", "email"}:
                own |= _catalogue_subjects("agency adapter", agency=agency.id)
                durables.append(f"agency-{agency.id}")
    asks = {q.subject for q in subjects.QUERIES if service in q.asked_by}
    return own | _js_api(durables, stream_info=True) | asks


@pytest.mark.parametrize("service", ON_THE_BROKER)
def test_each_service_user_may_publish_exactly_what_the_declaration_says(service: str) -> None:
    grant = grants.service_grant(registry.service(service), AGENCIES)
    rights = nats_auth.permissions(grant)
    allowed = rights["publish"]["allow"]
    assert len(allowed) == len(set(allowed)), f"{service}: duplicates in {allowed}"
    assert set(allowed) == _expected_service_publish(service)
    # an agency's own query (`<agency>`) is answered for every agency
    answers = {
        q.subject.replace("<agency>", "*") for q in subjects.QUERIES if q.answered_by == service
    }
    assert set(rights["subscribe"]["allow"]) == {"_INBOX.>", *answers}
    assert rights.get("allow_responses", False) is bool(answers)
    assert set(grant.consumes) == set(_declared_durables(service)) | (
        {f"agency-{W}"} if service == "gateway" else set()
    )


@pytest.mark.parametrize("agency", [A, B])
def test_an_agency_user_may_publish_its_answers_and_capacity_and_read_its_durable(
    agency: str,
) -> None:
    rights = nats_auth.permissions(grants.agency_grant(agency))
    assert set(rights["publish"]["allow"]) == _catalogue_subjects(
        "agency adapter", agency=agency
    ) | _js_api([f"agency-{agency}"], stream_info=False) | {f"wwq.referral.verdict.{agency}"}
    assert set(rights["subscribe"]["allow"]) == {"_INBOX.>", f"_INBOX_{agency}.>"}
    assert "allow_responses" not in rights


def _accounts(block: str) -> dict[str, str]:
    """Account name -> its text in a rendered accounts block."""
    found = re.findall(r"^  ([A-Z_]+) \{(.*?)^  \}$", block, flags=re.M | re.S)
    return dict(found)


def test_the_accounts_import_exactly_the_grants_and_only_the_admin_touches_the_stream(
    tmp_path: Path,
) -> None:
    from wegweiser.settings import Settings

    block = authorization_for(Settings(data_dir=tmp_path))
    accounts = _accounts(block)
    every = grants.every_grant(registry.SERVICES, AGENCIES)
    assert set(accounts) == {grants.STREAM_ACCOUNT, *(g.account for g in every)}
    stream_account = accounts[grants.STREAM_ACCOUNT]
    assert stream_account.count("nkey:") == 1 and "jetstream: enabled" in stream_account
    for grant in every:
        text = accounts[grant.account]
        assert "jetstream" not in text, f"{grant.account} has JetStream of its own"
        assert text.count("nkey:") == 1
        imported = set(re.findall(r'\{service: \{account: [A-Z_]+, subject: "([^"]+)"\}', text))
        assert imported == {*grant.publishes, *grant.jetstream_api(), *grant.asks}, grant
        assert ("limits:" in text) is grant.agency
    assert f"AGENCY_{W.upper().replace('-', '_')}" not in accounts  # served by the gateway


# --- live: agencies --------------------------------------------------------------------------


async def test_an_agency_reads_its_own_offers_through_its_consumer(network: Network) -> None:
    before = await network.snapshot()
    # the route AgencyClient takes: fetch from its own durable, ack, on its own inbox
    nc, violations = await network.connect(A_USER)
    msg = await fetch_one(nc, DURABLE_A, timeout=5)
    assert msg.data == seed_body(subjects.referral_event(A, "offered"))
    assert msg.subject == subjects.referral_event(A, "offered")
    await msg.ack_sync(timeout=5)
    info = await Network.jetstream(nc).consumer_info(STREAM, DURABLE_A)
    assert (info.num_pending, info.num_ack_pending) == (0, 0)
    assert info.ack_floor.stream_seq == msg.metadata.sequence.stream
    await nc.drain()
    assert violations.seen == []
    await network.assert_intact(before, principal_grant(A_USER))


async def test_agency_a_cannot_read_agency_b_offers_by_any_route(network: Network) -> None:
    before = await network.snapshot()
    nc, violations = await network.connect(A_USER)
    js = Network.jetstream(nc, timeout=SHORT)
    plain = nc.jetstream(timeout=SHORT)  # the stream account's own spelling, `$JS.API`
    received: list[Msg] = []

    async def keep(msg: Msg) -> None:
        received.append(msg)

    for snooped in (f"ww.referral.{B}.>", "ww.>", "_INBOX.>", f"{grants.inbox_prefix(B)}.>"):
        await nc.subscribe(snooped, cb=keep)
    await nc.flush()
    routes = {
        "create a consumer on B's subjects": js.add_consumer(
            STREAM, ConsumerConfig(durable_name="sneaky", filter_subject=f"ww.referral.{B}.>")
        ),
        "create an ephemeral consumer": js.add_consumer(STREAM, ConsumerConfig()),
        "stream info": js.stream_info(STREAM),
        "message get": js.get_msg(STREAM, 2),
        "direct get": js.get_msg(STREAM, 2, direct=True),
        "B's consumer info": js.consumer_info(STREAM, DURABLE_B),
        "list consumers": js.consumers_info(STREAM),
        "fetch from B's consumer": _fetch(js, DURABLE_B),
        "$JS.API stream info": plain.stream_info(STREAM),
        "$JS.API message get": plain.get_msg(STREAM, 2),
        "$JS.API B's consumer info": plain.consumer_info(STREAM, DURABLE_B),
        "$JS.API fetch from B's consumer": _fetch(plain, DURABLE_B),
        "$JS.API create a consumer": plain.add_consumer(
            STREAM, ConsumerConfig(durable_name="sneaky", filter_subject=f"ww.referral.{B}.>")
        ),
    }
    outcomes = await asyncio.gather(*(_refused(a) for a in routes.values()))
    allowed = [f"{route}: {o}" for route, o in zip(routes, outcomes, strict=True) if o]
    assert allowed == [], "allowed routes"
    await asyncio.sleep(0.3)
    assert received == []
    api = JS_API_PREFIX.lower()
    assert violations.denied() >= {
        f'subscription to "ww.referral.{B}.>"',
        'subscription to "ww.>"',
        f'subscription to "_inbox_{B}.>"',
        f'publish to "{api}.consumer.durable.create.wegweiser.sneaky"',
        f'publish to "{api}.consumer.create.wegweiser"',
        f'publish to "{api}.stream.info.wegweiser"',
        f'publish to "{api}.stream.msg.get.wegweiser"',
        f'publish to "{api}.direct.get.wegweiser"',
        f'publish to "{api}.consumer.info.wegweiser.{DURABLE_B}"',
        f'publish to "{api}.consumer.list.wegweiser"',
        f'publish to "{api}.consumer.msg.next.wegweiser.{DURABLE_B}"',
        'publish to "$js.api.stream.info.wegweiser"',
        'publish to "$js.api.stream.msg.get.wegweiser"',
        f'publish to "$js.api.consumer.info.wegweiser.{DURABLE_B}"',
        f'publish to "$js.api.consumer.msg.next.wegweiser.{DURABLE_B}"',
        'publish to "$js.api.consumer.durable.create.wegweiser.sneaky"',
    }, violations.seen
    await nc.close()
    # B's offer is still waiting for B alone
    info = await network.admin_js.consumer_info(STREAM, DURABLE_B)
    assert info.num_pending == 1 and info.delivered.stream_seq == 0
    await network.assert_intact(before, principal_grant(A_USER))


async def _fetch(js, durable: str) -> list[Msg]:
    sub = await js.pull_subscribe_bind(durable, STREAM)
    return list(await sub.fetch(1, timeout=SHORT))


async def _refused(attempt: Awaitable[object]) -> str | None:
    """None when the attempt was refused (timed out, no responders, an error); else what it
    returned."""
    try:
        result = await asyncio.wait_for(attempt, 2 * SHORT + 1)
    except DENIED:
        return None
    return repr(result)[:300]


async def test_agency_a_cannot_publish_an_answer_for_agency_b(network: Network) -> None:
    before = await network.snapshot()
    nc, violations = await network.connect(A_USER)
    js = Network.jetstream(nc)
    with pytest.raises(DENIED):
        await js.publish(subjects.answer(B, "accept"), b"{}", timeout=SHORT)
    with pytest.raises(DENIED):
        await js.publish(subjects.agency_capacity(B), b"{}", timeout=SHORT)
    with pytest.raises(DENIED):  # nor for the webhook agency the gateway serves
        await js.publish(subjects.answer(W, "accept"), b"{}", timeout=SHORT)
    with pytest.raises(DENIED):  # nor under an action the lifecycle does not know: no free
        await js.publish(f"ww.answer.{A}.zora-1990-03-04", b"{}", timeout=SHORT)  # token
    own = await js.publish(subjects.answer(A, "accept"), b"{}", timeout=5)  # control: allowed
    assert own.seq > 0 and own.stream == STREAM
    await nc.close()
    assert f'permissions violation for publish to "ww.answer.{B}.accept"' in violations.seen[0]
    await network.assert_intact(before, principal_grant(A_USER))
    after = await network.snapshot()
    assert before.added(after) == {subjects.answer(A, "accept"): 1}


async def test_without_credentials_nobody_gets_in_and_connect_says_so(network: Network) -> None:
    with pytest.raises(NotAuthorized, match="refused the credentials"):
        await asyncio.wait_for(connect(network.url, "stranger"), 10)


async def test_an_unknown_key_is_refused(network: Network, tmp_path: Path) -> None:
    stranger = nats_auth.Seeds(tmp_path / "elsewhere")
    seed = stranger.ensure(stranger.agency_path(A))  # a key of the right name, not registered
    with pytest.raises(NotAuthorized, match="refused the credentials"):
        await asyncio.wait_for(connect(network.url, "impostor", seed), 10)


# --- live: services --------------------------------------------------------------------------


def concrete(pattern: str) -> str:
    """A subject a pattern of a grant matches: `ww.referral.*.offered` -> one of agency A."""
    tokens = pattern.split(".")
    if len(tokens) > 2 and tokens[2] == "*":
        tokens[2] = A
    return ".".join("accept" if t == "*" else t for t in tokens)


def others_subjects(service: str) -> list[str]:
    """Subjects other principals may publish and `service` may not."""
    own = principal_grant(service).publishes
    out = []
    for principal in (*ON_THE_BROKER, A_USER, B_USER):
        for pattern in principal_grant(principal).publishes:
            for subject in {concrete(pattern), pattern.replace("*", B).replace(">", "x")}:
                if not any(matches(p, subject) for p in own) and subject not in out:
                    out.append(subject)
    return out


async def _denied_publish(js, subject: str) -> str | None:
    """None when the publish got no PubAck; else the subject."""
    try:
        await js.publish(subject, b"{}", timeout=SHORT)
    except DENIED:
        return None
    return subject


async def _denied_fetch(js, durable: str) -> str | None:
    try:
        sub = await js.pull_subscribe_bind(durable, STREAM)
        msgs = await sub.fetch(1, timeout=SHORT)
    except DENIED:
        return None
    return f"{durable}: {[m.data for m in msgs]}"


@pytest.mark.parametrize("service", ON_THE_BROKER)
async def test_each_service_user_can_do_exactly_what_its_grant_says(
    network: Network, service: str
) -> None:
    grant = principal_grant(service)
    before = await network.snapshot()
    nc, violations = await network.connect(service)
    js = Network.jetstream(nc, timeout=5)

    # every subject of its grant: a PubAck from the stream, in its own account
    for pattern in grant.publishes:
        ack = await js.publish(concrete(pattern), b"{}", timeout=5)
        assert ack.stream == STREAM and ack.seq > before.last_seq, pattern
    # each of its durables: fetch, ack, inspect; and the stream's info
    for durable in grant.consumes:
        msg = await fetch_one(nc, durable, timeout=5)
        assert msg.data.startswith(b"seed:") or msg.data == b"{}"
        await msg.ack_sync(timeout=5)
        assert (await js.consumer_info(STREAM, durable)).name == durable
    assert (await js.stream_info(STREAM)).config.name == STREAM

    # the queries it asks, answered by the service that answers them
    responders = []
    for query in subjects.QUERIES:
        answerer, _ = await network.connect(query.answered_by)

        async def respond(msg: Msg) -> None:
            await msg.respond(f"answer to {msg.subject}".encode())

        await answerer.subscribe(query.pattern, cb=respond)
        await answerer.flush()
        responders.append(answerer)
    for query in subjects.QUERIES:
        if service in query.asked_by:
            reply = await nc.request(query.subject, b"{}", timeout=5)
            assert reply.data == f"answer to {query.subject}".encode()
    unasked = [q.of(A) for q in subjects.QUERIES if service not in q.asked_by]
    answered = await asyncio.gather(
        *(_refused(nc.request(q, b"{}", timeout=SHORT)) for q in unasked)
    )
    assert [a for a in answered if a] == [], f"{service} asked what it may not ask"

    # refused: anyone else's subjects, anyone else's durables, the API beyond its grant
    others = others_subjects(service)
    assert others, service
    allowed = await asyncio.gather(*(_denied_publish(js, s) for s in others))
    assert [s for s in allowed if s] == [], f"{service} could publish these"
    foreign = [c.durable for c in provisioning.declared_consumers(AGENCIES)]
    read = await asyncio.gather(*(_denied_fetch(js, d) for d in foreign if d not in grant.consumes))
    assert [r for r in read if r] == [], f"{service} could fetch from these"
    quick = Network.jetstream(nc, timeout=SHORT)
    beyond = await asyncio.gather(
        _refused(quick.purge_stream(STREAM)),
        _refused(quick.delete_consumer(STREAM, DURABLE_B)),
        _refused(quick.delete_consumer(STREAM, grant.consumes[0])),
        _refused(quick.add_consumer(STREAM, ConsumerConfig(durable_name=grant.consumes[0]))),
        _refused(quick.get_msg(STREAM, 1)),
        _refused(quick.update_stream(topology.stream_config())),
    )
    assert [b for b in beyond if b] == [], f"{service} went beyond its grant"
    await nc.close()
    for answerer in responders:
        await answerer.close()
    assert any("permissions violation" in v.lower() for v in violations.seen)
    await network.assert_intact(before, grant)


async def test_the_admin_asks_the_audit_for_a_tree_head_across_accounts(network: Network) -> None:
    audit, _ = await network.connect("audit")

    async def respond(msg: Msg) -> None:
        await msg.respond(b"signed tree head")

    await audit.subscribe(subjects.AUDIT_TREE_HEAD, cb=respond)
    await audit.flush()
    # on a cluster the audit's interest reaches the admin's server over the routes a moment
    # after the flush: until then "no responders" is the honest answer, not a denial
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(nats.errors.NoRespondersError),
        wait=wait_fixed(0.1),
        stop=stop_after_delay(10),
        reraise=True,
    ):
        with attempt:
            reply = await network.admin.request(subjects.AUDIT_TREE_HEAD, b"{}", timeout=5)
    assert reply.data == b"signed tree head"
    await audit.close()


async def test_an_agency_account_takes_no_more_connections_than_its_limit(
    network: Network,
) -> None:
    """The agency account's limits of infra/jetstream.toml are what the server enforces."""
    from infra import jetstream_settings

    limit = jetstream_settings()["agency_account"]["max_connections"]
    held = [(await network.connect(A_USER, url=network.first_url))[0] for _ in range(limit)]
    with pytest.raises(Exception):  # noqa: B017, PT011 - any refusal will do
        await asyncio.wait_for(network.connect(A_USER, url=network.first_url), 5)
    other, _ = await network.connect(B_USER, url=network.first_url)  # B's account: unaffected
    assert other.is_connected
    for nc in [*held, other]:
        await nc.close()


async def test_an_agency_asks_after_its_own_answers_only(network: Network) -> None:
    """`wwq.referral.verdict.<agency>`: each agency asks on its own subject, which only it
    imports, so the referral service knows who asks from the subject alone."""
    before = await network.snapshot()
    referral, _ = await network.connect("referral")

    async def respond(msg: Msg) -> None:
        await msg.respond(f"verdicts for {msg.subject.rsplit('.', 1)[-1]}".encode())

    await referral.subscribe(subjects.VERDICT_QUERY.pattern, cb=respond)
    await referral.flush()
    nc, violations = await network.connect(A_USER)
    await asyncio.sleep(0.5 if network.cluster else 0)  # the interest crosses the routes
    reply = await nc.request(subjects.VERDICT_QUERY.of(A), b"{}", timeout=5)
    assert reply.data == f"verdicts for {A}".encode()
    verdicts = subjects.VERDICT_QUERY
    for foreign in (verdicts.of(B), verdicts.of(W), verdicts.pattern, "wwq.referral.>"):
        assert await _refused(nc.request(foreign, b"{}", timeout=SHORT)) is None, foreign
    overheard: list[Msg] = []

    async def keep(msg: Msg) -> None:
        overheard.append(msg)

    await nc.subscribe("wwq.referral.verdict.>", cb=keep)  # to hear B's questions
    await nc.flush()
    b_nc, _ = await network.connect(B_USER)
    assert (
        await b_nc.request(verdicts.of(B), b"{}", timeout=5)
    ).data == f"verdicts for {B}".encode()
    await asyncio.sleep(0.3)
    assert overheard == []
    assert 'subscription to "wwq.referral.verdict.>"' in violations.denied()
    await b_nc.close()
    await nc.close()
    await referral.close()
    await network.assert_intact(before, principal_grant(A_USER))

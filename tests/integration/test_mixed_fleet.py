"""A mixed fleet (issue 22, part 4): what the previous release's services wrote into the stream,
read by today's. The fixture `tests/fixtures/previous_release/events.jsonl` is that release's
own stream, recorded from its own code (see record.py there); its messages go into a stream
of today's system as that release's producers published them, one after the other, and
today's services consume them. Nothing of today's may be lost on them: every message is
handled by every consumer whose filter matches, nothing is dead-lettered, every old version
reads as today's model, and the referrals end as they ended then.

The other direction (the previous release reading today's events) is recorded beside the
fixture in `backward.json` and is why producers are upgraded after consumers
(infra/CLUSTER.md, "Rolling upgrades").
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from schemas import subjects
from schemas.catalogue import BY_TYPE, CATALOGUE
from schemas.events import ReferralChange
from schemas.subjects import matches
from schemas.upcasting import UPCASTERS, read, upcast
from tests.support.system import start_system
from tests.support.waiting import until
from wegweiser.platform import topology
from wegweiser.platform.nats_server import servers
from wegweiser.supervisor import LocalSystem

RECORDED = Path(__file__).parents[1] / "fixtures" / "previous_release"
FIXTURE, BACKWARD = RECORDED / "events.jsonl", RECORDED / "backward.json"


@dataclass(frozen=True)
class Recorded:
    """One message of the previous release's stream, as it was stored."""

    subject: str
    headers: dict[str, str]
    body: str

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def type(self) -> str:
        return str(self.event["type"])


def recorded() -> list[Recorded]:
    lines = FIXTURE.read_text().splitlines()
    return [Recorded(**json.loads(line)) for line in lines if line.strip()]


def model_of(message: Recorded) -> type[Any]:
    """Today's contract for a message: the newest version of its type."""
    return BY_TYPE[str(upcast(message.event)["type"])]


def test_the_fixture_holds_older_versions_of_events_of_every_producing_service() -> None:
    """Without old versions in it, the fleet below would test nothing about upgrades."""
    messages = recorded()
    old = {m.type for m in messages} - set(BY_TYPE)
    assert {t.rsplit(".", 1)[0] for t in old} >= {
        "de.wegweiser.intake.request.recorded",
        "de.wegweiser.intake.referral.requested",
        "de.wegweiser.agency.answer",
        "de.wegweiser.referral.escalated",
    }
    producers = {s.producer for m in messages for s in CATALOGUE if s.model is model_of(m)}
    assert {"intake", "referral", "agency adapter", "directory", "audit"} <= producers
    assert not [m for m in messages if m.subject.startswith("ww.deadletter.")]


def test_every_version_in_the_fixture_is_read_as_today_s_model() -> None:
    for message in recorded():
        assert message.type in BY_TYPE or message.type in UPCASTERS, f"not read: {message.type}"
        contract = model_of(message)
        spec = next(s for s in CATALOGUE if s.model is contract)
        pattern = ".".join("*" if t.startswith("<") else t for t in spec.subject.split("."))
        assert matches(pattern, message.subject), (message.subject, spec.subject)
        event = read(message.body, contract)
        assert event.type == contract.event_type
        assert event.id == message.event["id"] == message.headers["Nats-Msg-Id"]


@pytest.fixture
def today(tmp_path: Path) -> Iterator[LocalSystem]:
    """Today's services as processes around their own nats-server, with today's stream and
    consumers (default clocks: no deadline of theirs runs out during the test)."""
    system = start_system(tmp_path, wait=90, WEGWEISER_LOG_LEVEL="WARNING")
    try:
        yield system
    finally:
        system.stop()


REFERRAL_INPUTS = tuple(f for spec in topology.consumers("referral") for f in spec.filter_subjects)
"""What the referral service acts on: commands of intake and answers of agencies."""


async def drained(js: JetStreamContext, durables: list[str]) -> bool:
    for durable in durables:
        info = await js.consumer_info(subjects.STREAM, durable)
        if info.num_pending or info.num_ack_pending:
            return False
    return True


async def replay(nc: Client, messages: list[Recorded]) -> dict[str, int]:
    """Publish the messages in their order, as their producers did; a command or answer only
    once the referral service has taken in everything before it (the previous release's
    agencies answered an offer after they got it). Event id -> stream sequence."""
    js = nc.jetstream(timeout=10)
    referral = [spec.durable for spec in topology.consumers("referral")]
    sequences = {}
    for message in messages:
        if any(matches(f, message.subject) for f in REFERRAL_INPUTS):
            await until(
                lambda: drained(js, referral), 60.0, "the referral service took in its events"
            )
        ack = await js.publish(message.subject, message.body.encode(), headers=message.headers)
        sequences[message.event["id"]] = ack.seq
    return sequences


def rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Read a service's SQLite database while it runs (read-only)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(sql, args).fetchall()


async def dead_letters(js: JetStreamContext) -> list[str]:
    """Every dead letter in the stream: its service, the subject it gave up on, and why."""
    info = await js.stream_info(subjects.STREAM, subjects_filter="ww.deadletter.>")
    if not info.state.subjects:
        return []
    sub = await js.subscribe("ww.deadletter.>", ordered_consumer=True)
    found = []
    for _ in range(sum(info.state.subjects.values())):
        letter = json.loads((await sub.next_msg(timeout=5)).data)["data"]
        found.append(f"{letter['service']} on {letter['original_subject']}: {letter['reason']}")
    await sub.unsubscribe()
    return found


def audit_entries(data_dir: Path) -> dict[int, dict[str, Any]]:
    """The audit log's entries by the stream sequence each records."""
    entries = (
        json.loads(r[0]) for r in rows(data_dir / "audit.db", "select entry from audit_entries")
    )
    return {e["stream_sequence"]: e for e in entries if e.get("stream_sequence")}


def expected_states(messages: list[Recorded]) -> dict[str, str]:
    """Each referral's last state in the previous release's own stream."""
    last: dict[str, tuple[int, str]] = {}
    for m in messages:
        if issubclass(model_of(m), ReferralChange):
            data = m.event["data"]
            version, status = int(data["version"]), str(data["status"])
            if data["referral_id"] not in last or last[data["referral_id"]][0] < version:
                last[data["referral_id"]] = (version, status)
    return {rid: status for rid, (_, status) in last.items()}


@pytest.mark.slow
async def test_today_s_services_take_in_the_previous_release_s_stream(today: LocalSystem) -> None:
    """Today's consumers handle every message of the previous release's stream, dead-letter
    none, and come to the states that release came to."""
    messages = recorded()
    data_dir = today.data_dir
    due = {
        spec.group: (
            data_dir / f"{spec.service}.db",
            {
                m.event["id"]
                for m in messages
                if any(matches(f, m.subject) for f in spec.filter_subjects)
            },
        )
        for spec in topology.consumers()
        if spec.service != "audit"  # it keeps no inbox: its log records each stream sequence
    }
    nc = await nats.connect(servers(today.nats_url), **today.nats_options)
    js = nc.jetstream()
    try:
        sequences = await replay(nc, messages)

        async def every_consumer_handled_its_messages() -> bool:
            letters = await dead_letters(js)
            assert letters == [], letters  # at once, not after waiting for what never comes
            for group, (db, ids) in due.items():
                sql = "select event_id from inbox where consumer = ?"
                if not ids <= {r[0] for r in rows(db, sql, group)}:
                    return False
            return set(sequences.values()) <= set(audit_entries(data_dir))

        await until(
            every_consumer_handled_its_messages, 60.0, "every consumer handled its messages"
        )
        assert await dead_letters(js) == []
    finally:
        await nc.close()

    audited = audit_entries(data_dir)
    for message in messages:
        entry = audited[sequences[message.event["id"]]]
        assert entry["type"] == message.type and "anomalies" not in entry, entry

    states = dict(rows(data_dir / "referral.db", "select id, status from referrals"))
    expected = expected_states(messages)
    assert expected and {rid: states.get(rid) for rid in expected} == expected

    confirmed_then = {
        m.event["data"]["referral_id"]
        for m in messages
        if m.subject.endswith(".deletion-confirmed")
    }
    asked = rows(data_dir / "referral.db", "select referral_id, confirmed_at from deletions")
    assert confirmed_then and {rid for rid, at in asked if at} == confirmed_then

    capacities = {
        m.event["data"]["agency_id"]: (m.event["data"]["capacity"], m.event["data"]["waiting_days"])
        for m in messages
        if m.subject.endswith(".capacity")
    }
    records = {
        agency: json.loads(record)
        for agency, record in rows(data_dir / "directory.db", "select id, record from agencies")
    }
    assert (
        capacities
        and {a: (records[a]["capacity"], records[a]["waiting_days"]) for a in capacities}
        == capacities
    )


def test_the_previous_release_refuses_today_s_newer_events_so_consumers_go_first() -> None:
    """Recorded with the previous release's consumers (record.py): an event of a version or
    kind that release does not know is refused by each of its consumers that gets it (its
    services dead-letter it with the reason, its agency SDK drops it with a log line at the
    agency; its audit records everything). Nothing newer is applied, so consumers are upgraded
    before the producers of newer events, and partners' SDKs before the referral service."""
    report = json.loads(BACKWARD.read_text())
    known_then = {m.type for m in recorded()}
    assert {e["type"] for e in report["events"]} - known_then >= {
        "de.wegweiser.intake.referral.requested.v6",
        "de.wegweiser.agency.answer.v3",
        "de.wegweiser.referral.escalated.v3",
    }
    for event in report["events"]:
        by = dict(event["by"])
        assert by.pop("audit-all") == "recorded", event
        refused = all(o.startswith(("dead-lettered: ", "dropped: ")) for o in by.values())
        assert refused or set(by.values()) <= {"handled", "delivered"}, event
        assert refused or event["type"] in known_then, event

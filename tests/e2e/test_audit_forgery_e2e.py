"""The audit log against those who would fool it: a forger who rebuilds and re-signs an export,
an operator who rolls the log back, an agency that reuses an id or writes personal data into
the envelope. Through the running system and the ombudsperson's offline tool."""

from __future__ import annotations

import base64
import email
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schemas import subjects
from services.audit.ledger import Ledger, TreeHead
from tests.support.cli import run_wegweiser
from tests.support.system import AGENCY, agency_client, run_demo, start_system, wait_for
from wegweiser.platform.nats_server import servers
from wegweiser.supervisor import LocalSystem

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    s = start_system(
        tmp_path_factory.mktemp("audit-forgery"), WEGWEISER_OMBUDSPERSON_EMAIL="ombud@example.org"
    )
    yield s
    s.stop()


async def one_referral(system: LocalSystem) -> dict:
    return await run_demo(system, say=lambda _: None)


async def audit_caught_up(system: LocalSystem) -> int:
    """Once the audit has recorded every message on the stream: the stream's last sequence."""
    nc = await nats.connect(servers(system.nats_url), **system.nats_options)
    js = nc.jetstream()

    async def done() -> int | None:
        consumer = await js.consumer_info(subjects.STREAM, "audit-all")
        idle = consumer.num_pending == 0 and consumer.num_ack_pending == 0
        return consumer.delivered.stream_seq if idle else None

    try:
        return int(await wait_for(done))
    finally:
        await nc.close()


def export(system: LocalSystem, out: Path, *extra: str) -> dict:
    done = run_wegweiser(system, "audit", "export", "--out", str(out), *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def sequences(doc: dict) -> set[int]:
    return {json.loads(e)["stream_sequence"] for e in doc["entries"]} - {None}


async def test_an_export_right_after_activity_covers_all_of_it(system, tmp_path) -> None:
    await one_referral(system)
    last = await audit_caught_up(system)
    doc = export(system, tmp_path / "now.json")  # no waiting for the minute's head
    assert sequences(doc) >= set(range(1, last + 1))
    assert doc["tree_head"]["size"] == len(doc["entries"])

    # the service mails every head it signs to the ombudsperson, as a seen head to keep
    async def mailed() -> list[Path]:
        return sorted((system.data_dir / "mail" / "ombudsperson").glob("*.eml"))

    await wait_for(mailed)
    nc = await nats.connect(servers(system.nats_url), **system.nats_options)
    head = json.loads((await nc.request(subjects.AUDIT_TREE_HEAD, b"", timeout=5)).data)
    await nc.close()
    newest = email.message_from_bytes((await wait_for(mailed))[-1].read_bytes())
    (attachment,) = [p for p in newest.walk() if p.get_filename() == "audit-head.json"]
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    kept = json.loads(payload)
    assert kept["size"] == head["size"] and kept["root"] == head["root"]
    state = tmp_path / "from-mail.json"
    state.write_text(json.dumps(kept))
    later = export(system, tmp_path / "later.json")
    checked = run_wegweiser(
        system, "audit", "verify", str(tmp_path / "later.json"), "--state", str(state)
    )
    assert checked.returncode == 0 and "extends the head" in checked.stdout, checked.stdout
    assert later["tree_head"]["size"] >= kept["size"]


async def test_a_rebuilt_and_resigned_export_is_rejected_by_the_pinned_key(
    system, tmp_path
) -> None:
    await one_referral(system)
    doc = export(system, tmp_path / "genuine.json")
    key = run_wegweiser(system, "audit", "key")
    pem = tmp_path / "audit-key.pem"
    pem.write_text(key.stdout)
    assert key.stderr.startswith("fingerprint sha256:")
    genuine = run_wegweiser(
        system, "audit", "verify", str(tmp_path / "genuine.json"), "--key", str(pem)
    )
    assert genuine.returncode == 0, genuine.stdout

    # remove entry 3, rebuild the whole chain and sign the head with a fresh key
    forger = Ed25519PrivateKey.generate()
    rebuilt = Ledger()
    for raw in doc["entries"][:2] + doc["entries"][3:]:
        entry = {k: v for k, v in json.loads(raw).items() if k not in ("index", "prev_root")}
        rebuilt.append(entry)
    head = TreeHead(
        doc["tree_head"]["log_id"], rebuilt.size, rebuilt.root(), doc["tree_head"]["time"]
    ).sign(forger)
    forged = {
        **doc,
        "tree_head": {**doc["tree_head"], **head.__dict__},
        "public_key_ed25519": base64.b64encode(
            forger.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        ).decode(),
        "entries": [e.decode() for e in rebuilt.entries],
    }
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    for pinned in ([], ["--key", str(pem)]):  # this installation's key, or the kept PEM
        verdict = run_wegweiser(system, "audit", "verify", str(tmp_path / "forged.json"), *pinned)
        assert verdict.returncode == 1, verdict.stdout
        assert "names the key sha256:" in verdict.stdout and key.stderr.split()[1] in verdict.stdout


async def test_a_log_rolled_back_since_a_verified_head_is_caught(system, tmp_path) -> None:
    await one_referral(system)
    await audit_caught_up(system)
    state = tmp_path / "seen-head.json"
    first = export(system, tmp_path / "first.json")
    seen = run_wegweiser(
        system, "audit", "verify", str(tmp_path / "first.json"), "--state", str(state)
    )
    assert seen.returncode == 0, seen.stdout
    assert json.loads(state.read_text())["size"] == first["tree_head"]["size"]

    # the operator deletes the newest entries and every head that covers them (no key needed)
    keep = first["tree_head"]["size"] - 4
    db = sqlite3.connect(system.data_dir / "audit.db")
    db.execute('DELETE FROM audit_entries WHERE "index" > ?', (keep,))
    db.execute("DELETE FROM audit_tree_heads WHERE size > ?", (keep,))
    db.commit()
    db.close()
    rolled = export(system, tmp_path / "rolled.json")
    assert rolled["tree_head"]["size"] == keep
    alone = run_wegweiser(system, "audit", "verify", str(tmp_path / "rolled.json"))
    assert alone.returncode == 0  # by itself the shortened log verifies...
    checked = run_wegweiser(
        system, "audit", "verify", str(tmp_path / "rolled.json"), "--state", str(state)
    )
    assert checked.returncode == 1 and "rolled back" in checked.stdout, checked.stdout
    system.restart("audit")  # the service takes in the shortened log, as after a real rollback
    assert system.wait_ready(60)


async def test_an_answer_under_the_offers_own_id_is_recorded_all_the_same(system) -> None:
    final = await one_referral(system)
    nc = await nats.connect(servers(system.nats_url), **system.nats_options)
    offers = await nc.jetstream().subscribe(f"ww.referral.{AGENCY}.offered", ordered_consumer=True)
    offer = json.loads((await offers.next_msg(timeout=5)).data)
    await nc.close()
    async with await agency_client(system) as agency:
        js = agency._js  # the raw route a partner may take
        answer = {
            **json.loads(json.dumps(offer)),
            "type": "de.wegweiser.agency.answer.v1",
            "source": f"/wegweiser/agency/{AGENCY}",
            "data": {
                "referral_id": final["referral_id"],
                "agency_id": AGENCY,
                "action": "acknowledge",
                "reason": None,
            },
        }
        ack = await js.publish(subjects.answer(AGENCY, "acknowledge"), json.dumps(answer).encode())
    await audit_caught_up(system)
    nc = await nats.connect(servers(system.nats_url), **system.nats_options)
    reply = await nc.request(subjects.AUDIT_TREE_HEAD, b"", timeout=5)
    await nc.close()
    assert json.loads(reply.data)["size"] > 0
    db = sqlite3.connect(system.data_dir / "audit.db")
    recorded = [json.loads(e) for (e,) in db.execute("SELECT entry FROM audit_entries")]
    db.close()
    with_that_id = [e for e in recorded if e.get("id") == offer["id"]]
    assert ack.seq in {e["stream_sequence"] for e in with_that_id}  # the answer too
    assert len(with_that_id) == 2  # the offer and the answer that reused its id


async def test_a_canary_in_every_field_an_agency_fills_is_nowhere_in_the_log(
    system, tmp_path
) -> None:
    canary = f"Zora Canary {uuid.uuid4().hex[:8]}, born 1990-03-04, Hauptstrasse 5"
    final = await one_referral(system)
    async with await agency_client(system) as agency:
        js = agency._js
        base: dict[str, Any] = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": f"/wegweiser/agency/{AGENCY}",
            "type": "de.wegweiser.agency.answer.v1",
            "subject": final["referral_id"],
            "time": "2026-12-01T09:00:00Z",
            "datacontenttype": "application/json",
            "correlationid": final["referral_id"],
            "causationid": None,
            "data": {
                "referral_id": final["referral_id"],
                "agency_id": AGENCY,
                "action": "hold",
                "reason": "needs a moment",
            },
        }
        plants: list[dict[str, Any]] = [
            {"subject": canary},
            {"correlationid": canary},
            {"causationid": canary},
            {"id": canary},
            {"source": f"/wegweiser/agency/{canary}"},
            {"time": canary},
            {"type": canary},
            {"extra": canary},
            {"data": {**base["data"], "referral_id": canary}},
            {"data": {**base["data"], "agency_id": canary}},
            {"data": {**base["data"], "note": canary}},
            {"data": {**base["data"], "action": canary}},
            {"data": {**base["data"], "reason": canary}},  # free text where a code belongs
            {"data": {**base["data"], "comment": {"jwe": canary, "recipient_kid": "x-office"}}},
        ]
        for plant in plants:
            body = {**base, "id": str(uuid.uuid4()), **plant}
            await js.publish(subjects.answer(AGENCY, "hold"), json.dumps(body).encode())
        capacity = {
            **base,
            "type": "de.wegweiser.agency.capacity-updated.v1",
            "subject": canary,
            "data": {"agency_id": AGENCY, "capacity": 3, "waiting_days": 2, "note": canary},
        }
        await js.publish(subjects.agency_capacity(AGENCY), json.dumps(capacity).encode())
    await audit_caught_up(system)
    doc = export(system, tmp_path / "after-canary.json")
    text = json.dumps(doc, ensure_ascii=False)
    assert "Zora" not in text and "1990-03-04" not in text and "Hauptstrasse" not in text
    withheld = [json.loads(e) for e in doc["entries"] if "anomalies" in json.loads(e)]
    # "extra" and "note" are simply not kept; a comment's "ciphertext" only as its hash
    assert len(withheld) >= len(plants) - 3
    system.stop()  # every store flushed (the last test of the module: the system ends here)
    for db in sorted(system.data_dir.glob("*.db*")):
        assert canary.encode() not in db.read_bytes(), db.name

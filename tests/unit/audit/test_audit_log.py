"""The audit's use cases as the service runs them, on a real store and without a broker:
recording a stream message, heads signed only when the log grew, an export that covers
everything up to now and verifies against the pinned key, and a mail witness that fails
without stopping the head."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nats.aio.msg import Msg

from services.audit import export
from services.audit.application import AuditLog
from services.audit.recorder import Recorder
from services.audit.witness_mail import HeadMailer
from wegweiser.platform.db import Database

KEY = Ed25519PrivateKey.generate()
OFFERED = "ww.referral.lup-jobcenter.offered"
R1, R2 = "0c8a1f4e-5b6d-4e7f-8a9b-000000000001", "0c8a1f4e-5b6d-4e7f-8a9b-000000000002"


def delivered(sequence: int, referral_id: str, subject: str = OFFERED) -> Msg:
    """A message as JetStream hands it to the audit's consumer (its sequence in the reply)."""
    body = {"id": f"4b2a7c1e-9d3f-4e5a-8b6c-{sequence:012d}", "data": {"referral_id": referral_id}}
    reply = f"$JS.ACK.WEGWEISER.audit-all.1.{sequence}.{sequence}.1764576000000000000.0"
    return Msg(_client=None, subject=subject, reply=reply, data=json.dumps(body).encode())  # type: ignore[arg-type]


async def deliver(db: Database, audit: AuditLog, *messages: Msg) -> None:
    async def record(msg: Msg) -> None:
        await db.run(lambda s: audit.record(s, msg))

    for msg in messages:
        await record(msg)
        audit.committed()


async def test_a_head_is_signed_only_when_the_log_grew(db: Database) -> None:
    audit = AuditLog(db, Recorder(KEY))
    await audit.load()
    await deliver(db, audit, delivered(1, R1))
    head = await audit.sign_if_grown()
    assert head is not None and head.size == 1
    assert await audit.sign_if_grown() is None
    await deliver(db, audit, delivered(2, R2))
    grown = await audit.sign_if_grown()
    assert grown is not None and grown.size == 2


async def test_entries_are_read_whole_or_per_referral(db: Database) -> None:
    audit = AuditLog(db, Recorder(KEY))
    await deliver(db, audit, delivered(1, R1), delivered(2, R2), delivered(3, R1))
    mine = [json.loads(e)["stream_sequence"] for e in await audit.entries(R1)]
    assert mine == [1, 3]
    assert len(await audit.entries()) == 3


async def test_an_export_covers_everything_up_to_now_and_verifies_against_the_pinned_key(
    db: Database,
) -> None:
    audit = AuditLog(db, Recorder(KEY))
    await deliver(db, audit, delivered(1, R1), delivered(2, R1))
    document = await audit.export()
    found = export.parse(json.loads(json.dumps(document)))
    assert found.head.size == 2
    assert export.verify(found, KEY.public_key()).ok
    assert not export.verify(found, Ed25519PrivateKey.generate().public_key()).ok


async def test_heads_are_mailed_once_each_and_a_mail_that_fails_stops_no_head(
    db: Database, tmp_path: Path
) -> None:
    folder = tmp_path / "ombudsperson"
    mailed = HeadMailer("audit@kreis.example", "ombud@kreis.example", None, 25, folder)
    audit = AuditLog(db, Recorder(KEY), mailed)
    await deliver(db, audit, delivered(1, R1))
    await audit.sign()
    await audit.sign()  # the same head: not mailed again
    assert len(list(folder.iterdir())) == 1

    with socket.socket() as closed:  # a port nobody listens on: the SMTP connection is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    refused = HeadMailer("audit@kreis.example", "ombud@kreis.example", "127.0.0.1", port, folder)
    failing = AuditLog(db, Recorder(KEY), refused)
    await failing.load()
    await deliver(db, failing, delivered(2, R2))
    head = await failing.sign()
    assert head.size == 2

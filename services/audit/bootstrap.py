"""Composition root of the audit service: records every message, signs and announces heads."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from faststream.nats import NatsMessage
from nats.aio.msg import Msg
from sqlmodel import Session

from schemas import subjects
from services.audit import export, rotation, store
from services.audit.access import ombudsperson_token
from services.audit.http import create_app
from services.audit.ledger import TreeHead
from services.audit.recorder import LOG_ID, Recorder, signed_head
from services.audit.witness_mail import HeadMailer
from wegweiser import registry
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.runtime import ServiceRuntime
from wegweiser.settings import Settings

TREE_HEAD = subjects.AUDIT_TREE_HEAD
log = structlog.get_logger()


def build(settings: Settings) -> ServiceRuntime:
    """Wire the audit service: its own durable consumer on the whole stream."""
    runtime = ServiceRuntime(registry.service("audit"), settings)
    ring = KeyRing(settings.keys_path)
    recorder = Recorder(ring.audit_signing())

    def record(session: Session, msg: Msg) -> None:
        recorder.record(session, msg.subject, msg.data, msg.metadata.sequence.stream)

    runtime.consume_raw("audit-all", record, recorder.committed)
    mailer = (
        HeadMailer(
            settings.mail_sender,
            settings.ombudsperson_email,
            settings.smtp_host,
            settings.smtp_port,
            settings.data_dir / "mail" / "ombudsperson",
        )
        if settings.ombudsperson_email
        else None
    )

    async def sign() -> TreeHead:
        """Sign, announce on the stream (outbox) and mail to the ombudsperson."""
        head = await signed_head(runtime.db.run, recorder)
        if mailer is not None:
            try:
                await asyncio.to_thread(mailer.send, head, recorder.key.public_key())
            except OSError as exc:  # the next head goes out all the same
                log.warning("audit.head_mail_failed", size=head.size, error=repr(exc))
        return head

    async def sign_if_grown() -> None:
        await runtime.db.run(recorder.catch_up)
        if recorder.needs_head(await runtime.db.run(lambda s: store.latest_head(s, LOG_ID))):
            await sign()

    @runtime.broker.subscriber(TREE_HEAD, queue="audit")
    async def on_tree_head_request(msg: NatsMessage) -> Any:
        return export.head_document(await sign())

    async def load() -> None:
        await runtime.db.read(recorder.load)

    async def entries(referral_id: str | None = None) -> list[bytes]:
        if referral_id is None:
            return list(await runtime.db.read(store.all_entries))
        return list(await runtime.db.read(lambda s: store.referral_entries(s, referral_id)))

    async def export_document(since: int | None = None) -> dict[str, Any]:
        head = await sign()  # covers everything up to now
        covered = await runtime.db.read(lambda s: store.all_entries(s, head.size))
        return export.build(
            covered, head, recorder.key.public_key(), rotation.rotations(ring), since
        )

    app = create_app(entries, ombudsperson_token(settings), export_document)
    runtime.serve_http(app, settings.audit_host, settings.audit_port)
    runtime.before_start(load)
    runtime.every(settings.audit_head_every, sign_if_grown)
    return runtime

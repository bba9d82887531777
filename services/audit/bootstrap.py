"""Composition root of the audit service: records every event, signs tree heads."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime
from typing import Any

import structlog
from faststream.nats import NatsMessage
from nats.aio.msg import Msg
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from schemas import subjects
from services.audit import export, store
from services.audit.access import ombudsperson_token
from services.audit.http import create_app
from services.audit.ledger import Ledger, TreeHead
from services.audit.metadata import metadata
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.runtime import ServiceRuntime
from wegweiser.settings import Settings

LOG_ID = "wegweiser-audit"
TREE_HEAD = subjects.AUDIT_TREE_HEAD
log = structlog.get_logger()


def build(settings: Settings) -> ServiceRuntime:
    """Wire the audit service: its own durable consumer on the whole stream."""
    runtime = ServiceRuntime("audit", settings, store.TABLES)
    key = KeyRing(settings.keys_path).audit_signing()
    ledger = Ledger()
    pending: list[tuple[int, bytes]] = []
    guard = threading.Lock()  # the ledger is updated from the consumer and from head signing

    def take(index: int, entry: bytes) -> None:
        """Add a committed entry to the in-memory tree once, in index order."""
        if index == ledger.size + 1:
            ledger.accept(entry)

    def catch_up(session: Session) -> None:
        """Take in what other instances appended: committed, so part of the log already.
        Two instances appending at once collide on the entry's index, and one retries."""
        rows = store.entries_after(session, ledger.size)
        with guard:
            for index, entry in rows:
                take(index, entry)

    def record(session: Session, msg: Msg) -> None:
        pending.clear()
        catch_up(session)
        try:
            event: Any = json.loads(msg.data)
        except ValueError:
            event = None
        entry_data = metadata(
            event if isinstance(event, dict) else {}, msg.subject, msg.metadata.sequence.stream
        )
        if not isinstance(event, dict):
            entry_data["unparseable_sha256"] = hashlib.sha256(msg.data).hexdigest()
        data = entry_data.get("data") or {}
        with guard:
            entry, index = ledger.next_entry(entry_data), ledger.size + 1
        session.add(
            store.EntryRow(
                index=index,
                event_id=str(entry_data.get("id") or f"seq-{msg.metadata.sequence.stream}"),
                referral_id=data.get("referral_id"),
                entry=entry,
            )
        )
        pending.append((index, entry))

    def committed() -> None:
        with guard:
            for index, entry in pending:
                take(index, entry)
        pending.clear()

    runtime.consume_raw("audit-all", record, committed)

    async def sign_head() -> TreeHead:
        await runtime.db.run(catch_up)
        head = TreeHead(
            LOG_ID, ledger.size, ledger.root(), datetime.now(UTC).isoformat(timespec="seconds")
        ).sign(key)
        try:
            await runtime.db.run(lambda s: store.save_head(s, head))
        except IntegrityError:
            log.info("audit.head_signed_by_another_instance", size=head.size)
        return head

    async def sign_if_grown() -> None:
        await runtime.db.run(catch_up)
        latest = await runtime.db.run(lambda s: store.latest_head(s, LOG_ID))
        if latest is None or latest.size < ledger.size:
            await sign_head()

    @runtime.broker.subscriber(TREE_HEAD, queue="audit")
    async def on_tree_head_request(msg: NatsMessage) -> Any:
        head = await sign_head()
        return {
            "log_id": head.log_id,
            "size": head.size,
            "root": head.root,
            "time": head.time,
            "signature": head.signature,
        }

    async def rebuild() -> None:
        for entry in await runtime.db.read(store.all_entries):
            ledger.accept(entry)
        log.info("audit.ledger_loaded", size=ledger.size, root=ledger.root())

    async def entries(referral_id: str | None = None) -> list[bytes]:
        if referral_id is None:
            return list(await runtime.db.read(store.all_entries))
        return list(await runtime.db.read(lambda s: store.referral_entries(s, referral_id)))

    async def export_document() -> dict[str, Any]:
        await sign_if_grown()
        head = await runtime.db.run(lambda s: store.latest_head(s, LOG_ID)) or await sign_head()
        covered = await runtime.db.read(lambda s: store.all_entries(s, head.size))
        return export.build(covered, head, key.public_key())

    app = create_app(entries, ombudsperson_token(settings), export_document)

    runtime.serve_http(app, settings.audit_host, settings.audit_port)
    runtime.before_start(rebuild)
    runtime.every(settings.audit_head_every, sign_if_grown)
    return runtime

"""Composition root of the audit service: records every event, signs tree heads."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from datetime import UTC, datetime
from typing import Any

import structlog
from faststream.nats import NatsMessage
from nats.aio.msg import Msg
from sqlmodel import Session

from services.audit import store
from services.audit.http import create_app
from services.audit.ledger import Ledger, TreeHead
from services.audit.metadata import metadata
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.runtime import ServiceRuntime
from wegweiser.settings import Settings

LOG_ID = "wegweiser-audit"
TREE_HEAD = "wwq.audit.tree-head"
log = structlog.get_logger()


def ombudsperson_token(settings: Settings) -> str:
    """The ombudsperson's bearer token: from settings, else a file made on first start."""
    if settings.ombudsperson_token:
        return settings.ombudsperson_token
    path = settings.keys_path / "audit" / "ombudsperson.token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def build(settings: Settings) -> ServiceRuntime:
    """Wire the audit service: its own durable consumer on the whole stream."""
    runtime = ServiceRuntime("audit", settings, [store.EntryRow, store.HeadRow])
    key = KeyRing(settings.keys_path).audit_signing()
    ledger = Ledger()
    pending: list[bytes] = []

    def record(session: Session, msg: Msg) -> None:
        pending.clear()
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
        entry = ledger.next_entry(entry_data)
        session.add(
            store.EntryRow(
                index=ledger.size + 1,
                event_id=str(entry_data.get("id") or f"seq-{msg.metadata.sequence.stream}"),
                referral_id=data.get("referral_id"),
                entry=entry,
            )
        )
        pending.append(entry)

    def committed() -> None:
        for entry in pending:
            ledger.accept(entry)
        pending.clear()

    runtime.consume_raw("audit-all", record, committed)

    async def sign_head() -> TreeHead:
        head = TreeHead(
            LOG_ID, ledger.size, ledger.root(), datetime.now(UTC).isoformat(timespec="seconds")
        ).sign(key)
        await runtime.db.run(lambda s: store.save_head(s, head))
        return head

    async def sign_if_grown() -> None:
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
        for entry in await runtime.db.run(store.all_entries):
            ledger.accept(entry)
        log.info("audit.ledger_loaded", size=ledger.size, root=ledger.root())

    async def entries(referral_id: str | None = None) -> list[bytes]:
        if referral_id is None:
            return list(await runtime.db.run(store.all_entries))
        return list(await runtime.db.run(lambda s: store.referral_entries(s, referral_id)))

    app = create_app(entries, ombudsperson_token(settings))

    runtime.serve_http(app, settings.audit_host, settings.audit_port)
    runtime.before_start(rebuild)
    runtime.every(settings.audit_head_every, sign_if_grown)
    return runtime

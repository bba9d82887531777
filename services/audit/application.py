"""The audit's use cases, one method each: take in the log at start, record what the stream
delivers, sign heads (when the log grew, on request, before every export), and read the log
for the ombudsperson. The bootstrap only wires this to the consumer, a NATS subject, a timer
and the HTTP app; the tests drive it with a real store and no broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from nats.aio.msg import Msg
from sqlmodel import Session

from schemas.vocabulary import DELETION_OVERDUE_KINDS
from services.audit import export, keys, queries, rotation, store
from services.audit.ledger import TreeHead
from services.audit.recorder import LOG_ID, Recorder, signed_head
from services.audit.verification import Rotation
from services.audit.witness_mail import HeadMailer
from services.report.figures import Period
from services.report.report import Report, make
from wegweiser.platform.db import Database
from wegweiser.platform.keys import KeyRing
from wegweiser.settings import Settings

log = structlog.get_logger()


@dataclass
class AuditLog:
    """The tamper-evident log of one county: its store, its recorder (the log in memory and
    the signing key), the ombudsperson's mail witness if any, and the key rotations to show."""

    db: Database
    recorder: Recorder
    mailer: HeadMailer | None = None
    rotations: Callable[[], list[Rotation]] = list

    async def load(self) -> None:
        """Take in the whole stored log (at start, before the first message)."""
        await self.db.read(self.recorder.load)

    def record(self, session: Session, msg: Msg) -> None:
        """One stream message as the next entry (in the consumer's transaction)."""
        self.recorder.record(session, msg.subject, msg.data, msg.metadata.sequence.stream)

    def committed(self) -> None:
        """The consumer's transaction committed: its entries join the log in memory."""
        self.recorder.committed()

    async def sign(self) -> TreeHead:
        """Sign a head, announce it on the stream (outbox) and mail it to the ombudsperson.
        A mail that fails is logged: the next head goes out all the same."""
        head = await signed_head(self.db.run, self.recorder)
        if self.mailer is not None:
            try:
                await asyncio.to_thread(self.mailer.send, head, self.recorder.key.public_key())
            except OSError as exc:
                log.warning("audit.head_mail_failed", size=head.size, error=repr(exc))
        return head

    async def sign_if_grown(self) -> TreeHead | None:
        """A new head when others' entries arrived (other instances', or by the stream) and
        the log grew by more than its own head announcements since the last head."""
        await self.db.run(self.recorder.catch_up)
        latest = await self.db.run(lambda s: store.latest_head(s, LOG_ID))
        return await self.sign() if self.recorder.needs_head(latest) else None

    async def head_document(self) -> dict[str, Any]:
        """A fresh head, as answered to `ww.audit.tree-head` requests."""
        return export.head_document(await self.sign())

    async def entries(self, referral_id: str | None = None) -> list[bytes]:
        """The log's entries, all of them or those about one referral."""
        if referral_id is None:
            return list(await self.db.read(store.all_entries))
        return list(await self.db.read(lambda s: store.referral_entries(s, referral_id)))

    # What the ombudsperson reads: each over the stored log, metadata only.

    async def referral_trail(self, referral_id: str) -> list[dict[str, Any]]:
        """One referral's events in log order with their consent (empty: not in the log)."""
        return queries.trail(await self.entries(referral_id))

    async def referrals(
        self,
        agency: str | None = None,
        state: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every referral as the log tells it, of one agency or state, offered in a time."""
        rows = queries.referrals(await self.entries()).values()
        return [
            r
            for r in rows
            if (agency is None or r["agency"] == agency)
            and (state is None or r["state"] == state)
            and (since is None or (r["offered_at"] or "") >= since)
            and (until is None or (r["offered_at"] or "") < until)
        ]

    async def answer_times(self) -> list[dict[str, Any]]:
        return queries.answer_times(await self.entries())

    async def overdue(self) -> dict[str, list[dict[str, Any]]]:
        """Offers not acknowledged in time, and deletions not confirmed in time."""
        rows = queries.referrals(await self.entries()).values()
        return {
            "acknowledgements": [r for r in rows if r["overdue"] and not r["received_at"]],
            "deletions": [r for r in rows if r["deletion"] in DELETION_OVERDUE_KINDS],
        }

    async def withdrawals(self) -> list[dict[str, Any]]:
        return queries.withdrawals(await self.entries())

    async def anomalies(self) -> dict[str, list[dict[str, Any]]]:
        return queries.anomalies(await self.entries())

    async def report(self, period: Period, county: str | None, k: int) -> Report:
        """The monitoring report for `period` and the one before, counts below `k`
        suppressed (services/report); made off the event loop, it takes CPU."""
        log = await self.entries()
        return await asyncio.to_thread(make, log, period, county, k)

    async def export(self, since: int | None = None) -> dict[str, Any]:
        """The log with a head signed just now (so it covers everything up to now), its
        inclusion and consistency proofs, the public key and its rotations."""
        head = await self.sign()
        covered = await self.db.read(lambda s: store.all_entries(s, head.size))
        return export.build(covered, head, self.recorder.key.public_key(), self.rotations(), since)

    async def export_stored(self, since: int | None = None) -> dict[str, Any]:
        """An export made outside the running service (`wegweiser audit export`): the stored
        log taken in first, then exported as `export` does."""
        await self.load()
        return await self.export(since)


def trail(db: Database, referral_id: str) -> list[dict[str, Any]]:
    """One referral's events in log order with their consent, read from the store alone (no
    signing key needed: `wegweiser audit trail`)."""
    return queries.trail(db.read_sync(lambda s: store.referral_entries(s, referral_id)))


def audit_log(settings: Settings, db: Database) -> AuditLog:
    """The county's log as the service and the CLI both use it: the signing key and its
    rotations from the key folder, the ombudsperson's mail witness when an address is set."""
    ring = KeyRing(settings.keys_path)
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
    return AuditLog(db, Recorder(keys.signing(ring)), mailer, lambda: rotation.rotations(ring))

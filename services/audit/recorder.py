"""The audit's use case: every message on the stream becomes the next entry of the log, by its
stream sequence, and signed tree heads cover the log.

Complete by construction: the audit's consumer reads every subject of the stream, so it must
see every sequence number. It records each message it is given (whatever the sender chose as
its id: two messages with one id are two entries), and when a sequence number is skipped it
writes a gap entry first, naming the sequences it never received. The only message it never
sees is a publish the stream itself dropped as a duplicate (same `Nats-Msg-Id` within the
window): the stream stored nothing, so there is nothing to record.

A head is signed when the log grew by something other than head announcements (each signed
head is published on `ww.audit.head-signed` and, like every message, recorded), and always
before an export, so that an export covers everything up to now.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from schemas import subjects
from schemas.envelope import new_event
from schemas.events import AuditHeadSigned
from services.audit import store
from services.audit.ledger import Ledger, TreeHead
from services.audit.metadata import metadata
from services.audit.queries import SEQUENCE_GAP
from services.audit.verification import fingerprint
from wegweiser.platform import outbox

LOG_ID = store.LOG_ID
HEAD_SIGNED_TYPE = AuditHeadSigned.event_type


class Recorder:
    """The log in memory beside its store; safe to use from the consumer and the head signer.
    Several instances share one store: each takes in what the others appended first."""

    def __init__(self, key: Ed25519PrivateKey, now: Callable[[], datetime] | None = None) -> None:
        self.key = key
        self.ledger = Ledger()
        self.now = now or (lambda: datetime.now(UTC))
        self.last_sequence = 0
        self.substantive = 0
        """Index of the last entry that is not a head announcement."""
        self._pending: list[tuple[int, bytes]] = []
        self._guard = threading.Lock()

    def load(self, session: Session) -> None:
        """Take in the whole stored log (at start)."""
        self.catch_up(session)

    def catch_up(self, session: Session) -> None:
        """Take in what other instances appended: committed, so part of the log already."""
        rows = store.entries_after(session, self.ledger.size)
        with self._guard:
            for index, entry in rows:
                self._take(index, entry)

    def record(self, session: Session, nats_subject: str, body: bytes, sequence: int) -> None:
        """Append the entry (or entries) for one stream message, in the caller's transaction.
        Two instances appending at once collide on the entry's index, and one retries."""
        self._pending.clear()
        self.catch_up(session)
        if self.last_sequence and sequence > self.last_sequence + 1:
            self._append(
                session,
                {
                    "type": SEQUENCE_GAP,
                    "missing_from": self.last_sequence + 1,
                    "missing_to": sequence - 1,
                    "stream_sequence": None,
                },
                None,
                None,
            )
        try:
            event: Any = json.loads(body)
        except ValueError:
            event = None
        data = metadata(event if isinstance(event, dict) else {}, nats_subject, sequence)
        if not isinstance(event, dict):
            data["unparseable_sha256"] = hashlib.sha256(body).hexdigest()
        referral = (data.get("data") or {}).get("referral_id")
        self._append(session, data, sequence, referral if isinstance(referral, str) else None)

    def _append(
        self, session: Session, data: dict[str, Any], sequence: int | None, referral: str | None
    ) -> None:
        with self._guard:
            index = self.ledger.size + 1 + len(self._pending)
            entry = self._next(data, index)
        session.add(
            store.EntryRow(
                index=index,
                event_id=f"seq-{sequence}-{index}" if sequence is not None else f"gap-{index}",
                referral_id=referral if referral and len(referral) <= 64 else None,
                entry=entry,
            )
        )
        session.flush()
        self._pending.append((index, entry))

    def _next(self, data: dict[str, Any], index: int) -> bytes:
        """The entry at `index`, which commits to the root before it (pending ones included)."""
        if not self._pending:
            return self.ledger.next_entry(data)
        scratch = Ledger()
        for entry in self.ledger.entries:
            scratch.accept(entry)
        for _, entry in self._pending:
            scratch.accept(entry)
        assert scratch.size + 1 == index
        return scratch.next_entry(data)

    def committed(self) -> None:
        """The transaction of the last `record` committed: its entries are part of the log."""
        with self._guard:
            for index, entry in self._pending:
                self._take(index, entry)
        self._pending.clear()

    def _take(self, index: int, entry: bytes) -> None:
        if index != self.ledger.size + 1:
            return
        self.ledger.accept(entry)
        parsed = json.loads(entry)
        if parsed.get("stream_sequence"):
            self.last_sequence = int(parsed["stream_sequence"])
        if parsed.get("type") != HEAD_SIGNED_TYPE:
            self.substantive = index

    def needs_head(self, latest: TreeHead | None) -> bool:
        """Whether the log grew, by more than head announcements, since the latest head."""
        return latest is None or latest.size < self.substantive

    def sign_head(self, session: Session) -> TreeHead:
        """Sign the log as it is now, store the head, and announce it through the outbox, all
        in the caller's transaction (another instance may have signed the same size)."""
        self.catch_up(session)
        with self._guard:
            size, root = self.ledger.size, self.ledger.root()
        head = TreeHead(LOG_ID, size, root, self.now().isoformat(timespec="seconds")).sign(self.key)
        stored = store.head_of_size(session, size)
        if stored is not None:
            return stored
        store.save_head(session, head)
        announcement = AuditHeadSigned(
            log_id=head.log_id,
            size=head.size,
            root=head.root,
            time=head.time,
            signature=head.signature,
            key_fingerprint=fingerprint(self.key.public_key()),
        )
        event = new_event(announcement, source="/wegweiser/audit", subject=LOG_ID)
        outbox.stage(session, subjects.AUDIT_HEAD_SIGNED, event)
        return head


async def signed_head(
    run: Callable[[Callable[[Session], TreeHead]], Awaitable[TreeHead]], recorder: Recorder
) -> TreeHead:
    """Sign a head through `run` (a unit of work), tolerating another instance's race."""
    try:
        return await run(recorder.sign_head)
    except IntegrityError:
        return await run(recorder.sign_head)

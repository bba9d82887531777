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
    Several instances share one store: each takes in what the others appended first.

    The consumer records a batch of messages in one transaction: each entry joins the log in
    memory at once, so that the next can commit to the root before it, but counts only once
    the transaction committed (`committed`). Readers (the head signer) see the committed log;
    entries of a transaction that failed are dropped before the next one records."""

    def __init__(self, key: Ed25519PrivateKey, now: Callable[[], datetime] | None = None) -> None:
        self.key = key
        self.ledger = Ledger()
        self.now = now or (lambda: datetime.now(UTC))
        self.last_sequence = 0
        self.substantive = 0
        """Index of the last entry that is not a head announcement."""
        self._committed = (0, 0, 0)
        """(size, last_sequence, substantive) of the committed log."""
        self._session: Session | None = None
        """The transaction whose entries are in memory but not yet committed."""
        self._guard = threading.Lock()

    @property
    def size(self) -> int:
        """Entries in the committed log."""
        return self._committed[0]

    def load(self, session: Session) -> None:
        """Take in the whole stored log (at start)."""
        self.catch_up(session)

    def catch_up(self, session: Session) -> None:
        """Take in what other instances appended, unless this one is recording."""
        with self._guard:
            if self._not_recording():
                self._catch_up(session)

    def _not_recording(self) -> bool:
        """No transaction of ours is open; one that ended without committing is forgotten."""
        if self._session is not None and not self._session.in_transaction():
            self._drop_uncommitted()
        return self._session is None

    def _catch_up(self, session: Session) -> None:
        """Take in what other instances appended: committed, so part of the log already."""
        for index, entry in store.entries_after(session, self.ledger.size):
            self._take(index, entry)
        self._committed = (self.ledger.size, self.last_sequence, self.substantive)

    def record(self, session: Session, nats_subject: str, body: bytes, sequence: int) -> None:
        """Append the entry (or entries) for one stream message, in the caller's transaction.
        Two instances appending at once collide on the entry's index, and one retries."""
        with self._guard:
            if self._session is not session:
                self._drop_uncommitted()
                self._session = session
                self._catch_up(session)
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
        index = self.ledger.size + 1
        entry = self.ledger.next_entry(data)
        session.add(
            store.EntryRow(
                index=index,
                event_id=f"seq-{sequence}-{index}" if sequence is not None else f"gap-{index}",
                referral_id=referral if referral and len(referral) <= 64 else None,
                entry=entry,
            )
        )
        session.flush()
        self._take(index, entry)

    def committed(self) -> None:
        """The transaction that recorded last committed: its entries are part of the log."""
        with self._guard:
            self._session = None
            self._committed = (self.ledger.size, self.last_sequence, self.substantive)

    def _drop_uncommitted(self) -> None:
        """Forget entries of a transaction that never committed (it failed)."""
        size, self.last_sequence, self.substantive = self._committed
        self.ledger.truncate(size)
        self._session = None

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
        return latest is None or latest.size < self._committed[2]

    def sign_head(self, session: Session) -> TreeHead:
        """Sign the log as it is now, store the head, and announce it through the outbox, all
        in the caller's transaction (another instance may have signed the same size). A head
        of this size that the key before a rotation signed is signed anew: an export always
        ends in a head of the key in effect, which verifiers reach by the handovers."""
        with self._guard:
            if self._not_recording():
                self._catch_up(session)
            size = self._committed[0]
            root = self.ledger.root(size)
        head = TreeHead(LOG_ID, size, root, self.now().isoformat(timespec="seconds")).sign(self.key)
        stored = store.head_of_size(session, size)
        if stored is not None and stored.verify(self.key.public_key()):
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

"""E-mail notices: no personal data, only that there is news and a one-time link to read it."""

from __future__ import annotations

import asyncio
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import structlog
from sqlmodel import Session, col, select

from services.gateway.store import MailRow
from wegweiser.platform.mail import deliver

log = structlog.get_logger()

NEWS = {
    "offered": ("Neue Vermittlung", "New referral"),
    "reminded": (
        "Erinnerung: Vermittlung wartet auf Antwort",
        "Reminder: a referral awaits your answer",
    ),
    "escalated": ("Vermittlung überfällig", "Referral overdue"),
    "cancelled": ("Vermittlung zurückgezogen", "Referral cancelled"),
    "expired": ("Vermittlung abgelaufen", "Referral expired"),
    "deletion-requested": ("Bitte Daten löschen", "Please delete the data"),
}


def notice(
    agency_name: str, referral_id: str, kind: str, link: str, expires: datetime
) -> tuple[str, str]:
    """Subject and body of a notice. They name the referral by its id only: who the person
    is and what they need is shown behind the link, to this agency alone."""
    de, en = NEWS.get(kind, ("Neuigkeit zu einer Vermittlung", "News about a referral"))
    until = format_datetime(expires)
    body = (
        f"Guten Tag,\n\nfür {agency_name} gibt es über Wegweiser: {de} ({referral_id}).\n"
        f"Einmal-Link (gültig bis {until}):\n{link}\n\n"
        "Der Link funktioniert nur einmal. Diese E-Mail enthält keine personenbezogenen Daten.\n\n"
        f"---\n\nHello,\n\nWegweiser has news for {agency_name}: {en} ({referral_id}).\n"
        f"One-time link (valid until {until}):\n{link}\n\n"
        "The link works once. This e-mail holds no personal data.\n"
    )
    return f"Wegweiser: {de} / {en} ({referral_id})", body


def message(row: MailRow, sender: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, row.recipient, row.subject
    mail["Message-ID"] = row.message_id
    mail.set_content(row.body)
    return mail


class Mailer:
    """Sends staged notices by SMTP, or writes them as .eml files when no SMTP host is set."""

    def __init__(self, sender: str, host: str | None, port: int, folder: Path) -> None:
        self.sender, self.host, self.port, self.folder = sender, host, port, folder

    def deliver(self, mail: EmailMessage) -> None:
        deliver(mail, self.host, self.port, self.folder)

    async def send_pending(self, run, now: datetime) -> int:  # type: ignore[no-untyped-def]
        """Send every unsent notice; each is marked sent after the server took it."""
        rows: list[MailRow] = await run(
            lambda s: list(s.exec(select(MailRow).where(col(MailRow.sent_at).is_(None))))
        )
        for row in rows:
            await asyncio.to_thread(self.deliver, message(row, self.sender))
            await run(lambda s, mid=row.message_id: _mark_sent(s, mid, now))
            log.info("mail.sent", to=row.recipient, message_id=row.message_id)
        return len(rows)


def _mark_sent(session: Session, message_id: str, now: datetime) -> None:
    row = session.get(MailRow, message_id)
    if row is not None:
        row.sent_at = now
        session.add(row)

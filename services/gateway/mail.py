"""E-mail notices: no personal data, only that there is news and a one-time link to read it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import structlog
from sqlmodel import Session, col, select

from services.gateway import links
from services.gateway.store import MailRow
from wegweiser.platform.mail import deliver
from wegweiser.settings import Settings

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


def message(row: MailRow, sender: str, link: str, expires: datetime) -> EmailMessage:
    """The notice a row stands for, with its link: made in memory, on its way out."""
    title, text = notice(row.agency_name, row.referral_id, row.kind, link, expires)
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, row.recipient, title
    mail["Message-ID"] = row.message_id
    mail.set_content(text)
    return mail


class Mailer:
    """Sends staged notices by SMTP, or writes them as .eml files when no SMTP host is set.

    A notice's one-time link is minted as it leaves: its token's hash is stored, the token
    itself is only in the message handed on. A notice sent twice (the server took it, the
    gateway stopped before marking it sent) carries two links, each working once."""

    def __init__(
        self,
        sender: str,
        host: str | None,
        port: int,
        folder: Path,
        portal_url: str,
        link_valid_for: timedelta,
    ) -> None:
        self.sender, self.host, self.port, self.folder = sender, host, port, folder
        self.portal_url, self.link_valid_for = portal_url, link_valid_for
        self._one_round = asyncio.Lock()  # two rounds at once would send each notice twice

    @classmethod
    def of(cls, settings: Settings) -> Mailer:
        """The county's mail sender, its notices' links to the gateway's portal."""
        return cls(
            settings.mail_sender,
            settings.smtp_host,
            settings.smtp_port,
            settings.data_dir / "mail",
            settings.gateway_url,
            settings.portal_link_valid_for,
        )

    def deliver(self, mail: EmailMessage) -> None:
        deliver(mail, self.host, self.port, self.folder)

    async def send_pending(self, run, now: datetime) -> int:  # type: ignore[no-untyped-def]
        """Send every unsent notice; each is marked sent after the server took it."""
        async with self._one_round:
            rows: list[MailRow] = await run(
                lambda s: list(s.exec(select(MailRow).where(col(MailRow.sent_at).is_(None))))
            )
            sent = 0
            for row in rows:
                token = await run(lambda s, r=row: self._mint(s, r, now))
                if token is None:
                    log.info("mail.dropped", message_id=row.message_id, why="case deleted")
                    continue
                link = f"{self.portal_url}/portal/{token}"
                mail = message(row, self.sender, link, now + self.link_valid_for)
                await asyncio.to_thread(self.deliver, mail)
                await run(lambda s, mid=row.message_id: _mark_sent(s, mid, now))
                log.info("mail.sent", to=row.recipient, message_id=row.message_id)
                sent += 1
            return sent

    def _mint(self, session: Session, row: MailRow, now: datetime) -> str | None:
        """A fresh link token for the row's referral; None (and the row gone) if its case
        was deleted meanwhile: there is nothing left to show behind a link."""
        if links.is_deleted(session, row.referral_id):
            found = session.get(MailRow, row.message_id)
            if found is not None:
                session.delete(found)
            return None
        return links.issue(session, row.agency_id, row.referral_id, now, self.link_valid_for)


def _mark_sent(session: Session, message_id: str, now: datetime) -> None:
    row = session.get(MailRow, message_id)
    if row is not None:
        row.sent_at = now
        session.add(row)

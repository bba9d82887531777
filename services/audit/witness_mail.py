"""Each signed tree head, mailed to the ombudsperson as it is made: a copy outside the
operator's database, so that a log rolled back or rewritten later contradicts a head the
ombudsperson already holds (`wegweiser audit verify --state` takes it as the seen head)."""

from __future__ import annotations

import json
from dataclasses import asdict
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.ledger import TreeHead
from services.audit.verification import SeenHead, fingerprint
from wegweiser.platform.mail import deliver


def head_mail(head: TreeHead, key: Ed25519PublicKey, sender: str, to: str) -> EmailMessage:
    """The head as a short text and as a seen-head file the ombudsperson can keep."""
    seen = SeenHead.of(head, key)
    mail = EmailMessage()
    mail["From"], mail["To"] = sender, to
    mail["Subject"] = f"Wegweiser audit: tree head {head.size} ({head.root[:12]}…)"
    mail["Message-ID"] = make_msgid(idstring=f"audit-head-{head.size}")
    mail.set_content(
        f"Das Prüfprotokoll hat {head.size} Einträge, Wurzel {head.root}, signiert "
        f"{head.time} mit dem Schlüssel {fingerprint(key)}.\n"
        f"The audit log holds {head.size} entries, root {head.root}, signed {head.time} with "
        f"the key {fingerprint(key)}.\n\nKeep the attachment: `wegweiser audit verify EXPORT "
        "--state audit-head.json` then requires every later log to extend this head.\n"
    )
    mail.add_attachment(
        json.dumps(asdict(seen), indent=1).encode(),
        maintype="application",
        subtype="json",
        filename="audit-head.json",
    )
    return mail


class HeadMailer:
    """Mails each new head once (by SMTP, else an .eml file in the ombudsperson's folder)."""

    def __init__(self, sender: str, to: str, host: str | None, port: int, folder: Path) -> None:
        self.sender, self.to, self.host, self.port, self.folder = sender, to, host, port, folder
        self.sent_size = -1

    def send(self, head: TreeHead, key: Ed25519PublicKey) -> bool:
        if head.size <= self.sent_size:
            return False
        deliver(head_mail(head, key, self.sender, self.to), self.host, self.port, self.folder)
        self.sent_size = head.size
        return True

"""Handing an e-mail on: by SMTP, or as an .eml file when no SMTP host is configured."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

from wegweiser.platform.files import write_private


def deliver(mail: EmailMessage, host: str | None, port: int, folder: Path) -> None:
    """Send `mail` through `host`, or write it to `folder` (readable by the owner only)."""
    if host is None:
        name = str(mail["Message-ID"]).strip("<>").replace("/", "_")
        write_private(folder / f"{name}.eml", bytes(mail))
        return
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.send_message(mail)

"""Handing an e-mail on: by SMTP, or as an .eml file when no SMTP host is configured."""

from __future__ import annotations

import os
import smtplib
from email.message import EmailMessage
from pathlib import Path


def deliver(mail: EmailMessage, host: str | None, port: int, folder: Path) -> None:
    """Send `mail` through `host`, or write it to `folder` (readable by the owner only)."""
    if host is None:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = str(mail["Message-ID"]).strip("<>").replace("/", "_")
        descriptor = os.open(folder / f"{name}.eml", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(bytes(mail))
        return
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.send_message(mail)

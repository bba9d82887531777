"""Who may read the audit API: the ombudsperson's bearer token (light to import: the web app
reads it too)."""

from __future__ import annotations

import secrets

from wegweiser.platform.keys import write_once
from wegweiser.settings import Settings


def ombudsperson_token(settings: Settings) -> str:
    """The ombudsperson's bearer token: from settings, else a file made on first start."""
    if settings.ombudsperson_token:
        return settings.ombudsperson_token
    path = settings.keys_path / "audit" / "ombudsperson.token"
    return write_once(path, secrets.token_urlsafe(32).encode()).decode().strip()

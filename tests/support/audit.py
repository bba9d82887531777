"""The audit's HTTP app in this process over an empty log on a real SQLite store, wired as
services/audit/bootstrap.py wires it (with a signing key of its own)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from services.audit.application import AuditLog
from services.audit.http import create_app
from services.audit.recorder import Recorder
from tests.support.databases import copied


def empty_audit_app(folder: Path, token: str) -> FastAPI:
    """The ombudsperson's API over an empty log kept in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    audit = AuditLog(copied("audit", folder / "audit.db"), Recorder(Ed25519PrivateKey.generate()))
    return create_app(audit, token)

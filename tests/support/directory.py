"""The directory's HTTP app in this process, on a real SQLite database with the sample
directory imported: its units of work, the county's administration and the admin tokens are
the ones the service wires (see services/directory/bootstrap.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from services.directory import admin_api, importer, store
from services.directory.access import AdminTokens
from services.directory.admin import Administration
from services.directory.hsds.records import Assembler
from services.directory.http import create_app
from services.directory.sample import SAMPLE_PATH
from services.gateway.webhook import SecretFolder
from tests.support.databases import service_database
from wegweiser.platform.db import Database

WEBHOOK_AGENCY = "lup-iq-anerkennung"
"""A sample agency this directory reaches by webhook (the sample has none)."""


@dataclass
class Directory:
    app: FastAPI
    db: Database
    tokens: AdminTokens
    secrets: SecretFolder
    token: str
    """An admin token the directory admits."""


def directory(folder: Path) -> Directory:
    folder.mkdir(parents=True, exist_ok=True)
    db = service_database("directory", f"sqlite:///{folder / 'directory.db'}")
    db.migrate()
    document = json.loads(SAMPLE_PATH.read_text(encoding="utf-8"))
    for service in document["services"]:
        if service["wegweiser"]["agency_id"] == WEBHOOK_AGENCY:
            service["wegweiser"]["referral"] = {
                "adapter": "webhook",
                "address": "https://example.org/hook",
            }
    sample = folder / "directory.json"
    sample.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    assert db.run_sync(lambda s: importer.import_file(s, sample)).ok
    tokens = AdminTokens(folder / "keys" / "directory" / "admin-tokens")
    secrets = SecretFolder(folder / "keys" / "webhooks")
    administration = Administration(db, secrets)

    async def hsds() -> Assembler:
        return Assembler(await db.read(store.load_records))

    app = create_app(hsds, db.run, db.read, admin=admin_api.router(administration, tokens))
    return Directory(app, db, tokens, secrets, tokens.issue("test"))

"""The directory's HTTP app in this process, on a real SQLite database with the sample
directory imported: its units of work, the county's administration and the admin tokens are
the ones the service wires (see services/directory/bootstrap.py)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlmodel import Session

from services.directory import admin_api, importer
from services.directory.access import AdminTokens
from services.directory.admin import Administration
from services.directory.application import AgencyDirectory
from services.directory.http import create_app
from services.directory.sample import SAMPLE_PATH
from tests.support.databases import copied
from wegweiser.platform.db import Database
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.secrets import SecretFolder

CANARY_STREET = "Geheimweg 17"
CANARY_POSTCODE = "19999"
"""An address no output may ever show: given to a confidential location (a shelter)."""

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
    db = copied("directory", folder / "directory.db", _import_the_sample, kind="sample")
    tokens = AdminTokens(folder / "keys" / "directory" / "admin-tokens")
    secrets = SecretFolder(folder / "keys" / "webhooks")
    administration = Administration(db, secrets)

    registered = AgencyDirectory(db, KeyRing(folder / "keys"))
    admin = admin_api.router(administration, tokens)
    app = create_app(registered.hsds, registered, admin)
    return Directory(app, db, tokens, secrets, tokens.issue("test"))


def _import_the_sample(session: Session) -> None:
    """The sample directory, with WEBHOOK_AGENCY reached by webhook."""
    document = json.loads(SAMPLE_PATH.read_text(encoding="utf-8"))
    for service in document["services"]:
        if service["wegweiser"]["agency_id"] == WEBHOOK_AGENCY:
            service["wegweiser"]["referral"] = {
                "adapter": "webhook",
                "address": "https://example.org/hook",
            }
    with tempfile.TemporaryDirectory() as folder:
        sample = Path(folder) / "directory.json"
        sample.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        assert importer.import_file(session, sample).ok


def confidential_sample() -> dict[str, Any]:
    """The sample, with a real-looking address and coordinates given for a shelter."""
    data: dict[str, Any] = json.loads(SAMPLE_PATH.read_text(encoding="utf-8"))
    shelter = next(s for s in data["services"] if s["wegweiser"]["agency_id"] == "lup-frauenhaus")
    location = shelter["service_at_locations"][0]["location"]
    assert location["wegweiser"] == {"confidential": True}
    location.update(latitude=53.3301, longitude=11.4977, transportation=f"Bus bis {CANARY_STREET}")
    location["addresses"] = [
        {
            "id": "5b0bb0c6-0d0a-4c52-8d7c-3c1b3a1f7e11",
            "address_1": CANARY_STREET,
            "city": "Ludwigslust",
            "state_province": "Mecklenburg-Vorpommern",
            "postal_code": CANARY_POSTCODE,
            "country": "DE",
            "address_type": "physical",
        }
    ]
    return data

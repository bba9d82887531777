"""Intake's HTTP app in this process, on a real SQLite store, asking the real directory (its
query handlers on its own store, in this process too: the service asks them over NATS)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, func, select

from schemas import subjects
from schemas.envelope import Envelope
from schemas.events import ReferralRequested
from schemas.queries import (
    AgencyCard,
    CheckPlace,
    LookupAgency,
    PlaceCheck,
    ResolveAgencies,
    Suggestions,
)
from services.directory import handlers, identities
from services.directory.sample import sample_agency_ids
from services.intake import access, projection
from services.intake.application import Intake
from services.intake.credential import Credential
from services.intake.http import create_app
from services.intake.office import Office
from services.intake.vault import Vault
from tests.support.databases import copied
from tests.support.directory import directory
from wegweiser.platform import keys, sealing
from wegweiser.platform.consumer import Delivery
from wegweiser.platform.db import Database
from wegweiser.platform.outbox import OutboxRow

OFFICES = {
    "lup-integration-office": "Integrationsbeauftragte Ludwigslust-Parchim",
    "oa-integration-office": "Büro für Chancengleichheit Oberallgäu",
}
HOST = "intake.test"


class LocalDirectory:
    """The directory's own answers to intake's questions, from its store."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.snapshot = handlers.Snapshot()

    async def resolve(self, query: ResolveAgencies) -> Suggestions:
        return await self.db.read(lambda s: handlers.suggest(s, query, self.snapshot))

    async def lookup(self, agency_id: str) -> AgencyCard | None:
        found = await self.db.read(lambda s: handlers.lookup(s, LookupAgency(agency_id=agency_id)))
        return found.agency

    async def place(self, query: CheckPlace) -> PlaceCheck:
        return handlers.check_place(self.snapshot.gazetteer, query)


class IntakeApp:
    """Intake as its composition root wires it, for the offices in OFFICES; every sample
    agency but those `without_keys` has a sealing key on file (as `up` gives them)."""

    def __init__(
        self,
        folder: Path,
        origins: frozenset[str] = frozenset(),
        without_keys: frozenset[str] = frozenset(),
    ) -> None:
        self.directory = directory(folder / "directory")
        self.agency_keys = {
            a: keys.generate_encryption_key() for a in sample_agency_ids() if a not in without_keys
        }
        """Each agency's private sealing key, to open what intake sealed to it."""
        on_file = {a: keys.public_dict(key) for a, key in self.agency_keys.items()}
        self.directory.db.run_sync(lambda s: identities.publish_on_file(s, on_file))
        self.db = copied("intake", folder / "intake.db")
        vault = Vault(os.urandom(32))
        self.offices = {
            office_id: Office(
                office_id,
                vault,
                keys.generate_signing_key(),
                keys.generate_encryption_key(),
                controller=name,
            )
            for office_id, name in OFFICES.items()
        }
        self.tokens = access.Tokens(keys.generate_signing_key())
        self.intake = Intake(
            self.db,
            LocalDirectory(self.directory.db),
            self.offices,
            self.tokens,
            access.Revocations(lambda: self.db.read(access.revoked_ids), every=0),
        )
        self.app = create_app([HOST], origins)
        self.app.state.intake = self.intake

    def client(self, office: str | None = None, **kw: object) -> httpx.AsyncClient:
        """A caller of the API; with `office`, as a registered client of that office."""
        headers = {}
        if office is not None:
            credential = self.add_client(office)
            token, _ = self.tokens.issue(credential.client_id, office)
            headers["Authorization"] = f"Bearer {token}"
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=f"http://{HOST}",
            headers=headers,
            **kw,  # type: ignore[arg-type]
        )

    def add_client(self, *offices: str) -> Credential:
        return self.db.run_sync(
            lambda s: access.add_client(s, "test client", list(offices), set(OFFICES))
        )

    def count(self, table: type) -> int:
        return len(self.db.read_sync(lambda s: list(s.exec(select(table)))))

    def rows(self) -> dict[str, int]:
        """How many rows each of intake's tables holds."""

        def count(session: Session) -> dict[str, int]:
            return {
                name: session.exec(select(func.count()).select_from(table)).one()
                for name, table in self.db.metadata.tables.items()
            }

        return self.db.read_sync(count)

    def opened_cases(self, agency_id: str) -> list[dict[str, Any]]:
        """Every case intake sealed to the agency (in the outbox), opened with its key."""
        rows = self.db.read_sync(lambda s: list(s.exec(select(OutboxRow))))
        signers = {o: office.signer for o, office in self.offices.items()}
        cases = []
        for row in rows:
            if row.subject != subjects.REFERRAL_REQUESTED:
                continue
            sealed = ReferralRequested.model_validate(json.loads(row.body)["data"]).case
            if sealed.recipient_kid == agency_id:
                key = self.agency_keys[agency_id]
                cases.append(sealing.unseal(sealed.jwe, key=key, kid=agency_id, signers=signers))
        return cases

    def staged_events(self, subject: str) -> list[dict[str, Any]]:
        """The events on `subject` waiting in the outbox, as JSON."""
        rows = self.db.read_sync(lambda s: list(s.exec(select(OutboxRow))))
        return [json.loads(row.body) for row in rows if row.subject == subject]

    def project(self, subject: str, event: Envelope[Any]) -> None:
        """Hand intake one event of the referral service, as its consumer would."""
        self.db.run_sync(lambda s: projection.project_change(s, Delivery(event, subject)))

    def staged(self, subject: str) -> int:
        """How many events on `subject` wait in the outbox (nothing publishes them here)."""
        rows = self.db.read_sync(lambda s: list(s.exec(select(OutboxRow))))
        return sum(1 for row in rows if row.subject == subject)

    def dispose(self) -> None:
        self.db.dispose()
        self.directory.db.dispose()


OFFICE = "lup-integration-office"
"""The sample office the HTTP and web tests act as."""


@pytest.fixture
def intake(tmp_path: Path) -> Iterator[IntakeApp]:
    """Intake with its files under `tmp_path/intake` (a fixture: import it where it is used)."""
    folder = tmp_path / "intake"
    folder.mkdir()
    made = IntakeApp(folder)
    yield made
    made.dispose()


@pytest.fixture
async def office(intake: IntakeApp) -> AsyncIterator[httpx.AsyncClient]:
    """A client of intake's API for OFFICE."""
    async with intake.client(OFFICE) as client:
        yield client

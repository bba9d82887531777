"""Every Wegweiser service, in the order `up` starts them: the one list that the settings, the
supervisor, the schema migrations, provisioning and the contract generator read. The platform
does not read it: each caller hands it the services (or the one service) it needs.

Names, module paths and folders only: nothing here imports a service until asked for its
tables or its database.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlmodel import SQLModel

    from wegweiser.platform.db import Database
    from wegweiser.platform.migrations import Revisions
    from wegweiser.settings import Settings

SERVICES_DIR = Path(__file__).resolve().parents[1] / "services"


@dataclass(frozen=True)
class Service:
    name: str
    store: str
    """The module that declares the service's tables (`TABLES`)."""
    on_broker: bool = True
    """It talks to NATS with a user of its own, through an outbox and an inbox (the web app
    does not: it calls the other services' HTTP APIs only)."""
    acts_for_agencies: bool = False
    """It takes part for the agencies that do not speak NATS themselves (the gateway): it
    reads their consumers and publishes their answers."""

    @property
    def bootstrap(self) -> str:
        """The module whose `build(settings)` wires the service."""
        return f"services.{self.name}.bootstrap"

    @property
    def revisions(self) -> Revisions:
        """Its schema history: `services/<name>/migrations/`."""
        from wegweiser.platform.migrations import Revisions

        return Revisions(self.name, SERVICES_DIR / self.name / "migrations")

    def tables(self) -> list[type[SQLModel]]:
        """Every table of the service's database."""
        own: list[type[SQLModel]] = import_module(self.store).TABLES
        if not self.on_broker:
            return list(own)
        from wegweiser.platform.inbox import InboxRow
        from wegweiser.platform.outbox import OutboxRow

        return [OutboxRow, InboxRow, *own]

    def database(self, settings: Settings) -> Database:
        """The service's database as its settings name it, not yet migrated (without building
        the service, which would make keys)."""
        from wegweiser.platform.db import Database

        return Database(settings.db_url(self.name), self.tables(), self.revisions)


SERVICES = (
    Service("directory", "services.directory.store"),
    Service("referral", "services.referral.store"),
    Service("intake", "services.intake.store"),
    Service("audit", "services.audit.store"),
    Service("gateway", "services.gateway.store", acts_for_agencies=True),
    Service("web", "services.web.accounts", on_broker=False),
)
NAMES = tuple(s.name for s in SERVICES)
ON_THE_BROKER = tuple(s.name for s in SERVICES if s.on_broker)
_BY_NAME = {s.name: s for s in SERVICES}


def service(name: str) -> Service:
    """The service called `name`; KeyError for none."""
    return _BY_NAME[name]

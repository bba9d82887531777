"""A service's database at a URL of the test's choosing, as the registry describes it."""

from __future__ import annotations

from wegweiser import registry
from wegweiser.platform.db import Database


def service_database(name: str, url: str) -> Database:
    """Every table of service `name`, under its schema revisions; not yet migrated."""
    service = registry.service(name)
    return Database(url, service.tables(), service.revisions)

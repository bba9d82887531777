"""One PostgreSQL database per service on a given server, created when missing."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from wegweiser.platform.db import normalise_url


def service_databases(
    server_url: str, services: Iterable[str], prefix: str = "wegweiser_"
) -> dict[str, str]:
    """`service -> database URL` on the server at `server_url` (any database on it), each
    database created if it does not exist yet."""
    url = make_url(normalise_url(server_url))
    admin = url.set(drivername="postgresql", database=url.database or "postgres")
    out = {}
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        for service in services:
            name = f"{prefix}{service}"
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if found.fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            out[service] = url.set(database=name).render_as_string(hide_password=False)
    return out


def drop_service_databases(server_url: str, services: Iterable[str], prefix: str) -> None:
    """Drop what `service_databases` made with `prefix` (tests and benchmarks)."""
    url = make_url(normalise_url(server_url))
    admin = url.set(drivername="postgresql", database=url.database or "postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        for service in services:
            name = sql.Identifier(f"{prefix}{service}")
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))

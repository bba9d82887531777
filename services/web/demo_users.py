"""The embedded setup's web app users: made once by `wegweiser up`, before the web app runs.

Kept apart from the web app's bootstrap so that the supervisor, which makes them, does not
load the web app (FastAPI, its routes and templates) into its own long-lived process."""

from __future__ import annotations

import os
import secrets
from functools import partial
from pathlib import Path

from services.web import accounts
from wegweiser import registry
from wegweiser.settings import Settings

DEMO_USERS = (
    ("beratung", accounts.Role.COUNSELLOR, "office_id"),
    ("beratung-oa", accounts.Role.COUNSELLOR, "oa-integration-office"),
    ("ombudsperson", accounts.Role.OMBUDSPERSON, None),
    ("verwaltung", accounts.Role.ADMINISTRATOR, None),
)


def ensure_demo_users(settings: Settings) -> Path | None:
    """In development, when the web app has no users yet: a counsellor for each sample office,
    the ombudsperson and an administrator, with random passwords written to
    keys_dir/web/demo-users.txt."""
    path = settings.keys_path / "web" / "demo-users.txt"
    db = registry.service("web").database(settings)
    try:
        db.migrate()
        if settings.environment != "development" or db.run_sync(accounts.users):
            return path if path.exists() else None
        offices = settings.all_offices
        lines = []
        for username, role, office in DEMO_USERS:
            office_id = settings.office_id if office == "office_id" else office
            if office_id is not None and office_id not in offices:
                continue
            password = secrets.token_urlsafe(12)
            db.run_sync(
                partial(
                    accounts.add_user,
                    username=username,
                    password=password,
                    role=role,
                    office_id=office_id,
                )
            )
            lines.append(f"{username}\t{password}\t{role.value}\t{office_id or '-'}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("# user\tpassword\trole\toffice\n" + "\n".join(lines) + "\n")
        return path
    finally:
        db.dispose()

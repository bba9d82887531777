"""Composition root of the web app: its own database (users, sessions), the clients of intake,
the audit API and the directory's admin routes, the application over them, its HTTP app and
its process. It does not touch NATS: it sees cases only through intake's API and the log only
through the ombudsperson's audit API."""

from __future__ import annotations

from functools import partial

from services.audit import keys
from services.audit.access import ombudsperson_token
from services.web.accounts import SessionPolicy
from services.web.application import WebApplication
from services.web.clients import AuditClient, DirectoryAdminClient, IntakeClient
from services.web.http import Web, create_app
from services.web.integrity import SeenHeads, pinned_key
from services.web.process import WebProcess
from services.web.signin import SignIn
from wegweiser import registry
from wegweiser.platform.db import Database
from wegweiser.platform.keys import KeyRing
from wegweiser.settings import Settings

FORGET_SESSIONS_EVERY = 600.0
"""Seconds between two clean-ups of the sessions whose browsers never came back to end them."""


def database(settings: Settings) -> Database:
    return registry.service("web").database(settings)


def build(settings: Settings) -> WebProcess:
    """Wire the web app; its database is migrated when it starts serving."""
    db = database(settings)
    intake = IntakeClient(settings.intake_url, settings.web_intake_credential_path)
    audit_url = f"http://{settings.audit_host}:{settings.audit_port}"
    audit = AuditClient(audit_url, ombudsperson_token(settings))
    directory = DirectoryAdminClient(settings.directory_url, settings.web_directory_token_path)
    application = WebApplication(
        run=db.run,
        intake=intake,
        audit=audit,
        audit_key=partial(pinned_key, keys.public_path(KeyRing(settings.keys_path))),
        signing_in=SignIn(read=db.read, run=db.run),
        directory=directory,
        seen_heads=SeenHeads(settings.data_dir / "web" / "audit-head-seen.json"),
        policy=SessionPolicy(settings.web_session_idle, settings.web_session_lifetime),
    )
    secure = settings.environment == "production"
    web = Web(application, settings.all_offices, secure, settings.web_public_url)
    process = WebProcess(settings, db, create_app(web))
    for client in (intake, audit, directory):
        process.on_close(client.close)
    process.every(FORGET_SESSIONS_EVERY, application.forget_ended_sessions)
    return process

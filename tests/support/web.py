"""The web app in this process on a real SQLite database, with users of each role signed in
by a session of their own (signing in itself is tests/unit/web/test_sign_in.py's)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlmodel import Session

from services.web import accounts
from services.web.accounts import Role, SessionPolicy
from services.web.application import WebApplication
from services.web.clients import DirectoryAdminClient, IntakeClient
from services.web.http import Web, create_app
from services.web.signin import SignIn
from tests.support.databases import copied
from tests.support.intake import HOST as INTAKE_HOST
from tests.support.intake import IntakeApp

OFFICES = {"lup-integration-office": "Integrationsbeauftragte Ludwigslust-Parchim"}


@dataclass
class Browser:
    """One signed-in user's requests to the web app, with the session's CSRF token."""

    http: httpx.AsyncClient
    csrf: str

    async def post(self, path: str, **form: str) -> httpx.Response:
        return await self.http.post(path, data={"csrf": self.csrf, **form})


class WebApp:
    """The web app as its composition root wires it; `directory` is the directory's app, in
    this process too, reached through the admin token in `token_file`."""

    def __init__(
        self,
        folder: Path,
        directory: FastAPI | None = None,
        token_file: Path | None = None,
        intake: IntakeApp | None = None,
    ) -> None:
        self.db = copied("web", folder / "web.db")
        admin = None
        if directory is not None and token_file is not None:
            admin = DirectoryAdminClient(
                "http://directory.internal",
                token_file,
                public_url="https://directory.example",
                transport=httpx.ASGITransport(app=directory),
            )
        intake_client = None
        if intake is not None:  # intake's app in this process, as the web app's client
            intake_client = IntakeClient(
                f"http://{INTAKE_HOST}",
                intake.add_client(*OFFICES),
                transport=httpx.ASGITransport(app=intake.app),
            )
        self.application = WebApplication(
            run=self.db.run,
            intake=intake_client,  # type: ignore[arg-type]  # None: pages that ask no intake
            audit=None,  # type: ignore[arg-type]
            audit_key=lambda: None,  # type: ignore[arg-type,return-value]
            signing_in=SignIn(self.db.read, self.db.run),
            directory=admin,
        )
        self.app = create_app(Web(self.application, OFFICES))

    @property
    def web(self) -> WebApplication:
        """The application behind the pages (a test may swap one of its clients)."""
        return self.application

    def anonymous(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver"
        )

    def signed_in(self, username: str, role: Role, office: str | None = None) -> Browser:
        """A browser with a live session of a new user of `role`."""
        now = datetime.now(UTC)

        def open_one(session: Session) -> tuple[str, str]:
            user = accounts.add_user(session, username, "a long enough password", role, office)
            token = accounts.open_session(session, user, now)
            signed = accounts.current(session, token, now, SessionPolicy())
            assert signed is not None
            return token, signed.csrf

        token, csrf = self.db.run_sync(open_one)
        http = self.anonymous()
        http.cookies.set("wegweiser_session", token)
        return Browser(http, csrf)


def hidden_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found[1]


def sign_in(base_url: str, username: str, password: str) -> tuple[httpx.Client, str]:
    """Sign in to a running web app as a browser would (the sign-in form and its CSRF cookie);
    the client with its session, and the session's CSRF token for forms."""
    http = httpx.Client(base_url=base_url, timeout=30)
    form = {"username": username, "password": password, "next": "/"}
    opened = http.post("/login", data={**form, "csrf": hidden_csrf(http.get("/login").text)})
    assert opened.status_code == 303, opened.text
    return http, hidden_csrf(http.get(opened.headers["location"]).text)

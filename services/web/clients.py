"""The web app's only ways to data: intake's API (as one office), the audit API (metadata) and
the directory's admin routes (the county's decisions about agencies).

The web app stores no case data itself; every page is a view of one of these services.
"""

from __future__ import annotations

import ssl
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from services.directory.admin_models import AgencyStanding, Decided, Invited, Revoked
from services.intake.credential import Credential, OfficeAuth


class Refused(Exception):
    """The service refused the call; `status` and `detail` say why, for the page to show."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Unavailable(Exception):
    """The service could not be reached."""


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("errors"), list):  # a problem's fields
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', [])[1:])}: {e.get('msg')}"
            for e in body["errors"]
        )
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI's validation errors (the directory's admin API)
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', [])[1:])}: {e.get('msg')}" for e in detail
        )
    return str(detail)


@cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client: each would load the CA bundle again (0.1 s)."""
    return httpx.create_ssl_context()


class _Api:
    def __init__(
        self,
        base_url: str,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=15.0, transport=transport, verify=_tls()
        )

    async def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = await self.http.request(method, path, **kw)
        except httpx.HTTPStatusError as exc:  # the web's own credential was refused
            raise Unavailable(str(exc)) from None
        except httpx.HTTPError as exc:
            raise Unavailable(f"{self.http.base_url} is not reachable: {exc}") from None
        except FileNotFoundError as exc:
            raise Unavailable(f"no credential for {self.http.base_url} yet: {exc}") from None
        if response.status_code >= 400:
            raise Refused(response.status_code, _detail(response))
        return response

    async def close(self) -> None:
        await self.http.aclose()


class IntakeClient(_Api):
    """Intake's HTTP API, each call on behalf of one office, with a token for that office
    from the web app's client credential."""

    def __init__(
        self,
        base_url: str,
        credential: Credential | Path,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, transport=transport)
        self.credential = credential
        self.auths: dict[str, OfficeAuth] = {}

    def _auth(self, office: str) -> OfficeAuth:
        if office not in self.auths:
            self.auths[office] = OfficeAuth(self.credential, office)
        return self.auths[office]

    async def get(self, office: str, path: str, **params: Any) -> Any:
        params = {k: v for k, v in params.items() if v is not None}
        response = await self.call("GET", path, auth=self._auth(office), params=params)
        return response.json()

    async def text(self, office: str, path: str, **params: Any) -> str:
        return (await self.call("GET", path, auth=self._auth(office), params=params)).text

    async def post(self, office: str, path: str, body: Any = None) -> Any:
        response = await self.call("POST", path, auth=self._auth(office), json=body)
        return response.json()

    @property
    def person(self) -> PersonClient:
        """The calls of the person's page (with their token, not an office's)."""
        return PersonClient(self)


class PersonClient:
    """Intake's API for the person's own page: each call with the person's token, never an
    office's credential (the web app holds no key to any person's page)."""

    def __init__(self, intake: IntakeClient) -> None:
        self.intake = intake

    async def _call(self, method: str, path: str, token: str) -> Any:
        headers = {"X-Person-Token": token}
        return (await self.intake.call(method, path, headers=headers)).json()

    async def page(self, token: str) -> Any:
        return await self._call("GET", "/person", token)

    async def withdraw(self, token: str) -> Any:
        return await self._call("POST", "/person/withdraw", token)

    async def data(self, token: str) -> Any:
        return await self._call("GET", "/person/data", token)


class AuditClient(_Api):
    """The ombudsperson's read-only audit API."""

    def __init__(
        self, base_url: str, token: str, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(base_url, {"Authorization": f"Bearer {token}"}, transport)

    async def get(self, path: str, **params: Any) -> Any:
        params = {k: v for k, v in params.items() if v not in (None, "")}
        return (await self.call("GET", path, params=params)).json()

    async def text(self, path: str, **params: Any) -> str:
        """A document the audit API makes (the monitoring report as HTML)."""
        params = {k: v for k, v in params.items() if v not in (None, "")}
        return (await self.call("GET", path, params=params)).text


class DirectoryAdminClient(_Api):
    """The directory's admin routes, with the web app's admin token, each call naming the
    signed-in administrator who acts."""

    def __init__(
        self,
        base_url: str,
        token_path: Path,
        public_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, transport=transport)
        self.token_path = token_path
        self.public_url = public_url or base_url
        """Where agencies reach the directory (to enrol), if not where the web app does."""

    def _headers(self, by: str) -> dict[str, str]:
        token = self.token_path.read_text().strip()  # read per call: a new token takes at once
        return {"Authorization": f"Bearer {token}", "X-Wegweiser-Acting-User": by}

    async def _json(self, method: str, path: str, by: str, body: Any = None) -> Any:
        response = await self.call(method, path, headers=self._headers(by), json=body)
        return response.json()

    async def agencies(self, by: str) -> list[AgencyStanding]:
        found = await self._json("GET", "/admin/agencies", by)
        return [AgencyStanding.model_validate(a) for a in found]

    async def invite(self, agency_id: str, valid_for: timedelta, by: str) -> Invited:
        body = {"valid_for": f"PT{int(valid_for.total_seconds())}S"}
        path = f"/admin/agencies/{quote(agency_id, safe='')}/invitations"
        return Invited.model_validate(await self._json("POST", path, by, body))

    async def approve(self, enrolment_id: str, by: str) -> Decided:
        path = f"/admin/enrolments/{quote(enrolment_id, safe='')}/approve"
        return Decided.model_validate(await self._json("POST", path, by))

    async def refuse(self, enrolment_id: str, by: str) -> Decided:
        path = f"/admin/enrolments/{quote(enrolment_id, safe='')}/refuse"
        return Decided.model_validate(await self._json("POST", path, by))

    async def revoke(self, agency_id: str, by: str) -> Revoked:
        path = f"/admin/agencies/{quote(agency_id, safe='')}/revoke"
        return Revoked.model_validate(await self._json("POST", path, by))

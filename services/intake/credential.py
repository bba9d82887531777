"""A caller's side of intake's API: its client credential and an httpx auth that turns it into
bearer tokens (fetched from `POST /token`, cached, renewed before they expire or when refused).

Light to import (httpx only): the web app, `wegweiser demo` and an office's own Python
software use it; anyone else follows RFC 6749 §4.4 with the same three fields.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import httpx

from wegweiser.platform.files import write_private

RENEW_BEFORE = 60  # seconds before expiry a token is renewed


@dataclass(frozen=True, slots=True)
class Credential:
    """What a client holds: its id and secret (shown once; intake keeps only a digest)."""

    client_id: str
    client_secret: str
    offices: tuple[str, ...]

    def to_json(self) -> str:
        fields = {"client_id": self.client_id, "client_secret": self.client_secret}
        return json.dumps({**fields, "offices": list(self.offices)}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Credential:
        data = json.loads(text)
        return cls(str(data["client_id"]), str(data["client_secret"]), tuple(data["offices"]))

    def save(self, path: Path) -> None:
        write_private(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> Credential:
        return cls.from_json(path.read_text())


class OfficeAuth(httpx.Auth):
    """Bearer tokens for one office from a client credential (given, or read from a file when
    first needed: in development intake writes the file at its first start)."""

    requires_response_body = True

    def __init__(self, credential: Credential | Path, office: str | None = None) -> None:
        self._credential = credential
        self.office = office
        self.token: str | None = None
        self.renew_at = 0.0

    @property
    def credential(self) -> Credential:
        if isinstance(self._credential, Path):
            self._credential = Credential.load(self._credential)
        return self._credential

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.token is None or time.monotonic() >= self.renew_at:
            self._take((yield self._token_request(request.url)))
        request.headers["Authorization"] = f"Bearer {self.token}"
        response = yield request
        if response.status_code == 401:  # expired early, or intake's key changed: once more
            self._take((yield self._token_request(request.url)))
            request.headers["Authorization"] = f"Bearer {self.token}"
            yield request

    def _token_request(self, url: httpx.URL) -> httpx.Request:
        form = {"grant_type": "client_credentials"}
        if self.office:
            form["scope"] = f"office:{self.office}"
        credential = self.credential
        basic = httpx.BasicAuth(credential.client_id, credential.client_secret)
        request = httpx.Request("POST", url.copy_with(path="/token", query=None), data=form)
        return next(basic.auth_flow(request))

    def _take(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            raise httpx.HTTPStatusError(
                f"intake refused a token: {response.status_code} {response.text[:300]}",
                request=response.request,
                response=response,
            )
        body = response.json()
        self.token = str(body["access_token"])
        self.renew_at = time.monotonic() + max(0, int(body["expires_in"]) - RENEW_BEFORE)

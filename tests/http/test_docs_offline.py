"""The API documentation works on a county network without internet: /docs and /redoc of
intake, the directory and the audit load their scripts and styles from the service itself,
and the service serves them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.support.audit import empty_audit_app
from tests.support.directory import directory
from tests.support.intake import HOST, IntakeApp

ASSET = re.compile(r"""(?:src|href)=['"]([^'"]+)['"]|url: ?['"]([^'"]+)['"]""")


@pytest.fixture(params=["intake", "directory", "audit"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FastAPI]:
    if request.param == "intake":
        intake = IntakeApp(tmp_path)
        yield intake.app
        intake.dispose()
    elif request.param == "directory":
        found = directory(tmp_path)
        yield found.app
        found.db.dispose()
    else:
        yield empty_audit_app(tmp_path / "audit", "a-token-of-the-ombudsperson")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_documentation_loads_nothing_from_another_site(app: FastAPI, page: str) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"http://{HOST}"
    ) as client:
        html = (await client.get(page)).text
        assets = [a or b for a, b in ASSET.findall(html)]
        scripts = [a for a in assets if a.endswith((".js", ".css"))]
        assert scripts, html
        for asset in assets:
            assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
        for asset in scripts:
            served = await client.get(asset)
            assert served.status_code == 200 and len(served.content) > 10_000, asset

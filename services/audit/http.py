"""The ombudsperson's read-only HTTP API over the audit log (metadata only)."""

from __future__ import annotations

import csv
import hmac
import io
from datetime import date
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline

from schemas.events import COUNTY_KEY
from services.report import render
from services.report.figures import BadPeriod, Period
from services.report.protection import K_DEFAULT, K_LEAST
from services.report.report import Report
from wegweiser.platform import problems

bearer = HTTPBearer(auto_error=False)
From = Annotated[date, Query(alias="from", description="the period's first day")]
To = Annotated[date, Query(alias="to", description="the period's last day")]
County = Annotated[str | None, Query(pattern=COUNTY_KEY, description="Kreisschlüssel")]
K = Annotated[int, Query(ge=K_LEAST, le=100, description="the smallest group shown")]


class Readings(Protocol):
    """What the ombudsperson reads (`application.AuditLog`)."""

    async def referral_trail(self, referral_id: str) -> list[dict[str, Any]]: ...
    async def referrals(
        self, agency: str | None, state: str | None, since: str | None, until: str | None
    ) -> list[dict[str, Any]]: ...
    async def answer_times(self) -> list[dict[str, Any]]: ...
    async def overdue(self) -> dict[str, list[dict[str, Any]]]: ...
    async def withdrawals(self) -> list[dict[str, Any]]: ...
    async def anomalies(self) -> dict[str, list[dict[str, Any]]]: ...
    async def export(self, since: int | None = None) -> dict[str, Any]: ...
    async def report(self, period: Period, county: str | None, k: int) -> Report: ...


def create_app(log: Readings, token: str) -> FastAPI:
    """Every route needs the ombudsperson's token; no route writes."""
    # /docs and /redoc from installed files, not a CDN
    app = FastAPIOffline(
        title="Wegweiser audit (ombudsperson)",
        version="1",
        responses=problems.documented(401, 404, 422),
    )
    problems.install(app)

    def ombudsperson(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if credentials is None or not hmac.compare_digest(credentials.credentials, token):
            raise HTTPException(
                401, "the ombudsperson's token is required", headers={"WWW-Authenticate": "Bearer"}
            )

    # every route but /health; an included router's routes check their query themselves
    read = APIRouter(dependencies=[Depends(problems.known_query), Depends(ombudsperson)])

    @read.get("/referrals/{referral_id}/trail")
    async def trail(referral_id: str) -> list[dict[str, Any]]:
        mine = await log.referral_trail(referral_id)
        if not mine:
            raise HTTPException(404, f"no referral {referral_id} in the log")
        return mine

    @read.get("/referrals")
    async def referrals(
        agency: str | None = None,
        state: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> list[dict[str, Any]]:
        return await log.referrals(agency, state, since, until)

    @read.get("/referrals.csv", response_class=PlainTextResponse)
    async def referrals_csv(
        agency: str | None = None,
        state: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> str:
        rows = await log.referrals(agency, state, since, until)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["referral_id"])
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()

    @read.get("/agencies/answer-times")
    async def answer_times() -> list[dict[str, Any]]:
        return await log.answer_times()

    @read.get("/overdue")
    async def overdue() -> dict[str, list[dict[str, Any]]]:
        return await log.overdue()

    @read.get("/withdrawals")
    async def withdrawals() -> list[dict[str, Any]]:
        return await log.withdrawals()

    @read.get("/anomalies")
    async def anomalies() -> dict[str, list[dict[str, Any]]]:
        return await log.anomalies()

    @read.get("/export")
    async def export_log(
        since: Annotated[int | None, Query(ge=0, description="a size seen before")] = None,
    ) -> dict[str, Any]:
        """Every entry under a freshly signed tree head, with the public key and its signed
        rotations: verifiable offline (`wegweiser audit verify`). With `since`, also the RFC
        9162 consistency proof from the head of that size seen before."""
        return await log.export(since)

    async def report_of(first: date, last: date, county: str | None, k: int) -> Report:
        try:
            period = Period(first, last)
            period.before()  # the report shows the period before too: it must be one
        except BadPeriod as exc:
            raise HTTPException(422, str(exc)) from None
        return await log.report(period, county, k)

    @read.get("/report")
    async def report(
        first: From, last: To, county: County = None, k: K = K_DEFAULT
    ) -> dict[str, Any]:
        """The monitoring report for a period and the one before (services/report): counts
        below k suppressed with enough others that none can be worked out."""
        return (await report_of(first, last, county, k)).as_dict()

    @read.get("/report.html", response_class=HTMLResponse)
    async def report_html(
        first: From,
        last: To,
        county: County = None,
        k: K = K_DEFAULT,
        language: Literal["de", "en"] = "de",
    ) -> str:
        """The same report as one HTML file with its charts, readable offline."""
        return render.page(await report_of(first, last, county, k), language)

    app.include_router(read)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app

"""The county's monitoring report (/report), for the offices and the ombudsperson: a form for
the period, and the report itself, made by the audit service from its log's metadata and
shown as the one offline HTML file it is (to read, print or save)."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.web.pages import App, Monitoring, language_of, render

router = APIRouter(prefix="/report")

REPORT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
"""The report is a document: its own styles inline, its charts inline SVG, nothing to run."""


@router.get("", response_class=HTMLResponse)
async def report_form(request: Request, user: Monitoring) -> Response:
    today = date.today()
    return render(
        request,
        "report/form.html",
        user,
        first=date(today.year - 1, 1, 1).isoformat(),
        last=date(today.year - 1, 12, 31).isoformat(),
    )


@router.get("/view", response_class=HTMLResponse)
async def report_view(
    request: Request,
    app: App,
    _user: Monitoring,
    first: str = "",
    last: str = "",
    county: str = "",
    language: str = "",
) -> Response:
    page = await app.report(first, last, county, language or language_of(request))
    return HTMLResponse(page, headers={"Content-Security-Policy": REPORT_POLICY})

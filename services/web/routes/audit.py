"""The ombudsperson's pages (/audit): metadata from the read-only audit API, and the log's
integrity checked against the key this installation pinned."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.audit import export
from services.audit.verification import SeenHead, key_in_effect
from services.web.integrity import check_export
from services.web.pages import CheckedForm, Ombudsperson, Web, WebDep, render

router = APIRouter(prefix="/audit")


@router.get("", response_class=HTMLResponse)
async def audit_overview(
    request: Request, web: WebDep, user: Ombudsperson, agency: str = "", state: str = ""
) -> Response:
    rows = await web.audit.get("/referrals", agency=agency, state=state)
    overdue = await web.audit.get("/overdue")
    anomalies = await web.audit.get("/anomalies")
    return render(
        request,
        "audit/overview.html",
        user,
        referrals=sorted(rows, key=lambda r: r["offered_at"] or "", reverse=True),
        overdue=overdue,
        anomaly_count=sum(len(v) for v in anomalies.values()),
        agency=agency,
        state=state,
    )


@router.get("/referrals/{referral_id}", response_class=HTMLResponse)
async def audit_trail(
    request: Request, web: WebDep, user: Ombudsperson, referral_id: str
) -> Response:
    trail = await web.audit.get(f"/referrals/{referral_id}/trail")
    return render(request, "audit/trail.html", user, referral_id=referral_id, trail=trail)


async def year_so_far(web: Web) -> dict[str, dict[str, Any]]:
    """The monitoring report's tables for this year so far, by name (protected as always)."""
    today = date.today()
    found = await web.audit.get("/report", **{"from": f"{today.year}-01-01", "to": str(today)})
    return {table["name"]: table for table in found["current"]["tables"]}


@router.get("/answer-times", response_class=HTMLResponse)
async def audit_answer_times(request: Request, web: WebDep, user: Ombudsperson) -> Response:
    rows, figures = await asyncio.gather(web.audit.get("/agencies/answer-times"), year_so_far(web))
    return render(request, "audit/answer_times.html", user, rows=rows, figures=figures)


@router.get("/overdue", response_class=HTMLResponse)
async def audit_overdue(request: Request, web: WebDep, user: Ombudsperson) -> Response:
    overdue, figures = await asyncio.gather(web.audit.get("/overdue"), year_so_far(web))
    return render(request, "audit/overdue.html", user, overdue=overdue, figures=figures)


@router.get("/withdrawals", response_class=HTMLResponse)
async def audit_withdrawals(request: Request, web: WebDep, user: Ombudsperson) -> Response:
    rows, figures = await asyncio.gather(web.audit.get("/withdrawals"), year_so_far(web))
    return render(request, "audit/withdrawals.html", user, rows=rows, figures=figures)


@router.get("/anomalies", response_class=HTMLResponse)
async def audit_anomalies(request: Request, web: WebDep, user: Ombudsperson) -> Response:
    found = await web.audit.get("/anomalies")
    return render(request, "audit/anomalies.html", user, anomalies=found)


@router.get("/integrity", response_class=HTMLResponse)
async def integrity_page(request: Request, user: Ombudsperson) -> Response:
    return render(request, "audit/integrity.html", user, verdict=None)


@router.post("/integrity", response_class=HTMLResponse)
async def verify_log(
    request: Request, web: WebDep, user: Ombudsperson, _form: CheckedForm
) -> Response:
    seen = web.seen_heads.last() if web.seen_heads else None
    doc = await web.audit.get("/export", **({"since": seen.size} if seen else {}))
    verdict = check_export(doc, web.audit_key(), seen)
    if verdict.ok and web.seen_heads:
        found = export.parse(doc)
        web.seen_heads.keep(
            SeenHead.of(found.head, key_in_effect(web.audit_key(), found.rotations))
        )
    return render(request, "audit/integrity.html", user, verdict=verdict)


@router.get("/export")
async def download_export(web: WebDep, _user: Ombudsperson) -> Response:
    response = await web.audit.call("GET", "/export")
    stamp = web.now().strftime("%Y%m%dT%H%M%SZ")
    return Response(
        response.content,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="wegweiser-audit-{stamp}.json"'},
    )

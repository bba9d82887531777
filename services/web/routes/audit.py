"""The ombudsperson's pages (/audit): metadata from the read-only audit API, and the log's
integrity checked against the key this installation pinned."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.web.pages import App, CheckedForm, Ombudsperson, render

router = APIRouter(prefix="/audit")


@router.get("", response_class=HTMLResponse)
async def audit_overview(
    request: Request, app: App, user: Ombudsperson, agency: str = "", state: str = ""
) -> Response:
    found = await app.audit_overview(agency, state)
    return render(
        request,
        "audit/overview.html",
        user,
        referrals=found.referrals,
        overdue=found.overdue,
        anomaly_count=found.anomaly_count,
        agency=agency,
        state=state,
    )


@router.get("/referrals/{referral_id}", response_class=HTMLResponse)
async def audit_trail(request: Request, app: App, user: Ombudsperson, referral_id: str) -> Response:
    trail = await app.trail(referral_id)
    return render(request, "audit/trail.html", user, referral_id=referral_id, trail=trail)


@router.get("/answer-times", response_class=HTMLResponse)
async def audit_answer_times(request: Request, app: App, user: Ombudsperson) -> Response:
    found = await app.answer_times()
    return render(request, "audit/answer_times.html", user, rows=found.rows, figures=found.figures)


@router.get("/overdue", response_class=HTMLResponse)
async def audit_overdue(request: Request, app: App, user: Ombudsperson) -> Response:
    found = await app.overdue()
    return render(request, "audit/overdue.html", user, overdue=found.rows, figures=found.figures)


@router.get("/withdrawals", response_class=HTMLResponse)
async def audit_withdrawals(request: Request, app: App, user: Ombudsperson) -> Response:
    found = await app.withdrawals()
    return render(request, "audit/withdrawals.html", user, rows=found.rows, figures=found.figures)


@router.get("/anomalies", response_class=HTMLResponse)
async def audit_anomalies(request: Request, app: App, user: Ombudsperson) -> Response:
    found = await app.anomalies()
    return render(request, "audit/anomalies.html", user, anomalies=found)


@router.get("/integrity", response_class=HTMLResponse)
async def integrity_page(request: Request, user: Ombudsperson) -> Response:
    return render(request, "audit/integrity.html", user, verdict=None)


@router.post("/integrity", response_class=HTMLResponse)
async def verify_log(
    request: Request, app: App, user: Ombudsperson, _form: CheckedForm
) -> Response:
    verdict = await app.verify_log()
    return render(request, "audit/integrity.html", user, verdict=verdict)


@router.get("/export")
async def download_export(app: App, _user: Ombudsperson) -> Response:
    found = await app.export()
    stamp = found.taken_at.strftime("%Y%m%dT%H%M%SZ")
    return Response(
        found.content,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="wegweiser-audit-{stamp}.json"'},
    )

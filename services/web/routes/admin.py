"""The administrator's pages (/admin): the county invites agencies to enrol with their own
keys, approves or refuses what they send, and revokes them. Every step is one call to the
directory's admin routes, naming the signed-in administrator; the broker follows by itself
(the broker watch), so these pages hold no broker key."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.web.accounts import SignedIn
from services.web.application import WebApplication
from services.web.pages import Administrator, App, CheckedForm, render

router = APIRouter(prefix="/admin")
VALIDITY_DAYS = range(1, 31)
"""How long an invitation may be valid, in days (the directory allows up to 30)."""


@router.get("", response_class=HTMLResponse)
async def admin_home(_user: Administrator) -> Response:
    return RedirectResponse("/admin/agencies", status_code=303)


@router.get("/agencies", response_class=HTMLResponse)
async def agencies(
    request: Request, app: App, user: Administrator, done: str = "", agency: str = ""
) -> Response:
    return await _agencies_page(request, app, user, done=done, agency=agency)


async def _agencies_page(
    request: Request, app: WebApplication, user: SignedIn, status: int = 200, **ctx: str
) -> Response:
    found = await app.agencies(user.username)
    return render(
        request,
        "admin/agencies.html",
        user,
        status,
        agencies=found.standings,
        waiting=found.waiting,
        days=VALIDITY_DAYS,
        **ctx,
    )


@router.post("/agencies/{agency_id}/invitations", response_class=HTMLResponse)
async def invite(
    request: Request, app: App, user: Administrator, agency_id: str, form: CheckedForm
) -> Response:
    try:
        days = int(str(form.get("days") or ""))
    except ValueError:
        days = 0
    if days not in VALIDITY_DAYS:
        return await _agencies_page(request, app, user, 422, bad_days=agency_id)
    found = await app.invite(agency_id, timedelta(days=days), user.username)
    response = render(
        request,
        "admin/invited.html",
        user,
        invited=found.invited,
        directory_url=found.directory_url,
    )
    response.headers["Cache-Control"] = "no-store"  # the code is shown this once
    return response


@router.post("/enrolments/{enrolment_id}/approve", response_class=HTMLResponse)
async def approve(app: App, user: Administrator, enrolment_id: str, _form: CheckedForm) -> Response:
    decided = await app.approve(enrolment_id, user.username)
    return _done("approved", decided.agency_id)


@router.post("/enrolments/{enrolment_id}/refuse", response_class=HTMLResponse)
async def refuse(app: App, user: Administrator, enrolment_id: str, _form: CheckedForm) -> Response:
    decided = await app.refuse(enrolment_id, user.username)
    return _done("refused", decided.agency_id)


@router.get("/agencies/{agency_id}/revoke", response_class=HTMLResponse)
async def confirm_revocation(
    request: Request, app: App, user: Administrator, agency_id: str
) -> Response:
    found = await app.agency(agency_id, user.username)
    if found is None:
        return render(request, "error.html", user, 404, problem="refused", detail=agency_id)
    return render(request, "admin/revoke.html", user, agency=found)


@router.post("/agencies/{agency_id}/revoke", response_class=HTMLResponse)
async def revoke(app: App, user: Administrator, agency_id: str, _form: CheckedForm) -> Response:
    revoked = await app.revoke(agency_id, user.username)
    return _done("revoked", revoked.agency_id)


def _done(what: str, agency_id: str) -> Response:
    return RedirectResponse(f"/admin/agencies?done={what}&agency={agency_id}", status_code=303)

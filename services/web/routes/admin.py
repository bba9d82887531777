"""The administrator's pages (/admin): the county invites agencies to enrol with their own
keys, approves or refuses what they send, and revokes them. Every step is one call to the
directory's admin routes, naming the signed-in administrator; the broker follows by itself
(the broker watch), so these pages hold no broker key."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.web.accounts import SignedIn
from services.web.clients import DirectoryAdminClient, Unavailable
from services.web.pages import Administrator, CheckedForm, Web, WebDep, render

router = APIRouter(prefix="/admin")
VALIDITY_DAYS = range(1, 31)
"""How long an invitation may be valid, in days (the directory allows up to 30)."""


@router.get("", response_class=HTMLResponse)
async def admin_home(_user: Administrator) -> Response:
    return RedirectResponse("/admin/agencies", status_code=303)


@router.get("/agencies", response_class=HTMLResponse)
async def agencies(
    request: Request, web: WebDep, user: Administrator, done: str = "", agency: str = ""
) -> Response:
    return await _agencies_page(request, web, user, done=done, agency=agency)


async def _agencies_page(
    request: Request, web: Web, user: SignedIn, status: int = 200, **ctx: str
) -> Response:
    standings = await _directory(web).agencies(user.username)
    waiting = [e for a in standings for e in a.pending if e.status == "requested"]
    return render(
        request,
        "admin/agencies.html",
        user,
        status,
        agencies=standings,
        waiting=sorted(waiting, key=lambda e: e.requested_at or e.invited_at),
        days=VALIDITY_DAYS,
        **ctx,
    )


@router.post("/agencies/{agency_id}/invitations", response_class=HTMLResponse)
async def invite(
    request: Request, web: WebDep, user: Administrator, agency_id: str, form: CheckedForm
) -> Response:
    try:
        days = int(str(form.get("days") or ""))
    except ValueError:
        days = 0
    if days not in VALIDITY_DAYS:
        return await _agencies_page(request, web, user, 422, bad_days=agency_id)
    invited = await _directory(web).invite(agency_id, timedelta(days=days), user.username)
    directory_url = _directory(web).public_url
    response = render(
        request, "admin/invited.html", user, invited=invited, directory_url=directory_url
    )
    response.headers["Cache-Control"] = "no-store"  # the code is shown this once
    return response


@router.post("/enrolments/{enrolment_id}/approve", response_class=HTMLResponse)
async def approve(
    web: WebDep, user: Administrator, enrolment_id: str, _form: CheckedForm
) -> Response:
    decided = await _directory(web).approve(enrolment_id, user.username)
    return _done("approved", decided.agency_id)


@router.post("/enrolments/{enrolment_id}/refuse", response_class=HTMLResponse)
async def refuse(
    web: WebDep, user: Administrator, enrolment_id: str, _form: CheckedForm
) -> Response:
    decided = await _directory(web).refuse(enrolment_id, user.username)
    return _done("refused", decided.agency_id)


@router.get("/agencies/{agency_id}/revoke", response_class=HTMLResponse)
async def confirm_revocation(
    request: Request, web: WebDep, user: Administrator, agency_id: str
) -> Response:
    standings = await _directory(web).agencies(user.username)
    found = next((a for a in standings if a.agency_id == agency_id), None)
    if found is None:
        return render(request, "error.html", user, 404, problem="refused", detail=agency_id)
    return render(request, "admin/revoke.html", user, agency=found)


@router.post("/agencies/{agency_id}/revoke", response_class=HTMLResponse)
async def revoke(web: WebDep, user: Administrator, agency_id: str, _form: CheckedForm) -> Response:
    revoked = await _directory(web).revoke(agency_id, user.username)
    return _done("revoked", revoked.agency_id)


def _directory(web: Web) -> DirectoryAdminClient:
    if web.directory is None:
        raise Unavailable("the directory's admin routes are not configured for the web app")
    return web.directory


def _done(what: str, agency_id: str) -> Response:
    return RedirectResponse(f"/admin/agencies?done={what}&agency={agency_id}", status_code=303)

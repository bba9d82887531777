"""Signing in and out, the start page and the choice of language."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.web import accounts, i18n
from services.web.pages import (
    AREA,
    COOKIE,
    HOME,
    LANG_COOKIE,
    LOGIN_CSRF,
    App,
    BadForm,
    CheckedForm,
    WebDep,
    client_address,
    known_user,
    local,
    render,
)
from services.web.signin import Opened, Throttled

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    user = await known_user(request)
    return RedirectResponse(HOME[user.role] if user else "/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, web: WebDep, next: str = "/") -> Response:
    token = accounts.new_form_token()
    response = render(request, "login.html", None, next=local(next), csrf=token)
    response.set_cookie(
        LOGIN_CSRF, token, httponly=True, samesite="strict", secure=web.secure_cookies
    )
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    web: WebDep,
    app: App,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    if not accounts.csrf_matches(request.cookies.get(LOGIN_CSRF) or "", csrf or None):
        raise BadForm()

    outcome = await app.sign_in(username, password, client_address(request))
    if not isinstance(outcome, Opened):
        wait = outcome.retry_after if isinstance(outcome, Throttled) else None
        token = accounts.new_form_token()
        response = render(
            request,
            "login.html",
            None,
            401 if wait is None else 429,
            next=local(next),
            csrf=token,
            failed=True,
            wait=None if wait is None else wait.total_seconds(),
            username=username,
        )
        if wait is not None:
            response.headers["Retry-After"] = str(max(1, math.ceil(wait.total_seconds())))
        response.set_cookie(
            LOGIN_CSRF, token, httponly=True, samesite="strict", secure=web.secure_cookies
        )
        return response
    target = local(next)
    if not target.startswith(AREA[outcome.role] + "/") and target != AREA[outcome.role]:
        target = HOME[outcome.role]  # another role's page would only refuse
    opened = RedirectResponse(target, status_code=303)
    opened.set_cookie(
        COOKIE,
        outcome.token,
        httponly=True,
        samesite="lax",
        secure=web.secure_cookies,
        max_age=int(app.policy.lifetime.total_seconds()),
    )
    opened.delete_cookie(LOGIN_CSRF)
    return opened


@router.post("/logout")
async def logout(request: Request, app: App, _form: CheckedForm) -> Response:
    await app.sign_out(request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/language/{language}")
async def switch_language(language: str, next: str = "/") -> Response:
    response = RedirectResponse(local(next), status_code=303)
    if language in i18n.LANGUAGES:
        response.set_cookie(LANG_COOKIE, language, samesite="lax", max_age=365 * 86400)
    return response

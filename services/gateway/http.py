"""The gateway's HTTP side: signed webhook callbacks, and the small portal for e-mail agencies.
Each route decodes, calls one use case of the gateway (services/gateway/application.py) and
maps its outcome, or its refusal, to the answer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, HTTPException, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.vocabulary import REASONS_FOR, AgencyAction, Outcome
from services.gateway import callbacks, links
from services.gateway.application import (
    BadSignature,
    CaseDeleted,
    Gateway,
    MalformedAnswer,
    MalformedCallback,
    NoPortalSession,
    NoWebhookAgency,
    OutOfDateForm,
)
from services.gateway.portal import PortalForm
from wegweiser.platform import problems
from wegweiser.platform.http_headers import add_security_headers
from wegweiser.platform.sealing import NoOfficeKey

COOKIE = "wegweiser_portal"
PORTAL_ACTIONS = (
    ("acknowledge", "Erhalten / acknowledge"),
    ("accept", "Annehmen / accept"),
    ("confirm-deletion", "Daten gelöscht / data deleted"),
)
"""The answers the portal offers as one button; reject, complete and forward have forms of
their own (a reason code, an outcome, the agency to forward to, a comment)."""
HERE = Path(__file__).parent
templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
)


def create_app(gateway: Gateway, secure_cookie: bool = False) -> FastAPI:
    app = FastAPI(title="Wegweiser partner gateway", version="1")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    add_security_headers(app)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:  # every method of the path, not the first route's only
            exc.headers = {**(exc.headers or {}), "Allow": problems.allowed(app, request)}
        return await http_exception_handler(request, exc)

    @app.post("/webhooks/{agency_id}/answers", status_code=202)
    async def callback(agency_id: str, request: Request, response: Response) -> dict[str, str]:
        try:
            taken = await gateway.take_callback(
                agency_id, await request.body(), dict(request.headers)
            )
        except NoWebhookAgency as exc:
            raise HTTPException(404, str(exc)) from None
        except BadSignature as exc:
            raise HTTPException(401, str(exc)) from None
        except MalformedCallback as exc:
            raise HTTPException(422, exc.detail) from None
        except NoOfficeKey as exc:
            raise HTTPException(422, str(exc)) from None
        except callbacks.CallbackRefused as exc:
            raise HTTPException(409, f"{exc.code}: {exc}") from None
        if not taken.first:
            response.status_code = 200  # taken before under this answer_id: nothing new
        return {"answer_id": taken.event_id}

    @app.get("/portal/case", response_class=HTMLResponse)
    async def show_case(request: Request, done: str | None = None) -> Any:
        try:
            view = await gateway.show_case(request.cookies.get(COOKIE))
        except NoPortalSession as exc:
            return HTMLResponse(_page(str(exc)), 401)
        except CaseDeleted as exc:
            return HTMLResponse(_page(str(exc)), 410)
        html = templates.get_template("case.html").render(
            referral_id=view.referral_id,
            agency_name=view.agency_name,
            state=view.state,
            case=view.case,
            office_comment=view.office_comment,
            error=view.error,
            done=done,
            csrf=view.csrf,
            actions=PORTAL_ACTIONS,
            reject_reasons=sorted(REASONS_FOR[AgencyAction.REJECT]),
            complete_reasons=sorted(REASONS_FOR[AgencyAction.COMPLETE]),
            forward_reasons=sorted(REASONS_FOR[AgencyAction.FORWARD]),
            outcomes=list(Outcome),
        )
        return HTMLResponse(html)

    @app.post("/portal/case")
    async def answer_case(
        request: Request,
        csrf: Annotated[str, Form()],
        action: Annotated[str, Form()],
        reason: Annotated[str | None, Form()] = None,
        outcome: Annotated[str | None, Form()] = None,
        comment: Annotated[str | None, Form(max_length=2000)] = None,
        forward_to: Annotated[str | None, Form(max_length=64)] = None,
    ) -> Any:
        form = PortalForm(csrf, action, reason, outcome, comment, forward_to)
        try:
            chosen = await gateway.answer_from_portal(request.cookies.get(COOKIE), form)
        except NoPortalSession as exc:
            return HTMLResponse(_page(str(exc)), 401)
        except OutOfDateForm as exc:
            return HTMLResponse(_page(str(exc)), 403)
        except (MalformedAnswer, NoOfficeKey) as exc:
            return HTMLResponse(_page(str(exc)), 422)
        return RedirectResponse(f"/portal/case?done={chosen.value}", status_code=303)

    @app.get("/portal/{token}")  # after /portal/case, which it would otherwise swallow
    async def open_link(token: str) -> Any:
        try:
            opened = await gateway.open_link(token)
        except links.LinkRefused as refused:
            status = 404 if refused.reason == "unknown" else 410
            return HTMLResponse(_page(str(refused)), status_code=status)
        response = RedirectResponse("/portal/case", status_code=303)
        response.set_cookie(
            COOKIE,
            opened,
            httponly=True,
            samesite="strict",
            secure=secure_cookie,
            max_age=int(gateway.session_lasts.total_seconds()),
        )
        return response

    return app


def _page(message: str) -> str:
    from html import escape

    return (
        '<!doctype html><html lang="de"><meta charset="utf-8"><title>Wegweiser</title>'
        f"<body><p>{escape(message)}</p></body></html>"
    )

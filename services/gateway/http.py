"""The gateway's HTTP side: signed webhook callbacks, and the small portal for e-mail agencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, HTTPException, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from jwcrypto import jwk
from pydantic import ValidationError
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.events import CaseDetails, SealedNote
from schemas.vocabulary import REASONS_FOR, AgencyAction, Outcome
from services.gateway import callbacks, handlers, links, webhook
from services.gateway.store import CaseRow
from wegweiser.platform import problems, sealing
from wegweiser.platform.consumer import describe
from wegweiser.platform.http_headers import add_security_headers
from wegweiser.platform.sealing import SealError

Run = Callable[[Callable[[Session], Any]], Awaitable[Any]]
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


def create_app(
    run: Run,
    webhook_secret: Callable[[str], str | None],
    mail_agency: Callable[[str], handlers.MailAgency | None],
    agency_key: Callable[[str], jwk.JWK | None],
    signers: Callable[[], dict[str, jwk.JWK]],
    office_keys: Callable[[], dict[str, jwk.JWK]] = dict,
    session_lasts: timedelta = timedelta(minutes=30),
    secure_cookie: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FastAPI:
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
        secret = webhook_secret(agency_id)
        if secret is None:
            raise HTTPException(404, f"no webhook agency {agency_id}")
        body = await request.body()
        try:
            webhook.verify(secret, body, dict(request.headers))
        except webhook.WebhookVerificationError as exc:
            raise HTTPException(401, f"bad webhook signature: {exc}") from None
        webhook_id = request.headers["webhook-id"]
        if len(webhook_id) > callbacks.LONGEST_ID:
            raise HTTPException(422, f"webhook-id longer than {callbacks.LONGEST_ID} characters")
        try:
            answer = callbacks.CallbackAnswer.model_validate_json(body)
        except ValidationError as exc:
            # without the input: a body that is no JSON would be bytes, and none is echoed
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            raise HTTPException(422, errors) from None
        try:
            note = _sealed(answer.comment, answer.referral_id, office_keys(), answer.office)
        except sealing.NoOfficeKey as exc:
            raise HTTPException(422, str(exc)) from None
        try:
            taken = await run(
                lambda s: callbacks.take(s, agency_id, webhook_id, answer, now(), note)
            )
        except callbacks.CallbackRefused as exc:
            raise HTTPException(409, f"{exc.code}: {exc}") from None
        if not taken.first:
            response.status_code = 200  # taken before under this answer_id: nothing new
        return {"answer_id": taken.event_id}

    @app.get("/portal/case", response_class=HTMLResponse)
    async def show_case(request: Request, done: str | None = None) -> Any:
        found = await run(lambda s: _session_case(s, request.cookies.get(COOKIE), now()))
        if found is None:
            return HTMLResponse(_page("no open session: use the link from your e-mail"), 401)
        portal, case = found
        if case is not None and case.deleted_at is not None:
            return HTMLResponse(_page(links.DELETED), 410)
        agency = mail_agency(portal.agency_id)
        details, error = _unseal(case, agency_key(portal.agency_id), signers())
        office_comment = _office_comment(case, agency_key(portal.agency_id), signers())
        html = templates.get_template("case.html").render(
            referral_id=portal.referral_id,
            agency_name=agency.name if agency else portal.agency_id,
            state=case.last_event if case else "unknown",
            case=details,
            office_comment=office_comment,
            error=error,
            done=done,
            csrf=portal.csrf,
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
        found = await run(lambda s: _session_case(s, request.cookies.get(COOKIE), now()))
        if found is None:
            return HTMLResponse(_page("no open session: use the link from your e-mail"), 401)
        portal, case = found
        if csrf != portal.csrf:
            return HTMLResponse(_page("the form is out of date: reload the page"), 403)
        try:
            answer = callbacks.AnswerTerms(
                action=action,
                reason=reason or None,
                outcome=outcome or None,
                forward_to=(forward_to or "").strip() or None,
            )
        except ValidationError as exc:
            return HTMLResponse(_page(describe(exc)), 422)
        text = (comment or "").strip() or None
        office = case.office_id if case is not None else None  # the office that sent it
        try:
            note = _sealed(text, portal.referral_id, office_keys(), office)
        except sealing.NoOfficeKey as exc:
            return HTMLResponse(_page(str(exc)), 422)
        chosen = answer.action
        await run(
            lambda s: handlers.stage_answer(
                s,
                portal.agency_id,
                portal.referral_id,
                chosen,
                reason=answer.reason,
                outcome=answer.outcome,
                comment=note,
                forward_to=answer.forward_to,
            )
        )
        return RedirectResponse(f"/portal/case?done={chosen.value}", status_code=303)

    @app.get("/portal/{token}")  # after /portal/case, which it would otherwise swallow
    async def open_link(token: str) -> Any:
        def redeem(session: Session) -> tuple[str, str] | links.LinkRefused:
            try:
                link = links.redeem(session, token, now())
            except links.LinkRefused as refused:
                return refused
            return links.open_session(session, link, now(), session_lasts)

        opened = await run(redeem)
        if isinstance(opened, links.LinkRefused):
            status = 404 if opened.reason == "unknown" else 410
            return HTMLResponse(_page(str(opened)), status_code=status)
        response = RedirectResponse("/portal/case", status_code=303)
        response.set_cookie(
            COOKIE,
            opened[0],
            httponly=True,
            samesite="strict",
            secure=secure_cookie,
            max_age=int(session_lasts.total_seconds()),
        )
        return response

    return app


def _session_case(
    session: Session, token: str | None, at: datetime
) -> tuple[Any, CaseRow | None] | None:
    portal = links.current_session(session, token, at)
    if portal is None:
        return None
    return portal, session.get(CaseRow, portal.referral_id)


def _unseal(
    case: CaseRow | None, key: jwk.JWK | None, signers: dict[str, jwk.JWK]
) -> tuple[CaseDetails | None, str | None]:
    if case is None or case.sealed_case is None:
        return None, None
    if key is None:
        return None, "the gateway holds no key for this agency"
    try:
        payload = sealing.unseal(case.sealed_case, key=key, kid=case.agency_id, signers=signers)
    except SealError as exc:
        return None, f"{exc.code}: {exc}"
    return CaseDetails.model_validate(payload), None


def _office_comment(
    case: CaseRow | None, key: jwk.JWK | None, signers: dict[str, jwk.JWK]
) -> str | None:
    """The office's comment for this agency (on a cancellation), opened for the portal page;
    one that does not open says why."""
    if case is None or case.office_note is None or key is None:
        return None
    note = SealedNote.model_validate_json(case.office_note)
    try:
        return sealing.open_comment(
            note, case.referral_id, key=key, kid=case.agency_id, signers=signers
        )
    except SealError as exc:
        return f"({exc.code})"


def _sealed(
    comment: str | None, referral_id: str, office_keys: dict[str, jwk.JWK], office: str | None
) -> SealedNote | None:
    """An agency's comment sealed to the office at once (NoOfficeKey if no office key fits)."""
    if comment is None:
        return None
    return sealing.comment_to_office(comment, referral_id, office_keys, office)


def _page(message: str) -> str:
    from html import escape

    return (
        '<!doctype html><html lang="de"><meta charset="utf-8"><title>Wegweiser</title>'
        f"<body><p>{escape(message)}</p></body></html>"
    )

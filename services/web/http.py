"""The web app's routes: sign-in, the counsellor's pages (/office) and the ombudsperson's
(/audit). Every route states its role; the server refuses the other role and anonymous users.

Routes decode the form, call intake or audit through `clients`, and render a template.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlmodel import Session

from schemas.vocabulary import CLOSED_STATES
from services.audit import export
from services.audit.verification import SeenHead, key_in_effect
from services.web import accounts, forms, i18n, labels
from services.web.accounts import Role, SessionPolicy, SignedIn
from services.web.clients import AuditClient, IntakeClient, Refused, Unavailable
from services.web.signin import Opened, SignIn, Throttled
from wegweiser.platform.files import write_private
from wegweiser.platform.http_headers import add_security_headers

Run = Callable[[Callable[[Session], Any]], Awaitable[Any]]
COOKIE, LANG_COOKIE, LOGIN_CSRF = "wegweiser_session", "wegweiser_lang", "wegweiser_login"
HERE = Path(__file__).parent
HOME = {Role.COUNSELLOR: "/office/referrals", Role.OMBUDSPERSON: "/audit"}


@dataclass
class Web:
    """What the pages need, made by the composition root."""

    run: Run
    intake: IntakeClient
    audit: AuditClient
    audit_key: Callable[[], Ed25519PublicKey]
    offices: dict[str, str]
    sign_in: SignIn
    seen_heads: SeenHeads | None = None
    policy: SessionPolicy = SessionPolicy()
    secure_cookies: bool = False
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


class NotSignedIn(Exception):
    """No live session: the browser is sent to sign in."""


class WrongRole(Exception):
    """Signed in, but the page belongs to the other role."""

    def __init__(self, needed: Role) -> None:
        self.needed = needed


class BadForm(Exception):
    """The form's CSRF token is missing or stale."""


def _environments() -> dict[str, Environment]:
    out = {}
    for language in i18n.LANGUAGES:
        env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            extensions=["jinja2.ext.i18n"],
        )
        env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
        env.globals.update(
            labels=labels,
            language=language,
            languages=i18n.LANGUAGES,
            closed_states=CLOSED_STATES,
        )
        env.filters["when"] = lambda v, _l=language: i18n.when(v, _l)
        out[language] = env
    return out


async def known_user(request: Request) -> SignedIn | None:
    """The user a role guard already admitted for this request, else the session's."""
    return getattr(request.state, "user", None) or await current_user(request)


async def current_user(request: Request) -> SignedIn | None:
    """The user of the request's live session, if any."""
    web: Web = request.app.state.web
    token = request.cookies.get(COOKIE)
    return await web.run(lambda s: accounts.current(s, token, web.now(), web.policy))  # type: ignore[no-any-return]


def role(needed: Role) -> Callable[..., Awaitable[SignedIn]]:
    """A dependency that admits only signed-in users of the `needed` role."""

    async def guard(request: Request) -> SignedIn:
        user = await current_user(request)
        if user is None:
            raise NotSignedIn()
        request.state.user = user  # for the error page too
        if user.role is not needed:
            raise WrongRole(needed)
        return user

    return guard


async def checked_form(request: Request) -> Any:
    """The posted form, once its CSRF token matches the session's."""
    form = await request.form()
    user = await known_user(request)
    token = form.get("csrf")
    if user is None or not accounts.csrf_matches(
        user.csrf, token if isinstance(token, str) else None
    ):
        raise BadForm()
    return form


Counsellor = Annotated[SignedIn, Depends(role(Role.COUNSELLOR))]
Ombudsperson = Annotated[SignedIn, Depends(role(Role.OMBUDSPERSON))]
CheckedForm = Annotated[Any, Depends(checked_form)]


def create_app(web: Web) -> FastAPI:
    app = FastAPI(title="Wegweiser web app", version="1", docs_url=None, redoc_url=None)
    app.state.web = web
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    envs = _environments()

    def render(request: Request, name: str, user: SignedIn | None, status: int = 200, **ctx: Any):  # type: ignore[no-untyped-def]
        language = i18n.choose(request.cookies.get(LANG_COOKIE))
        html = (
            envs[language]
            .get_template(name)
            .render(
                user=user,
                path=request.url.path,
                here=quote(
                    str(request.url.path) + ("?" + request.url.query if request.url.query else "")
                ),
                office_name=web.offices.get(user.office_id or "", "") if user else "",
                age=lambda v: i18n.age(v, web.now(), language),
                duration=lambda seconds: i18n.duration(seconds, language),
                **ctx,
            )
        )
        return HTMLResponse(html, status_code=status)

    add_security_headers(app)

    @app.exception_handler(NotSignedIn)
    async def to_sign_in(request: Request, _exc: NotSignedIn) -> Response:
        target = quote(request.url.path)
        return RedirectResponse(f"/login?next={target}", status_code=303)

    @app.exception_handler(WrongRole)
    async def wrong_role(request: Request, exc: WrongRole) -> Response:
        user = await known_user(request)
        return render(request, "error.html", user, 403, problem="role", needed=exc.needed.value)

    @app.exception_handler(BadForm)
    async def bad_form(request: Request, _exc: BadForm) -> Response:
        user = await known_user(request)
        return render(request, "error.html", user, 403, problem="csrf")

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        user = await known_user(request)
        status = exc.status if 400 <= exc.status < 500 else 502
        return render(request, "error.html", user, status, problem="refused", detail=exc.detail)

    @app.exception_handler(Unavailable)
    async def unavailable(request: Request, exc: Unavailable) -> Response:
        user = await known_user(request)
        return render(request, "error.html", user, 503, problem="unavailable", detail=str(exc))

    # --- sign-in, language ----------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        user = await known_user(request)
        return RedirectResponse(HOME[user.role] if user else "/login", status_code=303)

    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str = "/") -> Response:
        token = accounts.new_form_token()
        response = render(request, "login.html", None, next=_local(next), csrf=token)
        response.set_cookie(
            LOGIN_CSRF, token, httponly=True, samesite="strict", secure=web.secure_cookies
        )
        return response

    @app.post("/login", response_class=HTMLResponse)
    async def login(
        request: Request,
        username: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        csrf: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        if not accounts.csrf_matches(request.cookies.get(LOGIN_CSRF) or "", csrf or None):
            raise BadForm()

        outcome = await web.sign_in(username, password, _address(request))
        if not isinstance(outcome, Opened):
            wait = outcome.retry_after if isinstance(outcome, Throttled) else None
            token = accounts.new_form_token()
            response = render(
                request,
                "login.html",
                None,
                401 if wait is None else 429,
                next=_local(next),
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
        token, user_role = outcome.token, outcome.role
        target = _local(next)
        if target == "/" or not target.startswith(
            "/office" if user_role is Role.COUNSELLOR else "/audit"
        ):
            target = HOME[user_role]
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="lax",
            secure=web.secure_cookies,
            max_age=int(web.policy.lifetime.total_seconds()),
        )
        response.delete_cookie(LOGIN_CSRF)
        return response

    @app.post("/logout")
    async def logout(request: Request, _form: CheckedForm) -> Response:
        token = request.cookies.get(COOKIE)
        await web.run(lambda s: accounts.close_session(s, token))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/language/{language}")
    async def switch_language(language: str, next: str = "/") -> Response:
        response = RedirectResponse(_local(next), status_code=303)
        if language in i18n.LANGUAGES:
            response.set_cookie(LANG_COOKIE, language, samesite="lax", max_age=365 * 86400)
        return response

    # --- the counsellor ---------------------------------------------------------------------

    @app.get("/office", response_class=HTMLResponse)
    async def office_home(_user: Counsellor) -> Response:
        return RedirectResponse("/office/referrals", status_code=303)

    @app.get("/office/referrals", response_class=HTMLResponse)
    async def office_referrals(
        request: Request, user: Counsellor, overdue: bool = False, rows: bool = False
    ) -> Response:
        found = await web.intake.get(
            _office(user), "/referrals", overdue=overdue or None, limit=200
        )
        return render(
            request,
            "office/_rows.html" if rows else "office/referrals.html",
            user,
            referrals=found,
            overdue_only=overdue,
        )

    @app.get("/office/requests/new", response_class=HTMLResponse)
    async def new_request(request: Request, user: Counsellor) -> Response:
        blank = forms.Parsed(
            {"urgency": "routine", "purposes": ["referral"], "text_language": _language(request)}
        )
        return _request_form(request, user, blank)

    def _request_form(
        request: Request, user: SignedIn, parsed: forms.Parsed, status: int = 200
    ) -> Response:
        return render(
            request,
            "office/new_request.html",
            user,
            status,
            form=parsed.values,
            errors=parsed.errors,
            consent_version=forms.CONSENT_TEXT_VERSION,
        )

    @app.post("/office/requests", response_class=HTMLResponse)
    async def record_request(request: Request, user: Counsellor, form: CheckedForm) -> Response:
        parsed = forms.parse(form, web.now())
        if parsed.body is None:
            return _request_form(request, user, parsed, 422)
        try:
            created = await web.intake.post(_office(user), "/requests", parsed.body)
        except Refused as exc:
            if exc.status >= 500:
                raise
            parsed.errors["form"] = exc.detail
            return _request_form(request, user, parsed, 422)
        return RedirectResponse(f"/office/requests/{created['request_id']}", status_code=303)

    @app.get("/office/requests/{request_id}", response_class=HTMLResponse)
    async def show_request(
        request: Request, user: Counsellor, request_id: str, sent: int = 0
    ) -> Response:
        office = _office(user)
        detail = await web.intake.get(office, f"/requests/{request_id}")
        consent, sent_to = await asyncio.gather(
            web.intake.get(office, f"/consents/{detail['consent_id']}/receipt", format="json"),
            web.intake.get(office, f"/requests/{request_id}/referrals"),
        )
        found: dict[str, Any] = {"suggestions": [], "excluded": []}
        if not detail["erased"] and not detail["consent_withdrawn_at"]:
            found = await web.intake.get(office, f"/requests/{request_id}/suggestions")
        already = {r["agency_id"] for r in sent_to if r["status"] not in CLOSED_STATES}
        return render(
            request,
            "office/request.html",
            user,
            request_=detail,
            consent=consent,
            suggestions=found["suggestions"],
            excluded=found["excluded"],
            referrals=sent_to,
            already=already,
            sent=sent,
        )

    @app.post("/office/requests/{request_id}/referrals", response_class=HTMLResponse)
    async def send_referrals(
        request: Request, user: Counsellor, request_id: str, form: CheckedForm
    ) -> Response:
        chosen = [a for a in form.getlist("agency_id") if isinstance(a, str)]
        if not chosen:
            return RedirectResponse(f"/office/requests/{request_id}?sent=0", status_code=303)
        for agency in dict.fromkeys(chosen):
            await web.intake.post(
                _office(user), f"/requests/{request_id}/referrals", {"agency_id": agency}
            )
        return RedirectResponse(
            f"/office/requests/{request_id}?sent={len(set(chosen))}", status_code=303
        )

    @app.get("/office/referrals/{referral_id}", response_class=HTMLResponse)
    async def show_referral(
        request: Request, user: Counsellor, referral_id: str, part: str = ""
    ) -> Response:
        referral = await web.intake.get(_office(user), f"/referrals/{referral_id}")
        template = "office/_referral_state.html" if part == "state" else "office/referral.html"
        return render(request, template, user, referral=referral)

    @app.post("/office/referrals/{referral_id}/cancel", response_class=HTMLResponse)
    async def cancel_referral(
        request: Request, user: Counsellor, referral_id: str, form: CheckedForm
    ) -> Response:
        reason = str(form.get("reason") or "").strip()
        if len(reason) < 3:
            referral = await web.intake.get(_office(user), f"/referrals/{referral_id}")
            return render(
                request, "office/referral.html", user, 422, referral=referral, reason_missing=True
            )
        await web.intake.post(_office(user), f"/referrals/{referral_id}/cancel", {"reason": reason})
        return RedirectResponse(f"/office/referrals/{referral_id}", status_code=303)

    @app.get("/office/consents/{consent_id}/receipt", response_class=HTMLResponse)
    async def receipt(
        request: Request,
        user: Counsellor,
        consent_id: str,
        language: str = "de",
        download: bool = False,
    ) -> Response:
        language = language if language in i18n.LANGUAGES else "de"
        text = await web.intake.text(
            _office(user), f"/consents/{consent_id}/receipt", language=language
        )
        if download:
            name = f"consent-{consent_id}-{language}.txt"
            return PlainTextResponse(
                text,
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        return render(
            request,
            "office/receipt.html",
            user,
            text=text,
            consent_id=consent_id,
            receipt_language=language,
        )

    @app.get("/office/consents/{consent_id}/withdraw", response_class=HTMLResponse)
    async def confirm_withdrawal(request: Request, user: Counsellor, consent_id: str) -> Response:
        consent = await web.intake.get(
            _office(user), f"/consents/{consent_id}/receipt", format="json"
        )
        return render(request, "office/withdraw.html", user, consent=consent, consent_id=consent_id)

    @app.post("/office/consents/{consent_id}/withdraw", response_class=HTMLResponse)
    async def withdraw(
        request: Request, user: Counsellor, consent_id: str, form: CheckedForm
    ) -> Response:
        done = await web.intake.post(_office(user), f"/consents/{consent_id}/withdraw")
        return RedirectResponse(f"/office/requests/{done['request_id']}", status_code=303)

    # --- the ombudsperson -------------------------------------------------------------------

    @app.get("/audit", response_class=HTMLResponse)
    async def audit_overview(
        request: Request, user: Ombudsperson, agency: str = "", state: str = ""
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

    @app.get("/audit/referrals/{referral_id}", response_class=HTMLResponse)
    async def audit_trail(request: Request, user: Ombudsperson, referral_id: str) -> Response:
        trail = await web.audit.get(f"/referrals/{referral_id}/trail")
        return render(request, "audit/trail.html", user, referral_id=referral_id, trail=trail)

    @app.get("/audit/answer-times", response_class=HTMLResponse)
    async def audit_answer_times(request: Request, user: Ombudsperson) -> Response:
        rows = await web.audit.get("/agencies/answer-times")
        return render(request, "audit/answer_times.html", user, rows=rows)

    @app.get("/audit/overdue", response_class=HTMLResponse)
    async def audit_overdue(request: Request, user: Ombudsperson) -> Response:
        return render(request, "audit/overdue.html", user, overdue=await web.audit.get("/overdue"))

    @app.get("/audit/withdrawals", response_class=HTMLResponse)
    async def audit_withdrawals(request: Request, user: Ombudsperson) -> Response:
        return render(
            request, "audit/withdrawals.html", user, rows=await web.audit.get("/withdrawals")
        )

    @app.get("/audit/anomalies", response_class=HTMLResponse)
    async def audit_anomalies(request: Request, user: Ombudsperson) -> Response:
        return render(
            request, "audit/anomalies.html", user, anomalies=await web.audit.get("/anomalies")
        )

    @app.get("/audit/integrity", response_class=HTMLResponse)
    async def integrity_page(request: Request, user: Ombudsperson) -> Response:
        return render(request, "audit/integrity.html", user, verdict=None)

    @app.post("/audit/integrity", response_class=HTMLResponse)
    async def verify_log(request: Request, user: Ombudsperson, _form: CheckedForm) -> Response:
        seen = web.seen_heads.last() if web.seen_heads else None
        doc = await web.audit.get("/export", **({"since": seen.size} if seen else {}))
        verdict = check_export(doc, web.audit_key(), seen)
        if verdict.ok and web.seen_heads:
            found = export.parse(doc)
            web.seen_heads.keep(
                SeenHead.of(found.head, key_in_effect(web.audit_key(), found.rotations))
            )
        return render(request, "audit/integrity.html", user, verdict=verdict)

    @app.get("/audit/export")
    async def download_export(_user: Ombudsperson) -> Response:
        response = await web.audit.call("GET", "/export")
        stamp = web.now().strftime("%Y%m%dT%H%M%SZ")
        return Response(
            response.content,
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="wegweiser-audit-{stamp}.json"'},
        )

    return app


@dataclass(frozen=True)
class Verification:
    """What checking the log from the page found."""

    ok: bool
    message: str
    size: int
    root: str
    signed_at: str
    first_bad: int | None
    key_pinned: bool
    kind: str | None = None


class SeenHeads:
    """The head the web app's check accepted last, kept in its own file: a log rolled back or
    rewritten since is caught even if the operator re-signs it (they would need the key too)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def last(self) -> SeenHead | None:
        try:
            return SeenHead(**json.loads(self.path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def keep(self, head: SeenHead) -> None:
        write_private(self.path, json.dumps(asdict(head)))


def check_export(
    doc: dict[str, Any], pinned: Ed25519PublicKey, seen: SeenHead | None = None
) -> Verification:
    """Verify an export against the audit key this installation pinned, not the key the
    export carries (a forger who re-signs the log with their own key is caught too), and
    against the head this check accepted before."""
    found = export.parse(doc)
    verdict = export.verify(found, pinned, seen)
    return Verification(
        ok=verdict.ok,
        message=verdict.message,
        size=found.head.size,
        root=found.head.root,
        signed_at=found.head.time,
        first_bad=verdict.first_bad,
        key_pinned=verdict.kind != "wrong-key",
        kind=verdict.kind,
    )


def _office(user: SignedIn) -> str:
    assert user.office_id is not None  # a counsellor always has an office (accounts.add_user)
    return user.office_id


def _local(target: str) -> str:
    """Only paths on this site, so a link cannot send a signed-in user elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _address(request: Request) -> str:
    """The client's address as the server sees it (the web app is served directly, not behind
    a proxy; behind one, this would be the proxy's address)."""
    return request.client.host if request.client else ""


def _language(request: Request) -> str:
    return i18n.choose(request.cookies.get(LANG_COOKIE))

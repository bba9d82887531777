"""The web app: sign-in, the counsellor's pages (/office), the ombudsperson's (/audit) and the
administrator's (/admin), one router each in `routes/`. Every route states its role; the
server refuses the other roles and anonymous users.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from services.consent import texts
from services.consent.texts import PersonLanguage
from services.web.clients import Refused, Unavailable
from services.web.pages import (
    TEMPLATES,
    BadForm,
    NotSignedIn,
    Templates,
    Unsupported,
    Web,
    WrongRole,
    known_user,
    render,
)
from services.web.routes import admin, audit, office, person, report, signin
from wegweiser.platform.http_headers import add_security_headers

__all__ = ["Web", "create_app"]


def create_app(web: Web) -> FastAPI:
    app = FastAPI(title="Wegweiser web app", version="1", docs_url=None, redoc_url=None)
    app.state.web = web
    app.state.templates = Templates()
    app.mount("/static", StaticFiles(directory=TEMPLATES.with_name("static")), name="static")
    add_security_headers(app)
    for routes in (signin, office, audit, admin, person, report):
        app.include_router(routes.router)

    @app.get("/robots.txt", include_in_schema=False)
    async def robots() -> Response:
        """Nothing here is for a search engine: the person's pages least of all."""
        return PlainTextResponse("User-agent: *\nDisallow: /\n")

    @app.exception_handler(Unsupported)
    async def unsupported(request: Request, exc: Unsupported) -> Response:
        language = PersonLanguage(texts.BINDING)
        return person.render(request, "person/gone.html", language, 422, unsupported=str(exc))

    @app.exception_handler(NotSignedIn)
    async def to_sign_in(request: Request, _exc: NotSignedIn) -> Response:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)

    @app.exception_handler(WrongRole)
    async def wrong_role(request: Request, exc: WrongRole) -> Response:
        user = await known_user(request)
        return render(request, "error.html", user, 403, problem="role", needed=exc.needed.value)

    @app.exception_handler(BadForm)
    async def bad_form(request: Request, _exc: BadForm) -> Response:
        return render(request, "error.html", await known_user(request), 403, problem="csrf")

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        user = await known_user(request)
        status = exc.status if 400 <= exc.status < 500 else 502
        return render(request, "error.html", user, status, problem="refused", detail=exc.detail)

    @app.exception_handler(Unavailable)
    async def unavailable(request: Request, exc: Unavailable) -> Response:
        user = await known_user(request)
        return render(request, "error.html", user, 503, problem="unavailable", detail=str(exc))

    return app

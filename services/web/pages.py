"""What every page of the web app shares: what the composition root hands the routes (`Web`),
who may see a page (one guard per role), the CSRF check of every form, and rendering a
template in the reader's language.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from schemas.vocabulary import CLOSED_STATES, DeletionKind
from services.consent import texts
from services.consent.texts import PersonLanguage
from services.web import accounts, i18n, labels
from services.web.accounts import Role, SignedIn
from services.web.application import WebApplication

COOKIE, LANG_COOKIE, LOGIN_CSRF = "wegweiser_session", "wegweiser_lang", "wegweiser_login"
TEMPLATES = Path(__file__).with_name("templates")
AREA = {Role.COUNSELLOR: "/office", Role.OMBUDSPERSON: "/audit", Role.ADMINISTRATOR: "/admin"}
"""The part of the site that is each role's."""
HOME = {
    Role.COUNSELLOR: "/office/referrals",
    Role.OMBUDSPERSON: "/audit",
    Role.ADMINISTRATOR: "/admin/agencies",
}


@dataclass
class Web:
    """What the pages need, made by the composition root: the application and how the pages
    show it."""

    application: WebApplication
    offices: dict[str, str]
    """The offices' names, by id, for the counsellor's header."""
    secure_cookies: bool = False
    public_url: str | None = None
    """Where people reach the web app: the base of the link on a person's receipt."""


class NotSignedIn(Exception):
    """No live session: the browser is sent to sign in."""


class WrongRole(Exception):
    """Signed in, but the page belongs to another role."""

    def __init__(self, needed: Role) -> None:
        self.needed = needed


class BadForm(Exception):
    """The form's CSRF token is missing or stale."""


def web_of(request: Request) -> Web:
    return request.app.state.web  # type: ignore[no-any-return]


def application_of(request: Request) -> WebApplication:
    return web_of(request).application


WebDep = Annotated[Web, Depends(web_of)]
App = Annotated[WebApplication, Depends(application_of)]
"""The application object, for a route to call its one method."""


async def current_user(request: Request) -> SignedIn | None:
    """The user of the request's live session, if any."""
    return await application_of(request).signed_in(request.cookies.get(COOKIE))


async def known_user(request: Request) -> SignedIn | None:
    """The user a role guard already admitted for this request, else the session's."""
    return getattr(request.state, "user", None) or await current_user(request)


def role(needed: Role, *also: Role) -> Callable[..., Awaitable[SignedIn]]:
    """A dependency that admits only signed-in users of the `needed` role (or `also`)."""

    async def guard(request: Request) -> SignedIn:
        user = await current_user(request)
        if user is None:
            raise NotSignedIn()
        request.state.user = user  # for the error page too
        if user.role is not needed and user.role not in also:
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
Administrator = Annotated[SignedIn, Depends(role(Role.ADMINISTRATOR))]
Monitoring = Annotated[SignedIn, Depends(role(Role.COUNSELLOR, Role.OMBUDSPERSON))]
"""Who reads the county's monitoring report: the offices and the ombudsperson."""
CheckedForm = Annotated[Any, Depends(checked_form)]


class Templates:
    """The templates, one Jinja environment per language with its catalogue installed."""

    def __init__(self) -> None:
        self.envs = {language: self._environment(language) for language in i18n.LANGUAGES}

    @staticmethod
    def _environment(language: str) -> Environment:
        env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            extensions=["jinja2.ext.i18n"],
        )
        env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
        env.globals.update(
            labels=labels,
            language=language,
            languages=i18n.LANGUAGES,
            closed_states=CLOSED_STATES,
            deletion_confirmed=DeletionKind.CONFIRMED,
        )
        env.filters["when"] = lambda v: i18n.when(v, language)
        return env


def render(
    request: Request, name: str, user: SignedIn | None, status: int = 200, **ctx: Any
) -> HTMLResponse:
    """The template `name` in the reader's language, for `user`."""
    web = web_of(request)
    templates: Templates = request.app.state.templates
    language = language_of(request)
    here = str(request.url.path) + ("?" + request.url.query if request.url.query else "")
    html = (
        templates.envs[language]
        .get_template(name)
        .render(
            user=user,
            path=request.url.path,
            here=quote(here),
            office_name=web.offices.get(user.office_id or "", "") if user else "",
            age=lambda v: i18n.age(v, web.application.now(), language),
            duration=lambda seconds: i18n.duration(seconds, language),
            reason_detail=lambda reason: labels.reason_detail(
                reason, i18n.translations(language).gettext, language
            ),
            **ctx,
        )
    )
    return HTMLResponse(html, status_code=status)


class Unsupported(Exception):
    """A language the person's texts do not exist in."""


def person_language(language: str | None, fallback: str = texts.BINDING) -> PersonLanguage:
    """The language asked for (`Unsupported` if there is no such text), else `fallback`."""
    if language is None:
        return PersonLanguage(fallback)
    if language not in set(PersonLanguage):
        raise Unsupported(language)
    return PersonLanguage(language)


def client_address(request: Request) -> str:
    """The client's address: the connection's, or behind one of `web_trusted_proxies` the
    address that proxy says it forwards for (uvicorn's proxy headers)."""
    return request.client.host if request.client else ""


def language_of(request: Request) -> str:
    return i18n.choose(request.cookies.get(LANG_COOKIE))


def local(target: str) -> str:
    """Only paths on this site, so a link cannot send a signed-in user elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") else "/"

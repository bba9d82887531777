"""The person's own page (/p/<token>), in their language: no account; the token in the link
from their receipt is the only key, and the web app passes it on to intake for each call.

What keeps the page to its person:
- intake keeps only the token's hash, and every wrong token (unknown, replaced, erased,
  malformed) gets the same page, 404; a malformed one never reaches intake;
- failed tokens are counted per client address (`application.LINKS`; behind a
  reverse proxy the address it forwards for, see `web_trusted_proxies`): after ten, the
  address waits, doubling up to 15 minutes, and no lookup is made. A token of 128 random bits
  cannot be guessed anyway: this keeps anyone from trying at volume;
- the pages are not indexed (X-Robots-Tag, a robots meta and /robots.txt) and send no
  referrer anywhere (the link would be in it); they are never cached, and the web app logs no
  request paths (a reverse proxy in front must not either: README, Operations);
- the one form (withdraw) needs no session CSRF token: a page of another site cannot know the
  token to post to, and a post the browser marks as from another site is refused anyway;
- when intake cannot answer, the person gets a page saying so in their language, never an
  office's error page or what went wrong inside.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Any

from babel import Locale, UnknownLocaleError
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.consent import texts
from services.consent.texts import SCRIPTS, PersonLanguage
from services.web.application import (
    IntakeDown,
    LinkThrottled,
    NoSuchLink,
    PersonFound,
    WebApplication,
)
from services.web.pages import App, client_address, person_language

router = APIRouter(prefix="/p")

HEADERS = {"X-Robots-Tag": "noindex, nofollow, noarchive", "Referrer-Policy": "no-referrer"}


def render(
    request: Request, name: str, language: PersonLanguage, status: int = 200, **ctx: Any
) -> HTMLResponse:
    """A page for the person, in `language`: its texts from the person's catalogue only."""
    env = request.app.state.templates.envs[texts.BINDING]
    html = env.get_template(name).render(
        t=texts.catalogue(language),
        lang=language.value,
        rtl=SCRIPTS[language].rtl,
        draft=texts.catalogue(language).review.draft,
        languages=[(code.value, SCRIPTS[code].endonym) for code in PersonLanguage],
        local_at=local_at,
        **ctx,
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _gone(
    request: Request, asked: PersonLanguage, outcome: LinkThrottled | NoSuchLink | IntakeDown
) -> Response:
    """The page that says there is no page, or to wait, or that it cannot be shown now (never
    an office's error page, nor what went wrong inside)."""
    if isinstance(outcome, LinkThrottled):
        page = render(request, "person/gone.html", asked, 429, throttled=True)
        page.headers["Retry-After"] = str(int(outcome.retry_after.total_seconds()) + 1)
        return page
    if isinstance(outcome, IntakeDown):
        return render(request, "person/gone.html", asked, 503, unavailable=True)
    return render(request, "person/gone.html", asked, 404, throttled=False)


@router.get("/{token}", response_class=HTMLResponse)
async def page(request: Request, app: App, token: str, language: str | None = None) -> Response:
    return await _page(request, app, token, language, "person/page.html")


@router.get("/{token}/withdraw", response_class=HTMLResponse)
async def confirm_withdrawal(
    request: Request, app: App, token: str, language: str | None = None
) -> Response:
    return await _page(request, app, token, language, "person/withdraw.html")


async def _page(
    request: Request, app: WebApplication, token: str, language: str | None, template: str
) -> Response:
    """The person's page as `template` shows it, in the language asked for, else the one the
    office chose when it issued the link."""
    asked = person_language(language)
    outcome = await app.person_page(token, client_address(request))
    if not isinstance(outcome, PersonFound):
        return _gone(request, asked, outcome)
    shown = person_language(language, outcome.found["language"])
    return render(request, template, shown, page=outcome.found, token=token, **_words(shown))


@router.post("/{token}/withdraw", response_class=HTMLResponse)
async def withdraw(request: Request, app: App, token: str, language: str | None = None) -> Response:
    asked = person_language(language)
    if not _from_this_site(request):
        return render(request, "person/gone.html", asked, 403, throttled=False)
    outcome = await app.person_withdraws(token, client_address(request))
    if not isinstance(outcome, PersonFound):
        return _gone(request, asked, outcome)
    shown = person_language(language, outcome.found["language"])
    return RedirectResponse(f"/p/{token}?language={shown.value}", status_code=303, headers=HEADERS)


@router.get("/{token}/data", response_class=HTMLResponse)
async def my_data(request: Request, app: App, token: str, language: str | None = None) -> Response:
    asked = person_language(language)
    outcome = await app.person_data(token, client_address(request))
    if not isinstance(outcome, PersonFound):
        return _gone(request, asked, outcome)
    shown = person_language(language, outcome.found["language"])
    return render(
        request, "person/data.html", shown, data=outcome.found, token=token, **_words(shown)
    )


@router.get("/{token}/data.json")
async def my_data_file(request: Request, app: App, token: str) -> Response:
    outcome = await app.person_data(token, client_address(request))
    if not isinstance(outcome, PersonFound):
        return _gone(request, PersonLanguage.DE, outcome)
    name = f"wegweiser-my-data-{outcome.found['consent']['consentReceiptID']}.json"
    return Response(
        json.dumps(outcome.found, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
    )


def _from_this_site(request: Request) -> bool:
    """Whether a post comes from this site's own page, as far as the browser says: its
    Sec-Fetch-Site, else its Origin (which is "null" under the pages' no-referrer policy)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in {"same-origin", "none"}
    origin = request.headers.get("origin")
    return origin in {None, "null", f"{request.url.scheme}://{request.url.netloc}"}


@cache
def _words(language: PersonLanguage) -> dict[str, Any]:
    """Every code the pages show, as the person's words (never the code itself)."""
    t = texts.catalogue(language)
    return {
        "states": {code.value: t(text) for code, text in texts.STATES.items()},
        "deletions": {code.value: t(text) for code, text in texts.DELETIONS.items()},
        "categories": {code.value: t(text) for code, text in texts.CATEGORIES.items()},
        "kinds": {code.value: t(text) for code, text in texts.KINDS.items()},
        "purposes": {code.value: t(text) for code, text in texts.PURPOSES.items()},
        "needs": {code.value: t(text) for code, text in texts.NEEDS.items()},
        "residence": {code.value: t(text) for code, text in texts.RESIDENCE.items()},
        "channels": {code.value: t(text) for code, text in texts.CHANNELS.items()},
        "language_name": language_name,
    }


def local_at(moment: str | datetime) -> str:
    """A time of intake's answer (ISO 8601) on the person's clock, with its zone."""
    return texts.local_time(datetime.fromisoformat(moment) if isinstance(moment, str) else moment)


def language_name(code: str) -> str:
    """A language as it calls itself (its endonym), whatever language the page is in."""
    if code in set(PersonLanguage):
        return SCRIPTS[PersonLanguage(code)].endonym
    try:
        return Locale.parse(code.replace("-", "_")).get_display_name(code) or code
    except (ValueError, UnknownLocaleError):
        return code

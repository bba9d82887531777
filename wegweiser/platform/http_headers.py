"""The security headers of every page Wegweiser serves to a browser (the web app, the
gateway's portal): scripts, styles and forms from the same origin only, never framed, no
referrer to other sites, no content sniffing, and pages (they show case data) never cached;
only what is under `/static/` may be."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
CACHEABLE = "/static/"


def add_security_headers(app: FastAPI) -> None:
    """Every response of `app` carries the headers, unless a route set its own."""

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith(CACHEABLE):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

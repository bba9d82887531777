"""Intake's HTTP API for the counselling office (OpenAPI at /docs and /openapi.json)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from starlette.middleware.trustedhost import TrustedHostMiddleware

from schemas.queries import ResolveAgencies
from schemas.vocabulary import Need, ReferralStatus
from services.consent.rules import ConsentViolation, covers_recipient
from services.intake import access, handlers, receipt
from services.intake.api_models import (
    CancelIn,
    ReferralCreate,
    ReferralPublic,
    RequestCreate,
    RequestDetail,
    RequestPublic,
    Suggestion,
    SuggestionsPublic,
    TrailItem,
    WithdrawalPublic,
)
from services.intake.directory_client import DirectoryClient, DirectoryUnavailable
from services.intake.store import ReferralView
from services.intake.vault import PersonErased
from wegweiser.platform.db import as_utc


@dataclass
class Deps:
    """What the routes need; filled in by the composition root once connections exist.

    One intake serves one or more counselling offices (`contexts`, by office id); a call acts
    for the office its bearer token was issued for (see access.py)."""

    run: Callable[[Callable[..., Any]], Any]
    read: Callable[[Callable[..., Any]], Any]  # a unit of work that only reads
    directory: DirectoryClient
    wake_relay: Callable[[], None]
    contexts: dict[str, handlers.Context]
    default_office: str
    tokens: access.Tokens
    revocations: access.Revocations


def deps(request: Request) -> Deps:
    found: Deps | None = getattr(request.app.state, "deps", None)
    if found is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "intake is starting")
    return found


DepsDep = Annotated[Deps, Depends(deps)]


bearer = HTTPBearer(
    auto_error=False,
    scheme_name="office token",
    description="a token from POST /token (OAuth 2.0 client credentials)",
)
basic = HTTPBasic(auto_error=False, scheme_name="client credential")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="intake"'})


async def office(
    d: DepsDep, given: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> handlers.Context:
    """The office a call acts for: its bearer token's; every query and command is scoped to
    it. 401 without a valid token, or with one whose client has been revoked."""
    if given is None:
        raise _unauthorized("a bearer token is required: get one from POST /token")
    try:
        claims = d.tokens.check(given.credentials)
    except access.Refused as exc:
        raise _unauthorized(str(exc)) from None
    if await d.revocations.is_revoked(claims.client_id):
        raise _unauthorized(f"client {claims.client_id} is revoked")
    ctx = d.contexts.get(claims.office)
    if ctx is None:
        raise HTTPException(403, f"office {claims.office!r} is not served by this intake")
    return ctx


OfficeDep = Annotated[handlers.Context, Depends(office)]


def create_app(
    allowed_hosts: list[str] | None = None, allowed_origins: frozenset[str] = frozenset()
) -> FastAPI:
    """The intake HTTP app; `app.state.deps` must be set before it serves requests.

    Only `allowed_hosts` may appear in the Host header (a page that rebinds its own DNS name
    to this address cannot read the API), and a call from a browser page of any origin not in
    `allowed_origins` is refused before it does anything."""
    app = FastAPI(
        title="Wegweiser intake",
        version="1",
        description="Record requests with the person's consent, see suggested agencies, "
        "send referrals and follow them. Every route but /health and /token needs a bearer "
        "token for one office: POST /token with the client credential from `wegweiser "
        "api-client add` (HTTP Basic, grant_type=client_credentials, scope=office:<id>).",
    )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or ["*"])

    @app.middleware("http")
    async def same_origin_only(request: Request, call_next: Any) -> Any:
        origin = request.headers.get("origin")
        if origin is not None and origin not in allowed_origins:
            return JSONResponse({"detail": f"calls from {origin} are refused"}, 403)
        return await call_next(request)

    @app.get("/health")
    async def health(d: DepsDep) -> dict[str, Any]:
        return {"status": "ok"}

    @app.post("/token", response_model=None)
    async def token(
        d: DepsDep,
        given: Annotated[HTTPBasicCredentials | None, Depends(basic)],
        grant_type: Annotated[str | None, Form()] = None,
        scope: Annotated[str | None, Form()] = None,
    ) -> JSONResponse:
        """A bearer token for one office (OAuth 2.0 client credentials, RFC 6749 §4.4; the
        client authenticates with HTTP Basic). Errors as in RFC 6749 §5.2."""
        if grant_type != "client_credentials":
            return _oauth_error("unsupported_grant_type", "only client_credentials", 400)
        if given is None:
            return _oauth_error("invalid_client", "authenticate with HTTP Basic", 401)
        try:
            client = await d.read(lambda s: access.authenticate(s, given.username, given.password))
            chosen = access.office_for(client, scope)
        except access.Refused as exc:
            return _oauth_error(exc.code, str(exc), 401 if exc.code == "invalid_client" else 400)
        issued, lifetime = d.tokens.issue(client.client_id, chosen)
        answer = {
            "access_token": issued,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": f"{access.SCOPE_PREFIX}{chosen}",
        }
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    @app.post("/requests", status_code=201)
    async def record_request(body: RequestCreate, d: DepsDep, ctx: OfficeDep) -> RequestPublic:
        row, consent_id = await d.run(lambda s: handlers.record_request(ctx, s, body))
        d.wake_relay()
        return RequestPublic(
            request_id=row.id,
            consent_id=consent_id,
            needs=body.needs,
            urgency=row.urgency,
            recorded_at=row.recorded_at,
        )

    @app.get("/requests/{request_id}")
    async def get_request(request_id: str, d: DepsDep, ctx: OfficeDep) -> RequestDetail:
        """A request with its person's data (for the office only) and its consent."""
        found = await _read(d, lambda s: handlers.request_detail(ctx, s, request_id))
        return RequestDetail.model_validate(found)

    @app.get("/requests/{request_id}/suggestions")
    async def suggestions(
        request_id: str, d: DepsDep, ctx: OfficeDep, need: Need | None = None
    ) -> SuggestionsPublic:
        request = await _read(d, lambda s: handlers.load_request(ctx, s, request_id))
        person, terms = request.person, request.terms
        out, excluded = [], []
        for n in [need] if need else person.needs:
            query = ResolveAgencies(
                need=n,
                languages=tuple(person.languages),
                municipality=person.municipality,
                postcode=person.postcode,
                age=person.age,
                urgency=request.row.urgency,
            )
            answer = await _ask(d.directory.resolve(query))
            out += [
                Suggestion(
                    need=n,
                    candidate=c,
                    consent_covers=covers_recipient(terms, c.agency.agency_id, c.agency.kind),
                )
                for c in answer.candidates
            ]
            excluded += answer.excluded
        return SuggestionsPublic(suggestions=out, excluded=excluded)

    @app.post("/requests/{request_id}/referrals", status_code=202)
    async def send_referral(
        request_id: str, body: ReferralCreate, d: DepsDep, ctx: OfficeDep, response: Response
    ) -> ReferralPublic:
        await _read(d, lambda s: handlers.load_request(ctx, s, request_id))
        agency = await _ask(d.directory.lookup(body.agency_id))
        if agency is None:
            raise HTTPException(422, f"unknown agency {body.agency_id!r}: not in the directory")
        if not agency.active:
            raise HTTPException(422, f"agency {body.agency_id!r} is not active")
        view, created = await _call(
            d, lambda s: handlers.request_referral(ctx, s, request_id, agency)
        )
        if created:
            d.wake_relay()
        else:
            response.status_code = 200
        return _public(view, [])

    @app.get("/requests/{request_id}/referrals")
    async def list_referrals(request_id: str, d: DepsDep, ctx: OfficeDep) -> list[ReferralPublic]:
        views = await _read(d, lambda s: handlers.referrals_of(ctx, s, request_id))
        return [_public(v, []) for v in views]

    @app.get("/referrals")
    async def office_referrals(
        d: DepsDep,
        ctx: OfficeDep,
        status: ReferralStatus | None = None,
        overdue: bool = False,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[ReferralPublic]:
        """The office's referrals, newest first; `overdue` keeps only those overdue."""
        views = await d.read(
            lambda s: handlers.office_referrals(ctx, s, status, overdue=overdue, limit=limit)
        )
        return [_public(v, [], reference) for v, reference in views]

    @app.get("/referrals/{referral_id}")
    async def get_referral(referral_id: str, d: DepsDep, ctx: OfficeDep) -> ReferralPublic:
        def query(s: Any) -> ReferralPublic:
            view = handlers.load_referral(s, ctx.office_id, referral_id)
            return _public(view, handlers.trail(s, referral_id))

        return await _read(d, query)

    @app.post("/referrals/{referral_id}/cancel", status_code=202)
    async def cancel(
        referral_id: str, body: CancelIn, d: DepsDep, ctx: OfficeDep
    ) -> ReferralPublic:
        view = await _call(
            d, lambda s: handlers.request_cancellation(ctx, s, referral_id, body.reason)
        )
        d.wake_relay()
        return _public(view, [])

    @app.get("/consents/{consent_id}/receipt", response_model=None)
    async def consent_receipt(
        consent_id: str,
        d: DepsDep,
        ctx: OfficeDep,
        language: Literal["de", "en"] = "de",
        format: Literal["text", "json"] = "text",
    ) -> PlainTextResponse | dict[str, Any]:
        """The receipt to hand to the person: what is shared with whom, how to withdraw."""
        terms, withdrawn_at = await _read(d, lambda s: handlers.load_consent(ctx, s, consent_id))
        if format == "json":
            return receipt.receipt_json(terms, withdrawn_at)
        return PlainTextResponse(receipt.receipt_text(terms, language))

    @app.post("/consents/{consent_id}/withdraw")
    async def withdraw(consent_id: str, d: DepsDep, ctx: OfficeDep) -> WithdrawalPublic:
        """Withdraw a consent: open referrals are cancelled, every agency that received data
        is asked to delete it, and the person's data in intake is erased."""
        done = await _call(d, lambda s: handlers.withdraw_consent(ctx, s, consent_id))
        d.wake_relay()
        assert done.consent.withdrawn_at is not None
        return WithdrawalPublic(
            consent_id=consent_id,
            request_id=done.consent.request_id,
            withdrawn_at=as_utc(done.consent.withdrawn_at),
            person_data_erased=done.person_data_erased,
            referrals=[_public(v, []) for v in done.referrals],
        )

    return app


async def _read(d: Deps, fn: Callable[..., Any]) -> Any:
    """`_call` for a unit of work that only reads."""
    return await _call(d, fn, d.read)


async def _call(
    d: Deps, fn: Callable[..., Any], run: Callable[[Callable[..., Any]], Any] | None = None
) -> Any:
    """Run a unit of work and map domain errors to HTTP (nothing is written on error)."""
    try:
        return await (run or d.run)(fn)
    except handlers.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except handlers.Forbidden as exc:
        raise HTTPException(403, str(exc)) from None
    except handlers.Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except ConsentViolation as exc:
        raise HTTPException(422, f"{exc.code}: {exc}") from None
    except handlers.NotSealable as exc:
        raise HTTPException(422, str(exc)) from None
    except PersonErased as exc:
        raise HTTPException(410, str(exc)) from None


def _oauth_error(code: str, description: str, status_code: int) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status_code == 401:
        headers["WWW-Authenticate"] = 'Basic realm="intake"'
    return JSONResponse({"error": code, "error_description": description}, status_code, headers)


async def _ask(awaitable: Any) -> Any:
    try:
        return await awaitable
    except DirectoryUnavailable as exc:
        raise HTTPException(503, str(exc)) from None


def _public(
    view: ReferralView, trail: list[Any], client_reference: str | None = None
) -> ReferralPublic:
    return ReferralPublic(
        referral_id=view.id,
        request_id=view.request_id,
        client_reference=client_reference,
        created_at=as_utc(view.created_at),
        updated_at=as_utc(view.updated_at),
        agency_id=view.agency_id,
        agency_name=view.agency_name,
        status=view.status,
        reason=view.reason,
        problem=view.problem,
        overdue=view.overdue,
        deletion=view.deletion,
        trail=[
            TrailItem(
                kind=t.kind,
                status=t.status,
                version=t.version,
                reason=t.reason,
                occurred_at=as_utc(t.occurred_at),
            )
            for t in trail
        ],
    )

"""Intake's HTTP API for the counselling office (OpenAPI at /docs and /openapi.json)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response, status
from fastapi.responses import PlainTextResponse

from schemas.queries import ResolveAgencies
from schemas.vocabulary import Need, ReferralStatus
from services.consent.rules import ConsentViolation, covers_recipient
from services.intake import handlers, receipt
from services.intake.api_models import (
    OFFICE_HEADER,
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

    One intake serves one or more counselling offices (`contexts`, by office id); a request
    names its office in the X-Wegweiser-Office header, else it is the default office's."""

    run: Callable[[Callable[..., Any]], Any]
    read: Callable[[Callable[..., Any]], Any]  # a unit of work that only reads
    directory: DirectoryClient
    wake_relay: Callable[[], None]
    contexts: dict[str, handlers.Context]
    default_office: str


def deps(request: Request) -> Deps:
    found: Deps | None = getattr(request.app.state, "deps", None)
    if found is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "intake is starting")
    return found


DepsDep = Annotated[Deps, Depends(deps)]


def office(
    d: DepsDep, office_id: Annotated[str | None, Header(alias=OFFICE_HEADER)] = None
) -> handlers.Context:
    """The office a request acts for; every query and command is scoped to it."""
    chosen = office_id or d.default_office
    ctx = d.contexts.get(chosen)
    if ctx is None:
        raise HTTPException(403, f"office {chosen!r} is not served by this intake")
    return ctx


OfficeDep = Annotated[handlers.Context, Depends(office)]


def create_app() -> FastAPI:
    """The intake HTTP app; `app.state.deps` must be set before it serves requests."""
    app = FastAPI(
        title="Wegweiser intake",
        version="1",
        description="Record requests with the person's consent, see suggested agencies, "
        "send referrals and follow them.",
    )

    @app.get("/health")
    async def health(d: DepsDep) -> dict[str, Any]:
        return {"status": "ok", "office_id": d.default_office, "offices": sorted(d.contexts)}

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
    except handlers.Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except ConsentViolation as exc:
        raise HTTPException(422, f"{exc.code}: {exc}") from None
    except handlers.NotSealable as exc:
        raise HTTPException(422, str(exc)) from None
    except PersonErased as exc:
        raise HTTPException(410, str(exc)) from None


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

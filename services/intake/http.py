"""Intake's HTTP API for the counselling office (OpenAPI at /docs and /openapi.json).

Each route decodes, calls one method of `application.Intake` and maps the outcome; the
refusals of the domain become status codes in one place (`refusal`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import (
    APIKeyHeader,
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.middleware.trustedhost import TrustedHostMiddleware

from schemas.vocabulary import Need, ReferralStatus
from services.consent.rules import ConsentViolation
from services.consent.texts import PersonLanguage
from services.intake import access, receipt
from services.intake.admission import Inadmissible
from services.intake.api_models import (
    CancelIn,
    PersonData,
    PersonLinkCreate,
    PersonLinkIssued,
    PersonPage,
    PlanCancel,
    PlanCreate,
    PlanPublic,
    ReceiptDocument,
    ReferralCreate,
    ReferralPublic,
    RequestCreate,
    RequestDetail,
    RequestPublic,
    SuggestionsPublic,
    WithdrawalPublic,
)
from services.intake.application import Intake, UnknownAgency
from services.intake.case import NotSendable
from services.intake.directory_client import DirectoryUnavailable
from services.intake.office import Conflict, Forbidden, NotFound, Office
from services.intake.person import UnknownLink
from services.intake.vault import PersonErased
from wegweiser.platform import problems
from wegweiser.platform.problems import documented
from wegweiser.platform.tracing import Tracing

REFUSALS: list[tuple[type[Exception], int, str]] = [
    (NotFound, 404, "not-found"),
    (Forbidden, 403, "forbidden"),
    (Conflict, 409, "conflict"),
    (PersonErased, 410, "person.erased"),
    (UnknownLink, 404, "person.unknown-link"),
    (NotSendable, 422, "agency.not-sendable"),
    (UnknownAgency, 422, "agency.unknown"),
    (ConsentViolation, 422, "consent.not-covered"),
    (Inadmissible, 422, "request.inadmissible"),
    (DirectoryUnavailable, 503, "directory.unavailable"),
]
"""Each refusal of the domain, its status and its code (unless it names a code itself): all
answered as problem details (wegweiser/platform/problems.py)."""


def intake_of(request: Request) -> Intake:
    found: Intake | None = getattr(request.app.state, "intake", None)
    if found is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "intake is starting")
    return found


IntakeDep = Annotated[Intake, Depends(intake_of)]
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="office token",
    description="a token from POST /token (OAuth 2.0 client credentials)",
)
basic = HTTPBasic(auto_error=False, scheme_name="client credential")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="intake"'})


async def caller(
    intake: IntakeDep, given: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Office:
    """The office a call acts for: its bearer token's; every query and command is scoped to
    it. 401 without a valid token, or with one whose client has been revoked."""
    if given is None:
        raise _unauthorized("a bearer token is required: get one from POST /token")
    try:
        return await intake.caller(given.credentials)
    except access.Refused as exc:
        raise _unauthorized(str(exc)) from None


OfficeDep = Annotated[Office, Depends(caller)]
person_token = APIKeyHeader(
    name="X-Person-Token",
    auto_error=False,
    scheme_name="person link",
    description="the token of the person's link (from POST /consents/{id}/person-link)",
)


async def link_token(given: Annotated[str | None, Depends(person_token)]) -> str:
    """The person's token; 401 without one (any token given is looked up: a wrong one is
    refused as `person.unknown-link`, alike for every way it can be wrong)."""
    if not given:
        raise HTTPException(401, "the person's link token is required (X-Person-Token)")
    return given


PersonToken = Annotated[str, Depends(link_token)]


def create_app(
    allowed_hosts: list[str] | None = None,
    allowed_origins: frozenset[str] = frozenset(),
    tracing: Tracing | None = None,
) -> FastAPI:
    """The intake HTTP app; `app.state.intake` must be set before it serves requests.

    Only `allowed_hosts` may appear in the Host header (a page that rebinds its own DNS name
    to this address cannot read the API), and a call from a browser page of any origin not in
    `allowed_origins` is refused before it does anything. With `tracing` on, each request is
    a server span, and the events it makes are in its trace (wegweiser/platform/tracing.py)."""
    app = FastAPIOffline(  # /docs and /redoc from installed files, not a CDN
        title="Wegweiser intake",
        version="1",
        description="Record requests with the person's consent, see suggested agencies, "
        "send referrals and follow them. Every route but /health and /token needs a bearer "
        "token for one office: POST /token with the client credential from `wegweiser "
        "api-client add` (HTTP Basic, grant_type=client_credentials, scope=office:<id>).",
    )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or ["*"])
    problems.install(app, REFUSALS)

    @app.middleware("http")
    async def same_origin_only(request: Request, call_next: Any) -> Any:
        origin = request.headers.get("origin")
        if origin is not None and origin not in allowed_origins:
            return problems.problem(403, f"calls from {origin} are refused", "request.origin")
        return await call_next(request)

    if tracing is not None:
        app.middleware("http")(tracing.http_server)  # outermost of these: refusals are spans too

    @app.get("/health")
    async def health(_intake: IntakeDep) -> dict[str, Any]:
        return {"status": "ok"}

    @app.post(
        "/token",
        response_model=None,
        responses={
            200: {"model": TokenIssued, "description": "a bearer token for one office"},
            400: {"model": OAuthError, "description": "RFC 6749 §5.2: e.g. unsupported_grant_type"},
            401: {"model": OAuthError, "description": "RFC 6749 §5.2: invalid_client"},
            403: documented(403)[403],
        },
    )
    async def token(
        intake: IntakeDep,
        given: Annotated[HTTPBasicCredentials | None, Depends(basic)],
        grant_type: Annotated[str | None, Form()] = None,
        scope: Annotated[str | None, Form()] = None,
    ) -> JSONResponse:
        """A bearer token for one office (OAuth 2.0 client credentials, RFC 6749 §4.4; the
        client authenticates with HTTP Basic). Errors as in RFC 6749 §5.2."""
        if given is None:  # who asks comes first: RFC 6749 §2.3.1
            return _oauth_error("invalid_client", "authenticate with HTTP Basic", 401)
        if grant_type != "client_credentials":
            return _oauth_error("unsupported_grant_type", "only client_credentials", 400)
        try:
            issued = await intake.issue_token(given.username, given.password, scope)
        except access.Refused as exc:
            return _oauth_error(exc.code, str(exc), 401 if exc.code == "invalid_client" else 400)
        answer = {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": f"{access.SCOPE_PREFIX}{issued.office_id}",
        }
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    @app.post("/requests", status_code=201, responses=documented(400, 401, 403, 422, 503))
    async def record_request(
        body: RequestCreate, intake: IntakeDep, office: OfficeDep
    ) -> RequestPublic:
        return await intake.record_request(office, body)

    @app.get("/requests/{request_id}", responses=documented(401, 403, 404, 410))
    async def get_request(request_id: str, intake: IntakeDep, office: OfficeDep) -> RequestDetail:
        """A request with its person's data (for the office only) and its consent."""
        return await intake.request(office, request_id)

    @app.get(
        "/requests/{request_id}/suggestions", responses=documented(401, 403, 404, 410, 422, 503)
    )
    async def suggestions(
        request_id: str, intake: IntakeDep, office: OfficeDep, need: Need | None = None
    ) -> SuggestionsPublic:
        return await intake.suggestions(office, request_id, need)

    @app.post(
        "/requests/{request_id}/referrals",
        status_code=202,
        responses=documented(
            400, 401, 403, 404, 410, 422, 503, also={200: {"description": "sent before: that one"}}
        ),
    )
    async def send_referral(
        request_id: str,
        body: ReferralCreate,
        intake: IntakeDep,
        office: OfficeDep,
        response: Response,
    ) -> ReferralPublic:
        referral, created = await intake.send_referral(office, request_id, body.agency_id)
        if not created:
            response.status_code = 200
        return referral

    @app.get("/requests/{request_id}/referrals", responses=documented(401, 403, 404))
    async def list_referrals(
        request_id: str, intake: IntakeDep, office: OfficeDep
    ) -> list[ReferralPublic]:
        return await intake.referrals_of(office, request_id)

    @app.post(
        "/requests/{request_id}/plans",
        status_code=202,
        responses=documented(400, 401, 403, 404, 409, 410, 422, 503),
    )
    async def send_plan(
        request_id: str, body: PlanCreate, intake: IntakeDep, office: OfficeDep
    ) -> PlanPublic:
        """Send the request to several agencies together, as one plan: all or none."""
        return await intake.send_plan(office, request_id, body.agency_ids)

    @app.get("/requests/{request_id}/plans", responses=documented(401, 403, 404))
    async def list_plans(request_id: str, intake: IntakeDep, office: OfficeDep) -> list[PlanPublic]:
        return await intake.plans_of(office, request_id)

    @app.get("/plans/{plan_id}", responses=documented(401, 403, 404))
    async def get_plan(plan_id: str, intake: IntakeDep, office: OfficeDep) -> PlanPublic:
        return await intake.plan(office, plan_id)

    @app.post(
        "/plans/{plan_id}/cancel", status_code=202, responses=documented(400, 401, 403, 404, 422)
    )
    async def cancel_plan(
        plan_id: str, body: PlanCancel, intake: IntakeDep, office: OfficeDep
    ) -> PlanPublic:
        """Withdraw every open referral of the plan with one reason; those that ended stay."""
        return await intake.cancel_plan(office, plan_id, body.reason)

    @app.get("/referrals", responses=documented(401, 403, 422))
    async def office_referrals(
        intake: IntakeDep,
        office: OfficeDep,
        status: ReferralStatus | None = None,
        overdue: bool = False,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[ReferralPublic]:
        """The office's referrals, newest first; `overdue` keeps only those overdue."""
        return await intake.referrals(office, status, overdue=overdue, limit=limit)

    @app.get("/referrals/{referral_id}", responses=documented(401, 403, 404))
    async def get_referral(
        referral_id: str, intake: IntakeDep, office: OfficeDep
    ) -> ReferralPublic:
        return await intake.referral(office, referral_id)

    @app.post(
        "/referrals/{referral_id}/cancel",
        status_code=202,
        responses=documented(
            400, 401, 403, 404, 409, 422, also={200: {"description": "asked before: as it is"}}
        ),
    )
    async def cancel(
        referral_id: str, body: CancelIn, intake: IntakeDep, office: OfficeDep, response: Response
    ) -> ReferralPublic:
        """Withdraw the referral (202); asked again, while its cancellation is on its way or
        once it is cancelled, the referral as it is (200) and nothing new is asked."""
        referral, asked = await intake.cancel(office, referral_id, body.reason, body.comment)
        if not asked:
            response.status_code = 200
        return referral

    @app.get(
        "/consents/{consent_id}/receipt",
        response_model=None,
        responses=documented(401, 403, 404, 422, also={200: {"content": {"text/plain": {}}}}),
    )
    async def consent_receipt(
        consent_id: str,
        intake: IntakeDep,
        office: OfficeDep,
        language: PersonLanguage = PersonLanguage.DE,
        format: Literal["text", "json", "document"] = "text",
    ) -> PlainTextResponse | dict[str, Any] | ReceiptDocument:
        """The receipt to hand to the person: what is shared with whom, how to withdraw. As
        text; as a document in words to lay out (`document`); or machine-readable (`json`,
        the Kantara Consent Receipt fields)."""
        found = await intake.receipt(office, consent_id, named=format != "json")
        if format == "json":
            return receipt.receipt_json(found.terms, found.withdrawn_at)
        if format == "document":
            return receipt.document(found.terms, language, found.withdrawn_at, found.names)
        return PlainTextResponse(
            receipt.receipt_text(found.terms, language, found.withdrawn_at, found.names)
        )

    @app.post("/consents/{consent_id}/withdraw", responses=documented(401, 403, 404))
    async def withdraw(consent_id: str, intake: IntakeDep, office: OfficeDep) -> WithdrawalPublic:
        """Withdraw a consent: open referrals are cancelled, every agency that received data
        is asked to delete it, and the person's data in intake is erased."""
        return await intake.withdraw(office, consent_id)

    @app.post(
        "/consents/{consent_id}/person-link",
        status_code=201,
        responses=documented(400, 401, 403, 404, 410, 422),
    )
    async def issue_person_link(
        consent_id: str, body: PersonLinkCreate, intake: IntakeDep, office: OfficeDep
    ) -> PersonLinkIssued:
        """A new link to the person's own page, for their receipt; an earlier link of the
        consent stops working. The token is in this answer only."""
        return await intake.issue_person_link(office, consent_id, body.language)

    @app.get("/person", responses=documented(401, 404))
    async def person_page(intake: IntakeDep, token: PersonToken) -> PersonPage:
        """The person's page: what they agreed to, who received what, each referral's state
        and deletion. Called with the person's token, not an office's."""
        return await intake.person_page(token)

    @app.post("/person/withdraw", responses=documented(401, 404))
    async def person_withdraws(intake: IntakeDep, token: PersonToken) -> PersonPage:
        """The person withdraws their consent (as the office's withdrawal does; audited as
        the person's). Again changes nothing."""
        return await intake.withdraw_by_person(token)

    @app.get("/person/data", responses=documented(401, 404))
    async def person_data(intake: IntakeDep, token: PersonToken) -> PersonData:
        """Everything intake holds about the person for this request (GDPR Art. 15, 20)."""
        return await intake.person_data(token)

    return app


class TokenIssued(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str


class OAuthError(BaseModel):
    """An error of the token endpoint, as OAuth 2.0 has it (RFC 6749 §5.2)."""

    error: str
    error_description: str


def _oauth_error(code: str, description: str, status_code: int) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status_code == 401:
        headers["WWW-Authenticate"] = 'Basic realm="intake"'
    return JSONResponse({"error": code, "error_description": description}, status_code, headers)

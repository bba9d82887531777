"""A FHIR agency's endpoint, `/fhir/<agency>/…` (mounted at `/fhir` in the gateway's app):
each route checks the agency's bearer token, decodes, calls one use case and answers with
a FHIR resource, or an OperationOutcome saying precisely what was refused."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.subscription import Subscription
from fhir.resources.R4B.task import Task
from jwcrypto import jwk
from pydantic import ValidationError
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.events import SealedNote
from services.gateway.fhir import resources, search, subscriptions, tasks
from services.gateway.fhir.errors import FhirRefused, invalid
from services.gateway.fhir.store import TaskRow
from wegweiser.platform import problems, sealing
from wegweiser.platform.http_headers import add_security_headers

Run = Callable[[Callable[[Session], Any]], Awaitable[Any]]
R = TypeVar("R", bound=Resource)
LARGEST_BODY = 200_000


def _answer(resource: Resource, status: int = 200, **headers: str) -> Response:
    return Response(
        resources.to_json(resource),
        status_code=status,
        media_type=resources.FHIR_JSON,
        headers=headers,
    )


def _refused(refused: FhirRefused) -> Response:
    outcome = resources.outcome(refused.issue_type, refused.code, str(refused), refused.expression)
    headers = {"WWW-Authenticate": 'Bearer realm="wegweiser"'} if refused.status == 401 else {}
    return _answer(outcome, refused.status, **headers)


async def _parse(request: Request, model: type[R]) -> R:
    """The request body as a FHIR resource of the kind the route takes, or FhirRefused."""
    body = await request.body()
    if len(body) > LARGEST_BODY:
        raise FhirRefused(413, "too-costly", "fhir.too-large", f"over {LARGEST_BODY} bytes")
    kind = model.get_resource_type()
    try:
        parsed = model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0] if exc.errors() else {"loc": (), "msg": "?"}
        where = ".".join(str(p) for p in (kind, *first["loc"]))
        raise FhirRefused(
            400,
            "structure",
            "fhir.unparseable",
            f"not a FHIR R4 {kind}: {where}: {first['msg']}",
            where,
        ) from None
    if parsed.get_resource_type() != kind:  # pragma: no cover - the model checks it first
        raise invalid("fhir.resource-type", f"expected a {kind}")
    return parsed


def _authorised(agency_id: str, request: Request) -> str:
    """The agency of the path, if the request bears its token (else 401, for an unknown agency
    too: whether an agency exists is not told)."""
    admits: Callable[[str, str], bool] = request.app.state.admits
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or not admits(agency_id, token.strip()):
        raise FhirRefused(
            401, "login", "fhir.unauthenticated", "a valid bearer token for this agency"
        )
    return agency_id


Agency = Annotated[str, Depends(_authorised)]


def create_app(
    run: Run,
    admits: Callable[[str, str], bool],
    notifier: subscriptions.Notifier,
    office_keys: Callable[[], dict[str, jwk.JWK]] = dict,
    notify_to: Callable[[str], str | None] = lambda _agency_id: None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FastAPI:
    """`admits(agency, token)`: whether the bearer token is that FHIR agency's (an agency the
    gateway does not serve as FHIR has none); `notify_to(agency)`: the https address the
    directory lists for its notifications (Subscriptions may point there only)."""
    app = FastAPI(title="Wegweiser FHIR endpoint", version="1", openapi_url=None, docs_url=None)
    app.state.admits = admits
    add_security_headers(app)

    @app.exception_handler(FhirRefused)
    async def refused(_request: Request, exc: FhirRefused) -> Response:
        return _refused(exc)

    @app.exception_handler(RequestValidationError)
    async def malformed(_request: Request, exc: RequestValidationError) -> Response:
        return _refused(FhirRefused(400, "invalid", "fhir.request", str(exc.errors()[:1])))

    @app.exception_handler(StarletteHTTPException)
    async def unknown(request: Request, exc: StarletteHTTPException) -> Response:
        answer = _refused(FhirRefused(exc.status_code, "not-supported", "fhir.route", exc.detail))
        if exc.status_code == 405:
            answer.headers["Allow"] = problems.allowed(app, request)
        return answer

    def base(request: Request, agency_id: str) -> str:
        """The agency's FHIR base URL as the client called it (behind the gateway's mount)."""
        url = str(request.url.replace(query=""))
        return url[: url.index(f"/{agency_id}/")] + f"/{agency_id}"

    @app.get("/{agency_id}/metadata")
    async def metadata(_agency_id: Agency) -> Response:
        return _answer(resources.capability_statement(now(), search.PARAMETERS))

    @app.get("/{agency_id}/Task")
    async def search_tasks(agency_id: Agency, request: Request) -> Response:
        terms = search.parse(request.query_params.multi_items())
        rows = await run(lambda s: tasks.search(s, agency_id, terms))
        found = [resources.task(r) for r in rows]
        return _answer(resources.searchset(base(request, agency_id), found))

    @app.get("/{agency_id}/Task/{task_id}")
    async def read_task(agency_id: Agency, task_id: str) -> Response:
        row: TaskRow = await run(lambda s: tasks.owned(s, agency_id, task_id))
        return _answer(resources.task(row), ETag=f'W/"{row.version}"')

    @app.put("/{agency_id}/Task/{task_id}")
    async def update_task(agency_id: Agency, task_id: str, request: Request) -> Response:
        submitted = await _parse(request, Task)

        def seal(comment: str, row: TaskRow) -> SealedNote:
            try:
                return sealing.comment_to_office(
                    comment, row.referral_id, office_keys(), row.office_id
                )
            except sealing.NoOfficeKey as exc:
                raise invalid("fhir.no-office-key", str(exc), "Task.statusReason.text") from None

        if_match = request.headers.get("if-match")
        taken: tasks.Update = await run(
            lambda s: tasks.update(s, agency_id, task_id, submitted, now(), seal, if_match)
        )
        version = taken.task.meta.versionId if taken.task.meta else ""
        return _answer(taken.task, ETag=f'W/"{version}"')

    @app.get("/{agency_id}/ServiceRequest/{referral_id}")
    async def read_service_request(agency_id: Agency, referral_id: str) -> Response:
        row = await run(lambda s: tasks.owned(s, agency_id, referral_id, "ServiceRequest"))
        return _answer(resources.service_request(row))

    @app.get("/{agency_id}/Consent/{consent_id}")
    async def read_consent(agency_id: Agency, consent_id: str) -> Response:
        row = await run(lambda s: tasks.consent_row(s, agency_id, consent_id))
        return _answer(resources.consent(row))

    @app.get("/{agency_id}/Binary/{referral_id}")
    async def read_binary(agency_id: Agency, referral_id: str, request: Request) -> Response:
        row: TaskRow = await run(lambda s: tasks.owned(s, agency_id, referral_id, "Binary"))
        if row.sealed_case is None:
            raise FhirRefused(
                410, "deleted", "fhir.deleted", f"the case of {referral_id} was deleted"
            )
        if resources.JOSE in request.headers.get("accept", ""):
            return Response(row.sealed_case, media_type=resources.JOSE)
        return _answer(resources.binary(row, row.sealed_case))

    @app.post("/{agency_id}/Subscription")
    async def create_subscription(agency_id: Agency, request: Request) -> Response:
        submitted = await _parse(request, Subscription)
        allowed = notify_to(agency_id)
        made = await run(
            lambda s: subscriptions.open_subscription(s, agency_id, submitted, allowed)
        )
        await notifier.handshake(agency_id, made)
        row = await run(lambda s: subscriptions.owned(s, agency_id, made))
        location = f"{base(request, agency_id)}/Subscription/{made}"
        return _answer(subscriptions.resource(row), 201, Location=location)

    @app.get("/{agency_id}/Subscription/{subscription_id}")
    async def read_subscription(agency_id: Agency, subscription_id: str) -> Response:
        row = await run(lambda s: subscriptions.owned(s, agency_id, subscription_id))
        return _answer(subscriptions.resource(row))

    @app.delete("/{agency_id}/Subscription/{subscription_id}", status_code=204)
    async def delete_subscription(agency_id: Agency, subscription_id: str) -> Response:
        await run(lambda s: subscriptions.close(s, agency_id, subscription_id))
        return Response(status_code=204)

    return app

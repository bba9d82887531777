"""A FHIR agency's endpoint, `/fhir/<agency>/…` (mounted at `/fhir` in the gateway's app):
each route checks the agency's bearer token, decodes, calls one use case and answers with
a FHIR resource, or an OperationOutcome saying precisely what was refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.subscription import Subscription
from fhir.resources.R4B.task import Task
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.gateway.application import Gateway
from services.gateway.fhir import resources, search, subscriptions
from services.gateway.fhir.errors import FhirRefused, invalid
from wegweiser.platform import problems
from wegweiser.platform.http_headers import add_security_headers

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


def create_app(gateway: Gateway) -> FastAPI:
    """Each route calls one use case of the gateway (services/gateway/application.py); the
    bearer token is checked against the agencies it serves (`Partners.fhir_admits`)."""
    app = FastAPI(title="Wegweiser FHIR endpoint", version="1", openapi_url=None, docs_url=None)
    app.state.admits = gateway.agencies.fhir_admits
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
        return _answer(resources.capability_statement(gateway.clock(), search.PARAMETERS))

    @app.get("/{agency_id}/Task")
    async def search_tasks(agency_id: Agency, request: Request) -> Response:
        terms = search.parse(request.query_params.multi_items())
        found = [resources.task(r) for r in await gateway.search_tasks(agency_id, terms)]
        return _answer(resources.searchset(base(request, agency_id), found))

    @app.get("/{agency_id}/Task/{task_id}")
    async def read_task(agency_id: Agency, task_id: str) -> Response:
        row = await gateway.task(agency_id, task_id)
        return _answer(resources.task(row), ETag=f'W/"{row.version}"')

    @app.put("/{agency_id}/Task/{task_id}")
    async def update_task(agency_id: Agency, task_id: str, request: Request) -> Response:
        submitted = await _parse(request, Task)
        if_match = request.headers.get("if-match")
        taken = await gateway.update_task(agency_id, task_id, submitted, if_match)
        version = taken.task.meta.versionId if taken.task.meta else ""
        return _answer(taken.task, ETag=f'W/"{version}"')

    @app.get("/{agency_id}/ServiceRequest/{referral_id}")
    async def read_service_request(agency_id: Agency, referral_id: str) -> Response:
        row = await gateway.task(agency_id, referral_id, "ServiceRequest")
        return _answer(resources.service_request(row))

    @app.get("/{agency_id}/Consent/{consent_id}")
    async def read_consent(agency_id: Agency, consent_id: str) -> Response:
        return _answer(resources.consent(await gateway.consent(agency_id, consent_id)))

    @app.get("/{agency_id}/Binary/{referral_id}")
    async def read_binary(agency_id: Agency, referral_id: str, request: Request) -> Response:
        row, sealed = await gateway.sealed_case(agency_id, referral_id)
        if resources.JOSE in request.headers.get("accept", ""):
            return Response(sealed, media_type=resources.JOSE)
        return _answer(resources.binary(row, sealed))

    @app.post("/{agency_id}/Subscription")
    async def create_subscription(agency_id: Agency, request: Request) -> Response:
        row = await gateway.subscribe(agency_id, await _parse(request, Subscription))
        location = f"{base(request, agency_id)}/Subscription/{row.id}"
        return _answer(subscriptions.resource(row), 201, Location=location)

    @app.get("/{agency_id}/Subscription/{subscription_id}")
    async def read_subscription(agency_id: Agency, subscription_id: str) -> Response:
        return _answer(
            subscriptions.resource(await gateway.subscription(agency_id, subscription_id))
        )

    @app.delete("/{agency_id}/Subscription/{subscription_id}", status_code=204)
    async def delete_subscription(agency_id: Agency, subscription_id: str) -> Response:
        await gateway.unsubscribe(agency_id, subscription_id)
        return Response(status_code=204)

    return app

"""Errors of Wegweiser's HTTP APIs in one shape: RFC 9457 problem details
(`application/problem+json`), each with a stable `code` and, for a request that does not
match the API, the field errors (`errors`, as FastAPI names them: loc, msg, type).

A service hands `install` its refusals (exception class, status, code); an exception that
carries a `code` attribute of its own (a consent violation, a refusal to send) keeps it."""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match

MEDIA_TYPE = "application/problem+json"

STATUS_CODES = {
    400: "request.bad",
    401: "auth.required",
    403: "auth.forbidden",
    404: "not-found",
    405: "method.not-allowed",
    409: "conflict",
    410: "gone",
    422: "request.invalid",
    503: "unavailable",
}
"""The code of a problem that names none of its own, by status."""


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """A refused call (RFC 9457)."""

    type: str = Field(default="about:blank", description="no further documentation per type")
    title: str = Field(description="the status's phrase, e.g. Unprocessable Content")
    status: int
    detail: str = Field(description="what went wrong, for people")
    code: str = Field(description="what went wrong, stable, for programs")
    errors: list[FieldError] | None = Field(
        default=None, description="each field that is wrong (status 422)"
    )


def problem(
    status: int,
    detail: str,
    code: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        code=code or STATUS_CODES.get(status, "error"),
        errors=[FieldError.model_validate(e) for e in errors] if errors is not None else None,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status, headers=headers, media_type=MEDIA_TYPE
    )


def documented(
    *statuses: int, also: dict[int | str, dict[str, Any]] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route that may answer these statuses (and `also` these other
    answers), for the OpenAPI document."""
    return (also or {}) | {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {MEDIA_TYPE: {"schema": PROBLEM_REF}},
        }
        for status in statuses
    }


def install(app: FastAPI, refusals: Sequence[tuple[type[Exception], int, str]] = ()) -> None:
    """Every error `app` answers becomes a problem: the request's validation errors, HTTP
    errors, and each of the service's `refusals` (with its status and default code)."""

    async def invalid(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in jsonable_encoder(exc.errors())
        ]
        said = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in errors)
        return problem(422, said or "the request does not match the API", errors=errors)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only the first route's
            headers["Allow"] = allowed(app, request)
        return problem(exc.status_code, str(exc.detail), headers=headers)

    async def unknown_query(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, UnknownQuery)
        return _unknown_problem(exc.names)

    @app.middleware("http")
    async def known_query_only(request: Request, call_next: Any) -> Any:
        """A query parameter the route does not take is a mistake (`?overdu=true`) that
        would otherwise be ignored in silence: 422, naming it. (The routes of an included
        router are not visible here: they check with the `known_query` dependency.)"""
        route = _route(app, request)
        if route is not None:
            unknown = _unknown_query(request, route)
            if unknown:
                return _unknown_problem(unknown)
        return await call_next(request)

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(UnknownQuery, unknown_query)
    for refused, status, code in refusals:
        app.add_exception_handler(refused, _refusal(status, code))
    _document_problems(app)


def _document_problems(app: FastAPI) -> None:
    """The OpenAPI document says what the app answers: every error as a problem (FastAPI
    would document its own validation error body for 422)."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = plain()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name, model in (("Problem", Problem), ("FieldError", FieldError)):
            schemas.setdefault(
                name, model.model_json_schema(ref_template="#/components/schemas/{model}")
            )
        schemas["Problem"].pop("$defs", None)
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                for response in operation.get("responses", {}).values():
                    schema = response.get("content", {}).get("application/json", {}).get("schema")
                    if schema == {"$ref": "#/components/schemas/HTTPValidationError"}:
                        response["content"] = {MEDIA_TYPE: {"schema": PROBLEM_REF}}
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _route(app: FastAPI, request: Request) -> APIRoute | None:
    """The route that will answer the request, if one does."""
    for route in app.routes:
        if isinstance(route, APIRoute) and route.matches(request.scope)[0] is Match.FULL:
            return route
    return None


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route takes, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names


METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed(app: FastAPI, request: Request) -> str:
    """The `Allow` of a 405: every method some route of `app` answers at the request's path,
    an included router's too (asked through Starlette's own matching, which knows them; a
    405 of FastAPI's own names the first route's methods only)."""
    methods = {
        method
        for method in METHODS
        for route in app.routes
        if route.matches({**request.scope, "method": method})[0] is Match.FULL
    }
    return ", ".join(sorted(methods))


class UnknownQuery(Exception):
    """The request names query parameters its route does not take."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


async def known_query(request: Request) -> None:
    """The check of `install`'s middleware as a dependency, for the routes of an included
    router, which the middleware cannot see: `APIRouter(dependencies=[Depends(known_query)])`."""
    route = request.scope.get("route")
    if isinstance(route, APIRoute) and (unknown := _unknown_query(request, route)):
        raise UnknownQuery(unknown)


def _unknown_query(request: Request, route: APIRoute) -> list[str]:
    return sorted(set(request.query_params) - _query_names(route.dependant))


def _unknown_problem(unknown: list[str]) -> JSONResponse:
    errors = [
        {"loc": ["query", name], "msg": "not a parameter of this route", "type": "extra"}
        for name in unknown
    ]
    said = f"unknown query parameter(s): {', '.join(unknown)}"
    return problem(422, said, "request.unknown-parameter", errors=errors)


def _refusal(status: int, code: str) -> Any:
    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        errors = getattr(exc, "errors", None)
        return problem(
            status,
            str(exc),
            getattr(exc, "code", None) or code,
            errors=errors() if callable(errors) else errors,
        )

    return handler

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
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

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
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
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

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return problem(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    for refused, status, code in refusals:
        app.add_exception_handler(refused, _refusal(status, code))


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

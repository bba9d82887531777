"""The HSDS 3.0 read API (Open Referral's openapi.json), so other tools can read the directory.

Read-only and public, as a directory is; it meets Open Referral UK's API profile as its
validator checks it: `GET /` names the HSDS version, the profile and the API's document, every
list is paged in HSDS's envelope (`listing.py`), `modified_after` on /services and
/service_at_locations (where openapi.json has it), every id a list returns can be fetched, and
any origin may read it (CORS `*`, ORUK's rule for browser clients). Lists hold one-to-one fields
unless `full=true`; single records are fully nested. Nothing that places a confidential
location is ever served. An unknown id is a 404 problem, a malformed parameter a 422 naming it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.routing import BaseRoute

from schemas.enrolment import EnrolmentRequest, KeyRotation
from services.directory import enrolment, reads
from services.directory.hsds.records import Assembler, Record
from services.directory.hsds.schema import PROFILE, VERSION
from services.directory.importer import public
from services.directory.listing import (
    ModifiedAfter,
    Page,
    PageRequest,
    Paging,
    chosen,
    page,
)
from services.directory.store import EnrolmentRow
from wegweiser.platform import problems

Current = Callable[[], Awaitable[Assembler]]
Full = Annotated[bool, Query(description="nest related records in each entry")]


def _service_filter(
    search: str | None = None,
    taxonomy_term_id: str | None = None,
    taxonomy_id: str | None = None,
    organization_id: str | None = None,
    modified_after: ModifiedAfter = None,
) -> reads.ServiceFilter:
    return reads.ServiceFilter(
        search, taxonomy_term_id, taxonomy_id, organization_id, modified_after
    )


ServiceFilters = Annotated[reads.ServiceFilter, Depends(_service_filter)]


class Partners(Protocol):
    """The agencies' own side of the directory (`application.AgencyDirectory`)."""

    async def keys_of(self, agency_id: str) -> dict[str, Any] | None: ...
    async def rotate_keys(self, agency_id: str, body: KeyRotation) -> list[str]: ...
    async def request_enrolment(self, body: EnrolmentRequest) -> EnrolmentRow: ...
    async def enrolment_state(self, enrolment_id: str) -> dict[str, Any]: ...


def create_app(
    current: Current, partners: Partners | None = None, admin: APIRouter | None = None
) -> FastAPI:
    """The HSDS read API; with `partners`, also each agency's published keys and the
    enrolment of agencies; with `admin`, the county's routes (`admin_api.py`)."""
    app = FastAPIOffline(  # /docs and /redoc from installed files, not a CDN
        title="Wegweiser directory (HSDS 3.0)",
        version=VERSION,
        description="Open Referral HSDS 3.0 read API over Wegweiser's directory of agencies; "
        "each agency's public keys as a JWK Set; enrolment of an agency with its own keys.",
        responses=problems.documented(404, 422),
    )
    problems.install(app)
    app.add_exception_handler(enrolment.Refused, refusal)
    _readable_from_any_origin(app, _hsds_routes(app, current))
    if partners is not None:
        _partner_routes(app, partners)
    if admin is not None:
        app.include_router(admin)
    return app


def _hsds_routes(app: FastAPI, current: Current) -> list[BaseRoute]:
    """Add the HSDS read API's routes (openapi.json's paths) to `app`; returns them. (On the
    app itself: FastAPI keeps an included router's routes apart, where `problems.install`'s
    check of the query parameters does not see them.)"""
    first = len(app.routes)

    @app.get("/")
    async def root(request: Request) -> dict[str, str]:
        """What this API is: HSDS `version` 3.0 (Open Referral UK's validator reads "3.0" as
        its HSDS-UK 3.0 profile), the `profile` it follows and where its OpenAPI document is
        (absolute, as openapi.json's `format: uri` asks)."""
        document = str(request.base_url).rstrip("/") + (app.openapi_url or "")
        return {"version": VERSION, "profile": PROFILE, "openapi_url": document}

    @app.get("/services")
    async def services(asked: ServiceFilters, paging: Paging, full: Full = False) -> Page:
        a = await current()
        return _page(a, "service", reads.services(a, asked), full, paging)

    @app.get("/services/{service_id}")
    async def service(service_id: str) -> Record:
        return _one(await current(), "service", service_id)

    @app.get("/organizations")
    async def organizations(
        paging: Paging,
        search: str | None = None,
        full_service: bool = False,
        full: Full = False,
    ) -> Page:
        a = await current()
        listing = _page(a, "organization", reads.organizations(a, search), full, paging)
        if full:
            for entry in listing.contents:
                entry["services"] = _services_of(a, entry["id"], full_service)
        return listing

    @app.get("/organizations/{organization_id}")
    async def organization(organization_id: str, full_service: bool = False) -> Record:
        a = await current()
        document = _one(a, "organization", organization_id)
        document["services"] = _services_of(a, organization_id, full_service)
        return document

    @app.get("/service_at_locations")
    async def service_at_locations(
        asked: ServiceFilters, paging: Paging, postcode: str | None = None, full: Full = False
    ) -> Page:
        """Services at their locations; `modified_after` compares with the service's
        `last_modified` (HSDS gives a service at a location none of its own)."""
        a = await current()
        found = reads.service_at_locations(a, asked, postcode)
        return _page(a, "service_at_location", found, full, paging)

    @app.get("/service_at_locations/{sal_id}")
    async def service_at_location(sal_id: str) -> Record:
        return _one(await current(), "service_at_location", sal_id)

    @app.get("/taxonomies")
    async def taxonomies(paging: Paging, search: str | None = None) -> Page:
        a = await current()
        return _page(a, "taxonomy", reads.taxonomies(a, search), False, paging)

    @app.get("/taxonomies/{taxonomy_id}")
    async def taxonomy(taxonomy_id: str) -> Record:
        return _one(await current(), "taxonomy", taxonomy_id)

    @app.get("/taxonomy_terms")
    async def taxonomy_terms(
        paging: Paging,
        search: str | None = None,
        taxonomy_id: str | None = None,
        parent_id: str | None = None,
        top_only: bool = False,
    ) -> Page:
        a = await current()
        found = reads.taxonomy_terms(a, search, taxonomy_id, parent_id, top_only)
        return _page(a, "taxonomy_term", found, False, paging)

    @app.get("/taxonomy_terms/{term_id}")
    async def taxonomy_term(term_id: str) -> Record:
        return _one(await current(), "taxonomy_term", term_id)

    return app.routes[first:]


def _readable_from_any_origin(app: FastAPI, routes: list[BaseRoute]) -> None:
    """Any web page may read the HSDS routes (`Access-Control-Allow-Origin: *`, Open Referral
    UK's rule for browser clients), their errors included; no other route of the app."""
    paths = [route.path_regex for route in routes if isinstance(route, APIRoute)]

    @app.middleware("http")
    async def any_origin(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        if any(path.fullmatch(request.url.path) for path in paths):
            response.headers["Access-Control-Allow-Origin"] = "*"
        return response


def _one(a: Assembler, kind: str, record_id: str) -> Record:
    if a.get(kind, record_id) is None:
        raise HTTPException(404, f"no {kind} {record_id} in the directory")
    return public(a.full(kind, record_id), kind)


def _page(a: Assembler, kind: str, ids: list[str], full: bool, paging: PageRequest) -> Page:
    """The requested page of these records, nested if `full`."""
    contents = [
        public(a.full(kind, i), kind) if full else public(dict(reads.get(a, kind, i)), kind)
        for i in chosen(ids, paging)
    ]
    return page(len(ids), paging, contents)


def _services_of(a: Assembler, organization_id: str, full: bool) -> list[Record]:
    ids: Iterable[str] = a.children_of("service", "organization_id", organization_id)
    return [
        public(a.full("service", i), "service") if full else dict(reads.get(a, "service", i))
        for i in ids
    ]


def _partner_routes(app: FastAPI, partners: Partners) -> None:
    @app.get("/agencies/{agency_id}/jwks.json", tags=["keys"])
    async def agency_keys(agency_id: str) -> dict[str, Any]:
        """The agency's public keys in effect, to come or retiring (RFC 7517 JWK Set), each
        with its use, validity and custody."""
        found = await partners.keys_of(agency_id)
        if found is None:
            raise HTTPException(404, f"unknown agency {agency_id!r}")
        return dict(found)

    @app.post(
        "/agencies/{agency_id}/keys",
        status_code=201,
        tags=["keys"],
        responses=problems.documented(400, 401, 403, 409, 410),
    )
    async def rotate_keys(agency_id: str, body: KeyRotation) -> Any:
        """An enrolled agency's new keys, signed by its current signing key and the new one;
        published from `valid_from`, the current keys retiring 14 days later."""
        kids = await partners.rotate_keys(agency_id, body)
        return {"agency_id": agency_id, "published": kids}

    @app.post(
        "/enrolments",
        status_code=202,
        tags=["enrolment"],
        responses=problems.documented(400, 401, 403, 409, 410),
    )
    async def request_enrolment(body: EnrolmentRequest) -> Any:
        """An agency's enrolment: its invitation code, public keys and proofs of possession
        (see docs/agency-enrolment.md). Waits for the county's approval."""
        row = await partners.request_enrolment(body)
        return {"enrolment_id": row.id, "agency_id": row.agency_id, "status": row.status}

    @app.get("/enrolments/{enrolment_id}", tags=["enrolment"], responses=problems.documented(410))
    async def enrolment_state(enrolment_id: str) -> Any:
        """The enrolment's state; once approved, how to take part."""
        return await partners.enrolment_state(enrolment_id)


async def refusal(_request: Request, exc: Exception) -> JSONResponse:
    """A refused step as a problem with its own code and status (see enrolment.Refused)."""
    assert isinstance(exc, enrolment.Refused)
    return problems.problem(exc.status, str(exc), exc.code)

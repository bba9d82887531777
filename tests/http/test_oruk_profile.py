"""The directory's HSDS read API against Open Referral UK's validator, its checks ported here.

The validator (github.com/tpximpact/OpenReferralApi, now OpenReferralUK/oruk-validator) tested
a feed with the test groups of its profile `HSDS-UK-3.0`: level 1 (required: a feed that fails
one is not valid) the API meta information, the services list and a service by id; level 2
(warnings) the taxonomies, taxonomy terms and services at locations, each as a list and by id.
A list is paged through with `per_page=5` (PaginationTestingService: first page, pages between,
last page), and a by-id test takes its ids from the list ("id chaining": `useIdFrom`). Each
check is one test here, named in its docstring as the validator names it; the profile and the
schemas it validates with are in tests/fixtures/hsds/oruk/ (their source commit: the README
beside). Where the validator picks pages and ids at random, every page and every id is tried.

All of it against the directory's app in this process on a real SQLite store with the sample
directory imported (tests/support/directory.py), as the service wires it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator, FormatChecker

from services.directory import importer
from services.directory.sample import SAMPLE_PATH
from tests.support.directory import Directory, directory
from wegweiser.platform import problems

ORUK = Path(__file__).parents[1] / "fixtures" / "hsds" / "oruk"
PROFILE = json.loads((ORUK / "HSDS-UK-3.0.json").read_text(encoding="utf-8"))
PER_PAGE = 5
"""The validator's `per_page` when it pages through a list."""
PAGED = [t["endpoint"] for g in PROFILE["testGroups"] for t in g["tests"] if t.get("pagination")]
LISTS = [*PAGED, "/organizations"]
"""The lists the validator pages through, and HSDS's fifth, which the UK profile leaves out."""


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    made = directory(tmp_path_factory.mktemp("oruk"))
    yield made
    made.db.dispose()


@pytest.fixture
def api(found: Directory) -> Iterator[TestClient]:
    with TestClient(found.app, base_url="http://directory.test") as client:
        yield client


@cache
def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((ORUK / f"{name}.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=FormatChecker())


def schema_problems(name: str, document: Any) -> list[str]:
    """How `document` breaks the validator's schema `V3.0-UK/<name>.json`."""
    return [f"{e.json_path}: {e.message}" for e in _validator(name).iter_errors(document)]


def _every_page(api: TestClient, url: str, **params: int) -> list[dict[str, Any]]:
    """Page 1 of a list and each page after it, up to the first page's `total_pages`."""
    first = _ok(api.get(url, params={**params, "page": 1}, follow_redirects=True))
    return [first] + [
        _ok(api.get(url, params={**params, "page": number}, follow_redirects=True))
        for number in range(2, first["total_pages"] + 1)
    ]


def pages(api: TestClient, endpoint: str) -> list[tuple[int, dict[str, Any]]]:
    """Every page of a list at the validator's `per_page`, with the page number asked for."""
    return list(enumerate(_every_page(api, endpoint, per_page=PER_PAGE), start=1))


def ids_from(api: TestClient, endpoint: str) -> list[str]:
    """The ids of every entry of a list, fetched as the validator's FetchIds does
    (`<endpoint>/?page=<n>`: its by-id test's endpoint, with the trailing slash)."""
    return [entry["id"] for body in _every_page(api, f"{endpoint}/") for entry in body["contents"]]


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def paged_list_is_valid(api: TestClient, endpoint: str, schema: str) -> None:
    """A list test of the profile: the first page in the schema, and every page after it."""
    listed = pages(api, endpoint)
    assert listed[0][1]["total_items"] > 0, "nothing to validate"
    for number, body in listed:
        assert schema_problems(schema, body) == [], (endpoint, number)


def by_id_is_valid(api: TestClient, endpoint: str, schema: str) -> None:
    """A by-id test of the profile: each id the list gives, fetched and in the schema."""
    ids = ids_from(api, endpoint)
    assert ids, "no ids to fetch"
    for record_id in ids:
        record = _ok(api.get(f"{endpoint}/{record_id}"))
        assert record["id"] == record_id
        assert schema_problems(schema, record) == [], (endpoint, record_id)


# Level 1 Compliance - Basic checks (required)


def version_number(version: str) -> float | None:
    """The HSDS version the validator reads from `/` (OpenApiDiscoveryService's
    ExtractVersionNumber: "HSDS-UK-3.0", "V3", "3.0" all read as 3.0)."""
    text = version.replace("HSDS-UK-", "").replace("V", "").replace("v", "").strip()
    try:
        return float(text)
    except ValueError:
        return None


def test_api_meta_info(api: TestClient):
    """Check "API meta info - API & schema validation": `/` answers meta information about the API
    in the schema (version, profile, openapi_url), with a version the validator reads as 3.0
    and an `openapi_url` that serves the API's document."""
    meta = _ok(api.get("/"))
    assert schema_problems("api_details", meta) == []
    assert version_number(meta["version"]) == 3.0
    document = _ok(api.get(meta["openapi_url"]))
    assert "/services" in document["paths"]


def test_services_list(api: TestClient):
    """Check "Services list - API & schema validation": the services list is a paged list of
    services in the schema."""
    paged_list_is_valid(api, "/services", "service_list")


def test_service_by_id(api: TestClient):
    """Check "Service by id - API & schema validation": a fully nested service in the schema for an
    id the services list gave (`useIdFrom: /services-id`)."""
    by_id_is_valid(api, "/services", "service")


# Level 2 Compliance - Extended checks (warnings)


def test_taxonomies_list(api: TestClient):
    """Check "Taxonomies list - API & schema validation"."""
    paged_list_is_valid(api, "/taxonomies", "taxonomy_list")


def test_taxonomy_by_id(api: TestClient):
    """Check "Taxonomy by id - API & schema validation"."""
    by_id_is_valid(api, "/taxonomies", "taxonomy")


def test_taxonomy_terms_list(api: TestClient):
    """Check "Taxonomy terms list - API & schema validation" (the list)."""
    paged_list_is_valid(api, "/taxonomy_terms", "taxonomy_term_list")


def test_taxonomy_term_by_id(api: TestClient):
    """Check "Taxonomy terms list - API & schema validation" (the profile gives its by-id test the
    list's name; its description: "Does the taxonomy term by id endpoint return the full
    information of a taxonomy term in the correct schema")."""
    by_id_is_valid(api, "/taxonomy_terms", "taxonomy_term")


def test_service_at_location_list(api: TestClient):
    """Check "Service at location list - API & schema validation"."""
    paged_list_is_valid(api, "/service_at_locations", "service_at_location_list")


def test_service_at_location_by_id(api: TestClient):
    """Check "Service at location by id - API & schema validation"."""
    by_id_is_valid(api, "/service_at_locations", "service_at_location")


# The pagination checks of every paged test (PaginationTestingService.ValidatePageDetails)


@pytest.mark.parametrize("endpoint", LISTS)
def test_first_page_flag(api: TestClient, endpoint: str):
    """Check "First page flag": is the 'first_page' flag returned correctly."""
    for number, body in pages(api, endpoint):
        assert body["first_page"] is (number == 1), number
        assert body["page_number"] == number


@pytest.mark.parametrize("endpoint", LISTS)
def test_last_page_flag(api: TestClient, endpoint: str):
    """Check "Last page flag": is the 'last_page' flag returned correctly (true on the page
    numbered total_pages, as the first page gave it, and on no other)."""
    listed = pages(api, endpoint)
    total_pages = listed[0][1]["total_pages"]
    for number, body in listed:
        assert body["last_page"] is (number == total_pages), number
        assert body["total_pages"] == total_pages


@pytest.mark.parametrize("endpoint", LISTS)
def test_empty_flag(api: TestClient, endpoint: str):
    """Check "Empty flag": is the 'empty' flag returned correctly (true exactly when the page has
    no entries)."""
    for number, body in pages(api, endpoint):
        assert body["empty"] is (len(body["contents"]) == 0), number
    past = _ok(api.get(endpoint, params={"per_page": PER_PAGE, "page": 10_000}))
    assert past["empty"] is True and past["contents"] == [] and past["total_items"] > 0


@pytest.mark.parametrize("endpoint", LISTS)
def test_items_per_page(api: TestClient, endpoint: str):
    """Check "Items per page": is the number of items returned per page correct (per_page, or
    fewer on the last page), and do the pages hold every item once."""
    listed = pages(api, endpoint)
    for number, body in listed:
        count = len(body["contents"])
        assert count == PER_PAGE or (count < PER_PAGE and body["last_page"]), number
    ids = [entry["id"] for _, body in listed for entry in body["contents"]]
    assert len(ids) == len(set(ids)) == listed[0][1]["total_items"]


@pytest.mark.parametrize("endpoint", LISTS)
def test_item_count(api: TestClient, endpoint: str):
    """Check "Item count": does the number of items returned match the 'size' value."""
    for number, body in pages(api, endpoint):
        assert body["size"] == len(body["contents"]), number


# Beyond the validator: what the profile asks of the API besides


@pytest.mark.parametrize("endpoint", LISTS)
def test_every_id_a_list_returns_can_be_fetched(api: TestClient, endpoint: str):
    """Id chaining over the whole list, nested lists (`full=true`) included where HSDS has
    them."""
    nested = endpoint in ("/services", "/organizations", "/service_at_locations")
    for params in [{}, {"full": "true"}] if nested else [{}]:
        listed = _ok(api.get(endpoint, params={"per_page": 500, **params}))
        assert listed["contents"] and listed["total_items"] == len(listed["contents"])
        for entry in listed["contents"]:
            assert _ok(api.get(f"{endpoint}/{entry['id']}"))["id"] == entry["id"]


@pytest.mark.parametrize("endpoint", LISTS)
def test_format_json_is_the_paged_json_every_list_answers_anyway(api: TestClient, endpoint: str):
    """HSDS's `format`: `json` is what a list answers without it (the only form offered)."""
    params = {"per_page": PER_PAGE, "page": 2}
    assert _ok(api.get(endpoint, params={**params, "format": "json"})) == _ok(
        api.get(endpoint, params=params)
    )


@pytest.mark.parametrize("endpoint", LISTS)
def test_an_unknown_id_is_a_404_problem(api: TestClient, endpoint: str):
    missing = api.get(f"{endpoint}/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == problems.MEDIA_TYPE
    assert missing.json()["code"] == "not-found"


@pytest.mark.parametrize(
    ("endpoint", "parameter", "value"),
    [
        ("/services", "page", "0"),
        ("/services", "page", "-1"),
        ("/services", "page", "second"),
        ("/services", "per_page", "100000"),
        ("/services", "per_page", "0"),
        ("/services", "modified_after", "not-a-date"),
        ("/services", "modified_after", "2026-13-01T00:00:00Z"),
        ("/services", "modified_after", "2026-01-01"),
        ("/services", "modified_after", "2026-01-01T08:00:00"),
        ("/services", "modified_after", "1767254400"),
        ("/services", "format", "ndjson"),
        ("/service_at_locations", "modified_after", "yesterday"),
        ("/service_at_locations", "per_page", "501"),
        ("/organizations", "page", "0"),
        ("/taxonomies", "per_page", "100000"),
        ("/taxonomy_terms", "page", "0"),
        ("/services", "minimal", "true"),
        ("/service_at_locations", "proximity", "1000"),
    ],
)
def test_a_malformed_parameter_is_a_422_problem_naming_it(
    api: TestClient, endpoint: str, parameter: str, value: str
):
    """Refused, not guessed at: a page before the first, more than 500 entries a page, a
    modification time that is not a date and time with its offset (RFC 3339, as the document's
    `format: date-time` says), a format but JSON, or a parameter the directory does not offer
    (HSDS's `minimal` and `proximity`)."""
    refused = api.get(endpoint, params={parameter: value})
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == problems.MEDIA_TYPE
    body = refused.json()
    assert body["status"] == 422 and parameter in body["detail"]
    assert [e["loc"] for e in body["errors"]] == [["query", parameter]]


def test_the_document_says_what_each_read_route_answers(found: Directory):
    """404 and 422 as problems on every read route; the paging parameters with their bounds;
    `modified_after` as a date-time where openapi.json has it."""
    document = found.app.openapi()
    read = ["/", *LISTS, *(f"{endpoint}/{{id}}" for endpoint in LISTS)]
    for path, operation in _read_operations(document, read):
        for status in ("404", "422"):
            schema = operation["responses"][status]["content"][problems.MEDIA_TYPE]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (path, status)
    for path in LISTS:
        parameters = {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}
        assert parameters["page"]["schema"]["minimum"] == 1
        assert parameters["per_page"]["schema"]["maximum"] == 500
        assert parameters["format"]["schema"]["const"] == "json"
        listed = document["paths"][path]["get"]["responses"]["200"]["content"]
        assert listed["application/json"]["schema"] == {"$ref": "#/components/schemas/Page"}
    for path in ("/services", "/service_at_locations"):
        parameters = {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}
        dated = parameters["modified_after"]["schema"]["anyOf"][0]
        assert dated == {"type": "string", "format": "date-time"}


def _read_operations(
    document: dict[str, Any], wanted: list[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    by_shape = {_shape(path): path for path in document["paths"]}
    for path in wanted:
        actual = by_shape[_shape(path)]
        yield actual, document["paths"][actual]["get"]


def _shape(path: str) -> str:
    """A path with its parameter's name left out (`/services/{service_id}` -> `/services/{}`)."""
    head, _, tail = path.partition("{")
    return head + ("{}" if tail else "")


def test_any_web_page_may_read_the_hsds_routes_and_no_other(api: TestClient, found: Directory):
    """Open Referral UK's rule for browser clients (`Access-Control-Allow-Origin: *`), on
    answers and errors alike; the county's admin routes stay closed to browser pages."""
    origin = {"Origin": "https://another-directory.example"}
    for answered in (
        api.get("/services", headers=origin),
        api.get("/", headers=origin),
        api.get("/services/unknown", headers=origin),
        api.get("/services", params={"page": 0}, headers=origin),
    ):
        assert answered.headers["access-control-allow-origin"] == "*", answered.url
    admin = api.get("/admin/agencies", headers={**origin, "Authorization": f"Bearer {found.token}"})
    assert admin.status_code == 403 and "access-control-allow-origin" not in admin.headers


# modified_after: another directory keeps its copy in step


def _stamped(tmp_path: Path, stamps: dict[int, str]) -> tuple[Path, dict[str, str]]:
    """The sample directory with `last_modified` given to the services at these positions."""
    data = json.loads(SAMPLE_PATH.read_text(encoding="utf-8"))
    named = {}
    for index, stamp in stamps.items():
        data["services"][index]["last_modified"] = stamp
        named[data["services"][index]["id"]] = stamp
    path = tmp_path / "stamped.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path, named


@pytest.fixture
def stamped(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The directory after an import that gave three services a modification time."""
    made = directory(tmp_path / "directory")
    path, named = _stamped(
        tmp_path,
        {0: "2026-03-01T08:00:00Z", 4: "2026-05-10T12:00:00+02:00", 9: "2026-06-01T00:00:00Z"},
    )
    assert made.db.run_sync(lambda s: importer.import_file(s, path)).ok
    with TestClient(made.app, base_url="http://directory.test") as client:
        yield client, named
    made.db.dispose()


def _listed(api: TestClient, endpoint: str, **params: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = _ok(api.get(endpoint, params={"per_page": 500, **params}))[
        "contents"
    ]
    return entries


def _after(named: dict[str, str], moment: datetime) -> set[str]:
    return {i for i, stamp in named.items() if datetime.fromisoformat(stamp) >= moment}


@pytest.mark.parametrize(
    "moment",
    [
        "2026-01-01T00:00:00Z",
        "2026-05-10T10:00:00Z",  # the second service's time, in UTC: on or after includes it
        "2026-05-10T10:00:01Z",
        "2026-07-01T00:00:00+00:00",
    ],
)
def test_modified_after_lists_the_services_modified_on_or_after_it(
    stamped: tuple[TestClient, dict[str, str]], moment: str
):
    """The publisher's times where it gave them; the others carry the time the directory
    imported them, later than every moment asked here."""
    api, named = stamped
    unnamed = {s["id"] for s in _listed(api, "/services")} - set(named)
    expected = _after(named, datetime.fromisoformat(moment)) | unnamed
    services = _listed(api, "/services", modified_after=moment)
    assert {s["id"] for s in services} == expected
    places = _listed(api, "/service_at_locations", modified_after=moment)
    assert {p["service_id"] for p in places} == expected
    every_place = _listed(api, "/service_at_locations")
    assert len(places) == sum(p["service_id"] in expected for p in every_place)
    if expected != unnamed | set(named):
        assert len(every_place) > len(places)  # the filter left some out


def test_a_service_the_publisher_gave_no_time_carries_the_time_it_was_imported(
    stamped: tuple[TestClient, dict[str, str]],
):
    api, named = stamped
    imported = {
        s["id"]: datetime.fromisoformat(s["last_modified"])
        for s in _listed(api, "/services")
        if s["id"] not in named
    }
    assert imported and all(stamp <= datetime.now(UTC) for stamp in imported.values())
    latest = max(imported.values())
    after_it = _listed(api, "/services", modified_after=latest.isoformat())
    assert {s["id"] for s in after_it} == {i for i, t in imported.items() if t >= latest}
    later = (latest + timedelta(milliseconds=1)).isoformat()
    assert _listed(api, "/services", modified_after=later) == []


# The port is whole


PORTED: dict[tuple[str, str], Callable[..., None]] = {
    ("API meta info - API & schema validation", "/"): test_api_meta_info,
    ("Services list - API & schema validation", "/services"): test_services_list,
    ("Service by id - API & schema validation", "/services/"): test_service_by_id,
    ("Taxonomies list - API & schema validation", "/taxonomies"): test_taxonomies_list,
    ("Taxonomy by id - API & schema validation", "/taxonomies/"): test_taxonomy_by_id,
    ("Taxonomy terms list - API & schema validation", "/taxonomy_terms"): test_taxonomy_terms_list,
    ("Taxonomy terms list - API & schema validation", "/taxonomy_terms/"): test_taxonomy_term_by_id,
    (
        "Service at location list - API & schema validation",
        "/service_at_locations",
    ): test_service_at_location_list,
    (
        "Service at location by id - API & schema validation",
        "/service_at_locations/",
    ): test_service_at_location_by_id,
}


def test_every_test_of_the_validators_profile_is_ported():
    """Each test of the profile (by its name and endpoint) has its test here, the required
    group's among them, and the validator's schemas are not vacuous."""
    in_profile = {(t["name"], t["endpoint"]) for g in PROFILE["testGroups"] for t in g["tests"]}
    assert in_profile == set(PORTED)
    required = {
        (t["name"], t["endpoint"])
        for g in PROFILE["testGroups"]
        if g["required"]
        for t in g["tests"]
    }
    assert {PORTED[key].__name__ for key in required} == {
        "test_api_meta_info",
        "test_services_list",
        "test_service_by_id",
    }
    assert schema_problems("service", {"id": "not-a-uuid", "name": "x"}) != []
    assert schema_problems("api_details", {"version": "3.0"}) != []

"""The directory against Open Referral's own HSDS 3.0 API document, by Schemathesis, every check.

The document is schemas/hsds/schema/openapi.json: byte for byte `schema/openapi.json` of
openreferral/specification at commit 279fd2eb3552c349bf698c07c00cc25f5fc8249b (branch 3.0;
the file last changed in 64c16b2f), pinned here by its git blob hash, so the repository's copy
cannot drift from it unnoticed. Its answers' schemas are links to raw.githubusercontent.com at
branch 3.0; they are inlined here from the same commit's files (schemas/hsds/schema, and
tests/fixtures/hsds/compiled for the three compiled list schemas the repository did not
carry), so the run needs no network and the document itself is left as published.

Every operation gets generated requests, valid and not, in Schemathesis's examples, coverage
and fuzzing phases, and every check. Where the official document is itself at odds with what
an HSDS API answers, exactly that is set aside, with its reason:

- It documents no answer but 200. An unknown id's 404 and a malformed parameter's 422 are
  "undocumented" (status_code_conformance is off); instead each such answer is checked here
  to be a problem (RFC 9457) of the kind the directory's own document gives.
- /service_at_locations/{id} declares compiled/service.json as its answer, a slip for
  compiled/service_at_location.json: response_schema_conformance is off for that operation
  alone, and its answers are validated here against the right schema.
- `modified_after` has the format "datetime", which JSON Schema does not know (it has
  "date-time"), so any string would pass for one; it is generated as RFC 3339 date-times.
- `page` and `per_page` are integers without bounds, `format` any string, and `minimal` and
  `proximity` free. The directory refuses a page before the first, more than 500 entries a
  page, any format but json, and the two parameters it does not offer, each with a 422
  naming the parameter: positive_data_acceptance accepts 422, and the test checks that such
  a 422 names one of these parameters and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from schemathesis.config import SchemathesisConfig

import schemas
from tests.support.directory import directory
from wegweiser.platform import problems

SCHEMAS = Path(schemas.__file__).parent / "hsds" / "schema"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "hsds"
DOCUMENT = SCHEMAS / "openapi.json"
DOCUMENT_BLOB = "f66ad1ea9b509968c0bdd50bf6cdaf5dc7a77024"
"""`git rev-parse 279fd2eb:schema/openapi.json` in openreferral/specification."""
PUBLISHED = "https://raw.githubusercontent.com/openreferral/specification/3.0/schema/"
STRICTER = frozenset({"page", "per_page", "format", "minimal", "proximity"})
"""The parameters a request the official document calls valid may still be refused for."""
EXAMPLES = int(os.environ.get("WEGWEISER_OPENAPI_EXAMPLES", "0"))
"""As in test_openapi_properties.py: by default 25 per operation, chosen the same way on every
run; WEGWEISER_OPENAPI_EXAMPLES=500 explores anew each time."""
BASE_URL = "http://directory.test"


def _published(relative: str) -> dict[str, Any]:
    """A schema file of the specification at the pinned commit, from the repository's copy."""
    for folder in (FIXTURES, SCHEMAS):
        if (folder / relative).is_file():
            loaded: dict[str, Any] = json.loads((folder / relative).read_text(encoding="utf-8"))
            return loaded
    raise FileNotFoundError(f"{relative}: not in {FIXTURES} or {SCHEMAS}")


def inlined(node: Any, base: str = PUBLISHED, within: tuple[str, ...] = ()) -> Any:
    """`node` with every link to the specification's published schemas replaced by the schema
    (relative links resolved against the linking file's folder, as the published files do)."""
    if isinstance(node, list):
        return [inlined(item, base, within) for item in node]
    if not isinstance(node, dict):
        return node
    link = node.get("$ref")
    if isinstance(link, str) and not link.startswith("#"):
        url = link if "://" in link else base + link
        relative = url.removeprefix(PUBLISHED)
        assert relative != url, f"{link} is not one of the specification's schemas"
        assert relative not in within, f"{relative} refers to itself through {within}"
        folder = PUBLISHED + relative[: relative.rfind("/") + 1]
        return inlined(_published(relative), folder, (*within, relative))
    return {key: inlined(value, base, within) for key, value in node.items()}


def _blob_hash(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


CONFIG = SchemathesisConfig.from_str(
    """
# the document has no answer but 200: 404 and 422 are checked in the test instead
[checks.status_code_conformance]
enabled = false

# an id the directory does not hold (404); page, per_page, format, minimal and proximity, which
# the document leaves unbounded, refused (422): the test checks the 422 names only those
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "404", "422"]

# the document gives this operation compiled/service.json as its answer (a slip for
# compiled/service_at_location.json, which the test validates its answers against instead)
[[operations]]
include-path = "/service_at_locations/{id}"
checks.response_schema_conformance.enabled = false
"""
)
schemathesis.openapi.format(
    "datetime", st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.isoformat())
)
schema = schemathesis.openapi.from_dict(
    inlined(json.loads(DOCUMENT.read_text(encoding="utf-8"))), config=CONFIG
)
FOLDER = Path(tempfile.mkdtemp(prefix="wegweiser-hsds-openapi-"))
DIRECTORY = directory(FOLDER)  # Schemathesis needs the app when the module is collected
schema.app = DIRECTORY.app
ANSWERED: dict[str, set[int]] = {}


@pytest.fixture(scope="module", autouse=True)
def cleaned_up() -> Iterator[None]:
    yield
    DIRECTORY.db.dispose()
    shutil.rmtree(FOLDER, ignore_errors=True)


def test_the_document_is_open_referrals_unmodified():
    assert _blob_hash(DOCUMENT.read_bytes()) == DOCUMENT_BLOB


@schema.parametrize()
@settings(
    max_examples=EXAMPLES or 25,
    derandomize=not EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_open_referrals_document_says(case: Any) -> None:
    response = case.call_and_validate(base_url=BASE_URL)
    ANSWERED.setdefault(case.operation.label, set()).add(response.status_code)
    if response.status_code == 200:
        if case.operation.path == "/service_at_locations/{id}":
            assert _service_at_location_problems(response.json()) == []
        return
    refused = _problem(response)
    if case.method.upper() != "GET":  # the coverage phase's methods the path does not take
        assert response.status_code == 405, case.method
        return
    if response.status_code == 404:
        assert case.operation.path.endswith("/{id}"), case.operation.label
        return
    assert response.status_code == 422, response.text
    named = {error["loc"][1] for error in refused["errors"] if error["loc"][0] == "query"}
    assert named, refused
    if not case.meta.generation.mode.is_negative:
        assert named <= STRICTER, (case.query, refused)


def test_the_generated_requests_were_answered():
    """Not a vacuous run: every operation of the document was called, and every list answered
    with a page."""
    paths = json.loads(DOCUMENT.read_text(encoding="utf-8"))["paths"]
    assert set(ANSWERED) == {f"GET {path}" for path in paths}, ANSWERED
    for label, statuses in ANSWERED.items():
        if not label.endswith("{id}"):
            assert 200 in statuses, (label, statuses)


def _problem(response: Any) -> dict[str, Any]:
    """A refusal's body, checked to be a problem of the directory's own document."""
    assert response.headers["content-type"] == [problems.MEDIA_TYPE], response.text
    body: dict[str, Any] = response.json()
    problems.Problem.model_validate(body)
    return body


@cache
def _service_at_location_validator() -> Draft202012Validator:
    return Draft202012Validator(
        _published("compiled/service_at_location.json"), format_checker=FormatChecker()
    )


def _service_at_location_problems(document: Any) -> list[str]:
    return [e.message for e in _service_at_location_validator().iter_errors(document)]


LISTS = {
    "/services": "/services/{id}",
    "/organizations": "/organizations/{id}",
    "/service_at_locations": "/service_at_locations/{id}",
    "/taxonomies": "/taxonomies/{id}",
    "/taxonomy_terms": "/taxonomy_terms/{id}",
}


@pytest.mark.parametrize(("listing", "by_id"), LISTS.items())
def test_every_id_a_list_returns_answers_as_the_document_says(listing: str, by_id: str):
    """Generated ids find nothing (404); these are the ids the list gives, each fetched and
    its answer put through every check against the official document."""
    first = schema[listing]["GET"].Case(query={"per_page": 500})
    listed = first.call_and_validate(base_url=BASE_URL).json()
    assert listed["contents"] and listed["last_page"]
    for entry in listed["contents"]:
        case = schema[by_id]["GET"].Case(path_parameters={"id": entry["id"]})
        response = case.call_and_validate(base_url=BASE_URL)
        assert response.status_code == 200 and response.json()["id"] == entry["id"]
        if by_id == "/service_at_locations/{id}":
            assert _service_at_location_problems(response.json()) == []

"""The gateway's FHIR endpoint in this process on a real SQLite store: every route asks for
the agency's own bearer token, another agency's referral is as unknown as none, and every
request refused (a search, a Task update, a Subscription) is answered with an
OperationOutcome that says precisely why, having changed nothing.

What needs the broker (offers and news arriving on the feed, notifications sent) stays in
tests/integration/test_fhir_adapter.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.subscription import Subscription
from sqlmodel import Session

from schemas.events import DeletionConfirmed, DeletionRequested, ReferralStarted
from schemas.vocabulary import ReferralStatus
from services.gateway.fhir import codes, http, subscriptions
from services.gateway.fhir.store import SubscriptionRow
from tests.support.databases import count
from tests.support.gateway import (
    CANARY,
    FHIR_AGENCY,
    FHIR_OTHER,
    NOTIFY_TO,
    FhirApp,
    deletion_asked,
    fhir_change,
    issue,
    subscription,
)
from wegweiser.platform.outbox import OutboxRow

AGENCY, OTHER = FHIR_AGENCY, FHIR_OTHER
FHIR_JSON = {"content-type": "application/fhir+json"}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[FhirApp]:
    made = FhirApp(tmp_path)
    yield made
    await made.dispose()


@pytest.fixture
async def fhir(gateway: FhirApp) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway.client() as client:
        yield client


async def task(gateway: FhirApp, fhir: httpx.AsyncClient, referral_id: str) -> dict[str, Any]:
    got = await fhir.get(f"/{AGENCY}/Task/{referral_id}", headers=gateway.auth())
    assert got.status_code == 200, got.text
    return dict(got.json())


async def put(
    gateway: FhirApp, fhir: httpx.AsyncClient, body: dict[str, Any] | str, **headers: str
) -> httpx.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    return await fhir.put(
        f"/{AGENCY}/Task/ref-1", content=content, headers={**gateway.auth(), **FHIR_JSON, **headers}
    )


# --- who may ask ----------------------------------------------------------------------------

ROUTES = [
    "/{a}/metadata",
    "/{a}/Task",
    "/{a}/Task/ref-1",
    "/{a}/ServiceRequest/ref-1",
    "/{a}/Consent/con-ref-1",
    "/{a}/Binary/ref-1",
    "/{a}/Subscription/sub-1",
]


async def test_every_route_refuses_a_missing_wrong_or_other_agency_s_token(
    gateway: FhirApp, fhir: httpx.AsyncClient
) -> None:
    gateway.offer("ref-1")
    for route in ROUTES:
        for agency, headers in [
            (AGENCY, {}),
            (AGENCY, {"authorization": "Bearer wwfhir_guessed"}),
            (AGENCY, {"authorization": f"Basic {gateway.tokens[AGENCY]}"}),
            (AGENCY, {"authorization": "Bearer "}),
            (AGENCY, gateway.auth(OTHER)),  # another agency's token for this agency's base
            ("no-such-agency", gateway.auth(AGENCY)),
        ]:
            got = await fhir.get(route.format(a=agency), headers=headers)
            assert got.status_code == 401, (route, got.text)
            assert issue(got)["code"] == "login"
            assert issue(got)["wegweiser"] == "fhir.unauthenticated"
            assert got.headers["www-authenticate"].startswith("Bearer")
            assert CANARY not in got.text
    put_ = await fhir.put(
        f"/{AGENCY}/Task/ref-1", content=json.dumps({"resourceType": "Task"}), headers=FHIR_JSON
    )
    assert put_.status_code == 401
    wanted = json.dumps(subscription(NOTIFY_TO[AGENCY]))
    made = await fhir.post(f"/{AGENCY}/Subscription", content=wanted, headers=gateway.auth(OTHER))
    assert made.status_code == 401
    sub = open_subscription(gateway, AGENCY)
    ended = await fhir.delete(f"/{AGENCY}/Subscription/{sub}", headers=gateway.auth(OTHER))
    assert ended.status_code == 401
    assert gateway.version("ref-1") == 1 and gateway.outbox() == []
    assert count(gateway.db, SubscriptionRow) == 1


async def test_another_agency_s_referral_is_unknown_to_an_agency(
    gateway: FhirApp, fhir: httpx.AsyncClient
) -> None:
    gateway.offer("ref-1")
    gateway.offer("ref-2", OTHER)
    for route in ("Task/ref-2", "ServiceRequest/ref-2", "Consent/con-ref-2", "Binary/ref-2"):
        got = await fhir.get(f"/{AGENCY}/{route}", headers=gateway.auth())
        assert got.status_code == 404, route
        assert issue(got)["wegweiser"] == "fhir.not-found" and CANARY not in got.text
    theirs = await fhir.get(f"/{OTHER}/Task/ref-2", headers=gateway.auth(OTHER))
    taken = await fhir.put(
        f"/{AGENCY}/Task/ref-2",
        content=json.dumps({**theirs.json(), "status": "accepted"}),
        headers={**gateway.auth(), **FHIR_JSON},
    )
    assert taken.status_code == 404
    assert gateway.outbox() == [] and gateway.version("ref-2") == 1


async def test_another_agency_s_subscription_is_unknown_and_stays(
    gateway: FhirApp, fhir: httpx.AsyncClient
) -> None:
    mine = open_subscription(gateway, AGENCY)
    for ask in (fhir.get, fhir.delete):
        for sub in (mine, "sub-nope"):
            refused = await ask(f"/{OTHER}/Subscription/{sub}", headers=gateway.auth(OTHER))
            assert refused.status_code == 404
            assert issue(refused)["wegweiser"] == "fhir.not-found"
    read = await fhir.get(f"/{AGENCY}/Subscription/{mine}", headers=gateway.auth())
    assert read.status_code == 200 and read.json()["id"] == mine
    assert count(gateway.db, SubscriptionRow) == 1


# --- searching ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("owner=me", "unknown search parameter 'owner'"),
        ("status=open", "status open: not a Task status"),
        ("_lastUpdated=yesterday", "not a FHIR date"),
        ("_count=0", "a number from 1 to"),
        ("_count=501", "a number from 1 to 500"),
        ("_count=ten", "a number from 1 to"),
    ],
)
async def test_an_unknown_search_parameter_or_value_is_refused_precisely(
    gateway: FhirApp, fhir: httpx.AsyncClient, query: str, says: str
) -> None:
    got = await fhir.get(f"/{AGENCY}/Task?{query}", headers=gateway.auth())
    assert got.status_code == 400
    found = issue(got)
    assert found["wegweiser"] == "fhir.search-parameter" and says in found["diagnostics"]
    assert found["expression"] == [query.split("=")[0]]


# --- Task updates ---------------------------------------------------------------------------


async def test_a_transition_the_lifecycle_forbids_is_refused_with_its_code(
    gateway: FhirApp, fhir: httpx.AsyncClient
) -> None:
    gateway.offer("ref-1")
    current = await task(gateway, fhir, "ref-1")
    for status in ("in-progress", "completed", "on-hold"):
        got = await put(gateway, fhir, {**current, "status": status})
        assert got.status_code == 409, got.text
        found = issue(got)
        assert found["code"] == "business-rule"
        assert found["wegweiser"] == "referral.forbidden-transition"
        assert "is requested" in found["diagnostics"]
    assert gateway.outbox() == [] and gateway.version("ref-1") == 1
    assert (await task(gateway, fhir, "ref-1"))["status"] == "requested"


BAD_UPDATES = [
    ("not json", 400, "fhir.unparseable"),
    ('{"resourceType": "Patient", "id": "ref-1"}', 400, "fhir.unparseable"),
    ('{"resourceType": "Task", "status": "accepted", "intent": "order", "wrong": 1}', 400,
     "fhir.unparseable"),
    (json.dumps({"resourceType": "Task", "note": [{"text": "x" * http.LARGEST_BODY}]}), 413,
     "fhir.too-large"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "code"), BAD_UPDATES)
async def test_a_body_that_is_no_fhir_task_is_refused_and_changes_nothing(
    gateway: FhirApp, fhir: httpx.AsyncClient, body: str, status: int, code: str
) -> None:
    gateway.offer("ref-1")
    got = await put(gateway, fhir, body)
    assert got.status_code == status
    assert issue(got)["wegweiser"] == code
    assert gateway.outbox() == [] and gateway.version("ref-1") == 1


def _wrong_reason(task: dict[str, Any]) -> dict[str, Any]:
    reason = {"coding": [{"system": "http://other.example", "code": "busy"}], "text": "busy"}
    return {**task, "status": "rejected", "statusReason": reason}


REFUSED_UPDATES: list[tuple[Callable[[dict[str, Any]], dict[str, Any]], int, str, str | None]] = [
    (lambda t: {**t, "status": "cancelled"}, 422, "referral.wrong-actor", "Task.status"),
    (lambda t: {**t, "status": "rejected"}, 422, "referral.reason-required", "Task.statusReason"),
    (_wrong_reason, 422, "fhir.reason-code", "Task.statusReason.coding"),
    (lambda t: {**t, "owner": {"reference": "Organization/x"}}, 422, "fhir.read-only",
     "Task.owner"),
    (lambda t: {**t, "id": "ref-9", "status": "accepted"}, 400, "fhir.id-mismatch", None),
]  # fmt: skip


@pytest.mark.parametrize(("change", "status", "code", "where"), REFUSED_UPDATES)
async def test_an_update_the_rules_refuse_says_why_and_changes_nothing(
    gateway: FhirApp,
    fhir: httpx.AsyncClient,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    status: int,
    code: str,
    where: str | None,
) -> None:
    gateway.offer("ref-1")
    got = await put(gateway, fhir, change(await task(gateway, fhir, "ref-1")))
    assert got.status_code == status, got.text
    found = issue(got)
    assert found["wegweiser"] == code
    if where:
        assert found["expression"] == [where]
    assert gateway.outbox() == [] and gateway.version("ref-1") == 1


def outcomes(*said: str) -> list[dict[str, Any]]:
    return [
        {
            "type": {"coding": [{"system": codes.OUTPUT_TYPE, "code": "outcome"}]},
            "valueCodeableConcept": {"coding": [{"system": codes.OUTCOME, "code": code}]},
        }
        for code in said
    ]


@pytest.mark.parametrize("said", [("provided", "not-provided"), ("delighted",)])
async def test_a_completion_needs_one_known_outcome(
    gateway: FhirApp, fhir: httpx.AsyncClient, said: tuple[str, ...]
) -> None:
    gateway.offer("ref-1")
    started = fhir_change(ReferralStarted, ReferralStatus.IN_PROGRESS, 4)
    gateway.record(AGENCY, "started", started)
    current = await task(gateway, fhir, "ref-1")
    assert current["status"] == "in-progress"
    got = await put(gateway, fhir, {**current, "status": "completed", "output": outcomes(*said)})
    assert got.status_code == 422, got.text
    found = issue(got)
    assert found["wegweiser"] == "fhir.outcome-code" and found["expression"] == ["Task.output"]
    assert gateway.outbox() == [] and gateway.version("ref-1") == 2
    taken = await put(
        gateway, fhir, {**current, "status": "completed", "output": outcomes("provided")}
    )
    assert taken.status_code == 200 and [a["action"] for _, a in gateway.outbox()] == ["complete"]


async def test_an_update_to_a_version_read_before_a_change_is_refused(
    gateway: FhirApp, fhir: httpx.AsyncClient
) -> None:
    gateway.offer("ref-1")
    read = await fhir.get(f"/{AGENCY}/Task/ref-1", headers=gateway.auth())
    assert read.headers["etag"] == 'W/"1"'
    accepted = {**read.json(), "status": "accepted"}
    got = await put(gateway, fhir, accepted, **{"if-match": 'W/"0"'})
    assert got.status_code == 412 and issue(got)["wegweiser"] == "fhir.version-conflict"
    assert gateway.outbox() == [] and gateway.version("ref-1") == 1
    got = await put(gateway, fhir, accepted, **{"if-match": read.headers["etag"]})
    assert got.status_code == 200 and got.headers["etag"] == 'W/"2"'


async def test_a_comment_for_an_office_without_a_key_on_file_is_refused(
    gateway: FhirApp, fhir: httpx.AsyncClient
) -> None:
    gateway.offer("ref-1", office="office-2")  # its signing key alone on file, none to seal to
    reason = {
        "coding": [{"system": codes.REASON, "code": "no-capacity"}],
        "text": f"Keine Plätze bis März, {CANARY}",
    }
    current = await task(gateway, fhir, "ref-1")
    got = await put(gateway, fhir, {**current, "status": "rejected", "statusReason": reason})
    assert got.status_code == 422, got.text
    found = issue(got)
    assert found["wegweiser"] == "fhir.no-office-key"
    assert found["expression"] == ["Task.statusReason.text"] and CANARY not in got.text
    assert gateway.outbox() == [] and gateway.version("ref-1") == 1


DELETED = {
    "type": {"coding": [{"system": codes.OUTPUT_TYPE, "code": codes.DELETION_CONFIRMED}]},
    "valueBoolean": True,
}


async def test_a_deletion_is_confirmed_only_once_asked_and_on_its_own(
    gateway: FhirApp, fhir: httpx.AsyncClient
) -> None:
    gateway.offer("ref-1")
    current = await task(gateway, fhir, "ref-1")
    early = await put(gateway, fhir, {**current, "output": [DELETED]})
    assert early.status_code == 409 and issue(early)["wegweiser"] == "deletion.not-requested"
    assert gateway.outbox() == []
    withdraw(gateway)
    current = await task(gateway, fhir, "ref-1")
    mixed = await put(gateway, fhir, {**current, "status": "received", "output": [DELETED]})
    assert mixed.status_code == 422 and issue(mixed)["wegweiser"] == "fhir.deletion-alone"
    assert gateway.outbox() == [] and gateway.version("ref-1") == 2  # the offer, the request


async def test_a_deleted_case_is_gone(gateway: FhirApp, fhir: httpx.AsyncClient) -> None:
    gateway.offer("ref-1")
    fields = withdraw(gateway)
    gateway.record(AGENCY, "deletion-confirmed", DeletionConfirmed(**fields))
    for accept in ("application/fhir+json", "application/jose"):
        got = await fhir.get(
            f"/{AGENCY}/Binary/ref-1", headers={**gateway.auth(), "accept": accept}
        )
        assert got.status_code == 410 and issue(got)["wegweiser"] == "fhir.deleted"
        assert issue(got)["code"] == "deleted"


def withdraw(gateway: FhirApp) -> dict[str, Any]:
    """The referral service asks the agency to delete ref-1 (the consent was withdrawn); the
    fields of that news."""
    fields = deletion_asked()
    gateway.record(AGENCY, "deletion-requested", DeletionRequested(**fields))
    return fields


# --- Subscriptions --------------------------------------------------------------------------


def open_subscription(gateway: FhirApp, agency: str) -> str:
    """A Subscription of the agency's, as the endpoint records it before its handshake."""
    wanted = Subscription.model_validate(subscription(NOTIFY_TO[agency]))

    def made(session: Session) -> str:
        return subscriptions.open_subscription(session, agency, wanted, NOTIFY_TO[agency])

    return gateway.db.run_sync(made)


def _content(code: str) -> dict[str, Any]:
    extension = [{"url": f"{codes.BACKPORT}/backport-payload-content", "valueCode": code}]
    return {
        "type": "rest-hook",
        "endpoint": NOTIFY_TO[AGENCY],
        "_payload": {"extension": extension},
    }


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"criteria": "Task?status=requested"}, "fhir.subscription-topic"),
        ({"channel": {"type": "email", "endpoint": "mailto:a@b.example"}},
         "fhir.subscription-channel"),
        ({"channel": {"type": "rest-hook", "endpoint": "http://agency.example/hook"}},
         "fhir.subscription-endpoint"),
        ({"channel": {"type": "rest-hook", "endpoint": "https://127.0.0.1:4222/wegweiser"}},
         "fhir.subscription-endpoint"),
        ({"channel": {"type": "rest-hook", "endpoint": "https://klinik.example/fhir-hooks"}},
         "fhir.subscription-endpoint"),
        ({"channel": {"type": "rest-hook", "endpoint": NOTIFY_TO[AGENCY],
                      "payload": "application/xml"}}, "fhir.subscription-payload"),
        ({"channel": _content("full-resource")}, "fhir.subscription-payload"),
    ],
)  # fmt: skip
async def test_a_subscription_the_endpoint_cannot_keep_is_refused(
    gateway: FhirApp, fhir: httpx.AsyncClient, change: dict[str, Any], code: str
) -> None:
    made = await fhir.post(
        f"/{AGENCY}/Subscription",
        content=json.dumps(subscription("https://agency.example/hook", **change)),
        headers={**gateway.auth(), **FHIR_JSON},
    )
    assert made.status_code == 422, made.text
    assert issue(made)["wegweiser"] == code
    assert issue(made)["expression"][0].startswith("Subscription.")
    assert count(gateway.db, SubscriptionRow) == 0


async def test_a_subscription_of_an_agency_the_directory_lists_no_address_for_is_refused(
    tmp_path: Path,
) -> None:
    gateway = FhirApp(tmp_path, listed={})
    try:
        async with gateway.client() as fhir:
            made = await fhir.post(
                f"/{AGENCY}/Subscription",
                content=json.dumps(subscription(NOTIFY_TO[AGENCY])),
                headers={**gateway.auth(), **FHIR_JSON},
            )
        assert made.status_code == 422, made.text
        found = issue(made)
        assert found["wegweiser"] == "fhir.subscription-endpoint"
        assert "lists no https address" in found["diagnostics"]
        assert count(gateway.db, SubscriptionRow) == 0
    finally:
        await gateway.dispose()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{", 400, "fhir.unparseable"),
        ('{"resourceType": "Task", "status": "requested", "intent": "order"}', 400,
         "fhir.unparseable"),
        (json.dumps(subscription("https://x.example", reason="x" * http.LARGEST_BODY)), 413,
         "fhir.too-large"),
    ],
)  # fmt: skip
async def test_a_body_that_is_no_fhir_subscription_is_refused(
    gateway: FhirApp, fhir: httpx.AsyncClient, body: str, status: int, code: str
) -> None:
    made = await fhir.post(
        f"/{AGENCY}/Subscription", content=body, headers={**gateway.auth(), **FHIR_JSON}
    )
    assert made.status_code == status, made.text
    assert issue(made)["wegweiser"] == code
    assert count(gateway.db, SubscriptionRow) == 0


# --- routes ---------------------------------------------------------------------------------


async def test_an_unknown_route_is_an_operation_outcome(
    gateway: FhirApp, fhir: httpx.AsyncClient
) -> None:
    for path in (f"/{AGENCY}/Patient/p-1", f"/{AGENCY}", "/"):
        got = await fhir.get(path, headers=gateway.auth())
        assert got.status_code == 404, path
        found = issue(got)
        assert found["code"] == "not-supported" and found["wegweiser"] == "fhir.route"


async def test_a_method_a_route_does_not_take_is_an_operation_outcome(
    gateway: FhirApp, fhir: httpx.AsyncClient
) -> None:
    gateway.offer("ref-1")
    for method, path in [
        ("POST", f"/{AGENCY}/Task"),
        ("DELETE", f"/{AGENCY}/Task/ref-1"),
        ("PATCH", f"/{AGENCY}/Task/ref-1"),
        ("PUT", f"/{AGENCY}/Binary/ref-1"),
        ("PUT", f"/{AGENCY}/Subscription/sub-1"),
    ]:
        got = await fhir.request(method, path, headers=gateway.auth(), content="{}")
        assert got.status_code == 405, (method, path)
        assert issue(got)["wegweiser"] == "fhir.route"
    assert gateway.outbox() == [] and gateway.version("ref-1") == 1
    assert count(gateway.db, OutboxRow) == 0


async def test_a_405_names_the_methods_the_route_takes(
    gateway: FhirApp, fhir: httpx.AsyncClient
) -> None:
    got = await fhir.post(f"/{AGENCY}/Task", headers=gateway.auth(), content="{}")
    assert got.status_code == 405 and got.headers["allow"] == "GET"

"""The AsyncAPI documents say what the services run, and are valid AsyncAPI 3.0.0: checked
against the official schema (tests/contract/asyncapi/), and against the code that wires each
service (its consumers, its queries, the catalogue's events it publishes)."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from schemas import subjects
from schemas.catalogue import CATALOGUE
from wegweiser import registry
from wegweiser.contracts import ASYNCAPI_DIR

OFFICIAL = Draft7Validator(
    json.loads((Path(__file__).parent / "asyncapi" / "3.0.0.json").read_text("utf-8"))
)
ON_BROKER = [s.name for s in registry.SERVICES if s.on_broker]


@functools.cache
def _read(name: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, where it is built
    document: dict[str, Any] = yaml.load((ASYNCAPI_DIR / f"{name}.yaml").read_bytes(), loader)
    return document


def committed(name: str) -> dict[str, Any]:
    """The committed document of service `name` (read once; each test gets its own copy)."""
    return copy.deepcopy(_read(name))


@pytest.mark.parametrize("name", ON_BROKER)
def test_each_document_is_valid_asyncapi_3(name: str) -> None:
    errors = [f"{list(e.path)}: {e.message}" for e in OFFICIAL.iter_errors(committed(name))]
    assert errors == []


def test_the_official_schema_refuses_a_broken_document() -> None:
    broken = committed("directory")
    broken["operations"]["send-de.wegweiser.deadletter.v1"]["action"] = "publish"  # AsyncAPI 2
    assert not OFFICIAL.is_valid(broken)


def test_every_payload_is_a_schema_not_an_empty_message() -> None:
    for name in ON_BROKER:
        document = committed(name)
        for message in document["components"]["messages"].values():
            payload = message["payload"]
            if "$ref" not in payload:  # a query that carries nothing (the audit's tree head)
                assert payload["type"] == "null" and message["name"].endswith("-request")
                continue
            ref = payload["$ref"].removeprefix("#/components/schemas/")
            assert document["components"]["schemas"][ref], (name, message["name"])


def test_each_query_is_answered_by_the_service_the_broker_lets_answer_it() -> None:
    answered = {
        (name, op["channel"]["$ref"].split("/")[-1])
        for name in ON_BROKER
        for op in committed(name)["operations"].values()
        if "reply" in op
    }
    expected = {
        (q.answered_by, "ww-query-" + q.subject.removeprefix("wwq.").replace("<agency>", "agency"))
        for q in subjects.QUERIES
    }
    assert answered == expected


def test_each_catalogue_event_is_sent_by_its_producer() -> None:
    sent = {
        (name, op["channel"]["$ref"].split("/")[-1])
        for name in ON_BROKER
        for op in committed(name)["operations"].values()
        if op["action"] == "send"
    }
    for spec in CATALOGUE:
        if spec.producer in ON_BROKER:
            assert (spec.producer, spec.event_type) in sent
    # the gateway sends the answers of the agencies it acts for
    assert ("gateway", "de.wegweiser.agency.answer.v3") in sent

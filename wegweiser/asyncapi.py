"""Each service's AsyncAPI 3.0 document, made from what the service runs.

- What it **sends**: the catalogue's events it produces (`schemas/catalogue.py`; the gateway
  also those of the agencies it acts for), each published through its outbox.
- What it **receives**: the durable consumers its bootstrap reads (`ServiceRuntime.consumers`,
  the filters from infra/jetstream.toml) with the contract of each route; a consumer that takes
  every event as it is (the audit's) receives every catalogue event its filters match; the
  gateway also reads each agency's consumer (`agency-<agency>`) for the agencies it serves.
- The **queries** it answers (`ServiceRuntime.queries`, `schemas/subjects.QUERIES`), with
  their request and reply contracts; each is answered by one instance of the service (a
  queue group named after it).

Every message's payload is the JSON Schema of its contract (the CloudEvents envelope around
the event for the stream's events), so a partner can generate code from the document.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, TypeAdapter

from schemas import subjects
from schemas.catalogue import AGENCY_PRODUCER, CATALOGUE, EVERY_SERVICE, EventSpec
from schemas.envelope import Envelope
from schemas.queries import QueryFailed
from schemas.subjects import matches
from wegweiser.platform import topology
from wegweiser.platform.runtime import ServiceRuntime
from wegweiser.registry import Service

PARAMETER = re.compile(r"<([a-z]+)>")
PARAMETERS = {
    "agency": "the agency's id",
    "action": "the agency's answer: acknowledge, accept, reject, start, hold, resume, "
    "complete, confirm-deletion, forward",
    "service": "the service that gave up on the message",
}
NATS_BINDING = "0.1.0"


def document(service: Service, runtime: ServiceRuntime) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of one service, as `runtime` (built by its bootstrap) runs."""
    doc = _Document(service.name)
    for spec in CATALOGUE:
        producers = {service.name, EVERY_SERVICE}
        if service.acts_for_agencies:
            producers.add(AGENCY_PRODUCER)
        if spec.producer in producers:
            doc.send(spec)
    for group, routes in runtime.consumers.items():
        consumer = topology.partitions(group)[0]
        if routes is None:
            for spec in CATALOGUE:
                if any(_delivers(f, spec.subject) for f in consumer.filter_subjects):
                    doc.receive(spec, group, consumer.partitions)
        else:
            for route in routes:
                spec = _event_spec(route.contract)
                doc.receive(spec, group, consumer.partitions, route.pattern)
    if service.acts_for_agencies:  # each agency's consumer: agency-<agency>, on its referrals
        feed = subjects.agency_referrals("x")  # what the catalogue's <agency> becomes below
        for spec in CATALOGUE:
            if _delivers(feed, spec.subject):
                doc.receive(spec, "agency-<agency>", 1)
    for subject, answer in runtime.queries.items():
        doc.answer(subject, answer.contract, answer.reply)
    return doc.body


class _Document:
    def __init__(self, name: str) -> None:
        self.name = name
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}
        self.schemas: dict[str, Any] = {}

    @property
    def body(self) -> dict[str, Any]:
        return {
            "asyncapi": "3.0.0",
            "info": {
                "title": f"Wegweiser {self.name}",
                "version": "1",
                "description": f"What the {self.name} service sends, receives and answers "
                "over NATS. Stream events are CloudEvents 1.0 in structured mode, published to "
                f"JetStream stream {subjects.STREAM} with Nats-Msg-Id = the event id; they are "
                "read through durable pull consumers with explicit acks.",
            },
            "defaultContentType": "application/json",
            "servers": {
                "development": {
                    "host": "localhost:4222",
                    "protocol": "nats",
                    "description": "`wegweiser up`'s embedded nats-server",
                }
            },
            "channels": self.channels,
            "operations": self.operations,
            "components": {"messages": self.messages, "schemas": self.schemas},
        }

    def send(self, spec: EventSpec) -> None:
        channel = self._event_channel(spec)
        self.operations[f"send-{spec.event_type}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{spec.event_type}"}],
            "summary": f"Published through the {self.name} service's outbox.",
        }

    def receive(
        self, spec: EventSpec, consumer: str, partitions: int, pattern: str | None = None
    ) -> None:
        channel = self._event_channel(spec)
        spread = f", in {partitions} partitions by referral" if partitions > 1 else ""
        self.operations[f"receive-{consumer}-{spec.event_type}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{spec.event_type}"}],
            "summary": f"Read through the durable consumer {consumer}{spread}"
            + (f" (route {pattern})" if pattern else "")
            + ".",
        }

    def answer(self, subject: str, request: type[BaseModel] | None, reply: Any) -> None:
        query = _query(subject)
        name = query.subject.removeprefix("wwq.")
        asked = f"ww-query-{name}".replace("<agency>", "agency")
        replied = f"{asked}-reply"
        asked_message = f"{name}-request".replace("<agency>", "agency")
        replied_message = f"{name}-reply".replace("<agency>", "agency")
        self.channels[asked] = {
            "address": _address(query.subject),
            "messages": {asked_message: self._message(asked_message, request, request)},
            **_parameters(query.subject),
            "description": f"Asked by: {', '.join(query.asked_by)}.",
        }
        if request is not None:  # a malformed query is answered with why
            reply = reply | QueryFailed
        self.channels[replied] = {
            "address": None,
            "messages": {replied_message: self._message(replied_message, reply, None)},
            "description": "The asker's own reply subject.",
        }
        self.operations[f"answer-{asked}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{asked}"},
            "messages": [{"$ref": f"#/channels/{asked}/messages/{asked_message}"}],
            "reply": {
                "channel": {"$ref": f"#/channels/{replied}"},
                "messages": [{"$ref": f"#/channels/{replied}/messages/{replied_message}"}],
            },
            "bindings": {"nats": {"queue": self.name, "bindingVersion": NATS_BINDING}},
            "summary": "Answered by one instance of the service (its queue group).",
        }

    def _event_channel(self, spec: EventSpec) -> str:
        channel = spec.event_type
        if channel not in self.channels:
            model = Envelope[spec.model]  # type: ignore[name-defined]
            self.channels[channel] = {
                "address": _address(spec.subject),
                "messages": {spec.event_type: self._message(spec.event_type, model, spec.model)},
                **_parameters(spec.subject),
                "description": (spec.model.__doc__ or "").strip(),
            }
        return channel

    def _message(self, name: str, payload: Any, documented: Any) -> dict[str, Any]:
        """A message whose payload is `payload`'s JSON Schema (none: an empty body)."""
        self.messages[name] = {
            "name": name,
            "title": name,
            "contentType": "application/json",
            "payload": self._schema(name, payload),
            **({"summary": _first_line(documented.__doc__)} if documented is not None else {}),
        }
        return {"$ref": f"#/components/messages/{name}"}

    def _schema(self, name: str, payload: Any) -> dict[str, Any]:
        if payload is None:
            return {"type": "null", "description": "nothing: the request's body is ignored"}
        schema = TypeAdapter(payload).json_schema(ref_template="#/components/schemas/{model}")
        self.schemas.update(schema.pop("$defs", {}))
        self.schemas[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}


def _event_spec(contract: type[BaseModel]) -> EventSpec:
    return next(spec for spec in CATALOGUE if spec.model is contract)


def _query(pattern: str) -> subjects.Query:
    return next(q for q in subjects.QUERIES if q.pattern == pattern)


def _delivers(filter_subject: str, template: str) -> bool:
    """Whether a consumer filtered on `filter_subject` receives events of a catalogue subject
    (its <parameters> stand for any one token)."""
    return matches(filter_subject, PARAMETER.sub("x", template))


def _address(template: str) -> str:
    return PARAMETER.sub(r"{\1}", template)


def _parameters(template: str) -> dict[str, Any]:
    names = PARAMETER.findall(template)
    if not names:
        return {}
    return {"parameters": {n: {"description": PARAMETERS[n]} for n in names}}


def _first_line(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())

"""Who may do what on the broker, derived from the declaration and nothing else.

The declaration is the event catalogue (which service produces which event, on which subject:
`schemas/catalogue.py`), the durable consumers in `infra/jetstream.toml` (which service reads
what), and the core queries (`schemas/subjects.QUERIES`: who answers, who asks). From it comes
one `Grant` per principal, which `nats_auth` renders into NATS accounts:

* the stream's own account holds JetStream and only the administrator;
* each service, and each agency, lives in an account of its own and imports exactly what its
  grant names: publishing its subjects (as a service import, so that a PubAck goes back to
  the publisher's account), fetching from, acking on and inspecting its own durables, the
  stream's info, and the queries it may ask.

A reply subject can therefore only ever name a subject in the principal's own account, where
it can reach nothing but what the principal could publish itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from schemas import subjects
from schemas.catalogue import AGENCY_PRODUCER, CATALOGUE, EVERY_SERVICE
from schemas.vocabulary import AgencyAction
from wegweiser.platform import topology

STREAM_ACCOUNT = "WEGWEISER"
ADMIN = "admin"
JS_API_PREFIX = "JS.WEGWEISER.API"
"""Where another account reaches the stream account's JetStream API (`$JS.API`): imported
under this prefix, so that the importer's own `$JS.API` (which answers "JetStream not enabled
for account") does not shadow it. Clients pass it as nats-py's `jetstream(prefix=...)`."""
GATEWAY_CHANNELS = ("webhook", "email", "fhir")
"""The adapters the partner gateway plays for an agency (the others take part over NATS)."""


class Service(Protocol):
    """A service as the grants need it: handed in by the caller from the list of services
    (wegweiser/registry.py), which the platform does not read."""

    @property
    def name(self) -> str: ...

    @property
    def on_broker(self) -> bool:
        """It talks to NATS with a user of its own (the web app does not)."""
        ...

    @property
    def acts_for_agencies(self) -> bool:
        """It takes part for the agencies of GATEWAY_CHANNELS (the gateway)."""
        ...


@dataclass(frozen=True, slots=True)
class Agency:
    """An agency as the broker sees it: its id and how it receives its referrals."""

    id: str
    channel: str  # nats, or one of GATEWAY_CHANNELS

    @property
    def principal(self) -> str:
        return f"agency-{subjects.token(self.id)}"


@dataclass(frozen=True, slots=True)
class Grant:
    """Everything one principal may do on the broker; nothing else is open to it."""

    principal: str
    publishes: tuple[str, ...]
    """Subjects it may publish into the stream (wildcards allowed)."""
    consumes: tuple[str, ...]
    """Durable consumers it may fetch from, ack on and read the info of."""
    asks: tuple[str, ...] = ()
    """Core queries it may send (answered by another principal)."""
    answers: tuple[str, ...] = ()
    """Core queries it answers."""
    agency: bool = False
    """An outside organisation: its account gets the agency limits of infra/."""

    @property
    def account(self) -> str:
        return self.principal.upper().replace("-", "_")

    def jetstream_api(self) -> tuple[str, ...]:
        """The JetStream API subjects the grant opens (all in the stream's account)."""
        stream = subjects.STREAM
        api = [f"$JS.API.STREAM.INFO.{stream}"] if not self.agency else []
        owned = {spec.durable for spec in topology.consumers()}
        for durable in self.consumes:
            api += [
                f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
                f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
                f"$JS.ACK.{stream}.{durable}.>",
            ]
            if durable in owned:  # hand its partition to a waiting instance at once
                api.append(f"$JS.API.CONSUMER.UNPIN.{stream}.{durable}")
        return tuple(api)


def local_name(subject: str) -> str:
    """The name under which another account imports a subject of the stream account."""
    if subject.startswith("$JS.API."):
        return JS_API_PREFIX + subject.removeprefix("$JS.API")
    return subject


def _patterns(subject: str, service: str | None = None, agency: str | None = None) -> list[str]:
    """A catalogue subject (`ww.answer.<agency>.<action>`) as the NATS subjects it stands
    for: `<agency>` and `<service>` become the principal's own id (else `*`), `<action>` each
    action of the lifecycle, so that no free token is left for a sender to fill."""
    tokens: list[list[str]] = []
    for token in subject.split("."):
        if token == "<agency>":
            tokens.append([agency or "*"])
        elif token == "<service>":
            tokens.append([service or "*"])
        elif token == "<action>":
            tokens.append([a.value for a in AgencyAction])
        elif token.startswith("<"):
            tokens.append(["*"])
        else:
            tokens.append([token])
    return [".".join(parts) for parts in itertools.product(*tokens)]


def _agency_publishes(agency_id: str) -> tuple[str, ...]:
    return tuple(
        pattern
        for spec in CATALOGUE
        if spec.producer == AGENCY_PRODUCER
        for pattern in _patterns(spec.subject, agency=agency_id)
    )


def service_grant(service: Service, agencies: Iterable[Agency] = ()) -> Grant:
    """What one service may do: produce its catalogue events, read its durables, ask and
    answer its queries. The gateway also acts for the agencies it serves (GATEWAY_CHANNELS)."""
    name = service.name
    publishes = [
        pattern
        for spec in CATALOGUE
        if spec.producer in (name, EVERY_SERVICE)
        for pattern in _patterns(spec.subject, service=name)
    ]
    consumes = [spec.durable for spec in topology.consumers(name)]
    if service.acts_for_agencies:
        for agency in agencies:
            if agency.channel in GATEWAY_CHANNELS:
                publishes += _agency_publishes(agency.id)
                consumes.append(topology.agency_consumer(agency.id).durable)
    return Grant(
        principal=name,
        publishes=tuple(dict.fromkeys(publishes)),
        consumes=tuple(consumes),
        asks=tuple(q.subject for q in subjects.QUERIES if name in q.asked_by),
        answers=tuple(q.pattern for q in subjects.QUERIES if q.answered_by == name),
    )


def agency_grant(agency_id: str) -> Grant:
    """What an agency that reads its referrals over NATS may do: its own durable, its own
    answers and capacity, ask after its own answers' verdicts, nothing else."""
    return Grant(
        principal=f"agency-{subjects.token(agency_id)}",
        publishes=_agency_publishes(agency_id),
        consumes=(topology.agency_consumer(agency_id).durable,),
        asks=tuple(q.of(agency_id) for q in subjects.QUERIES if subjects.EACH_AGENCY in q.asked_by),
        agency=True,
    )


def inbox_prefix(agency_id: str) -> str:
    """The inbox prefix the agency SDK uses (the default `_INBOX` works as well: each agency's
    inboxes are in its own account)."""
    return f"_INBOX_{subjects.token(agency_id)}"


def agency_connection(agency_id: str) -> dict[str, object]:
    """The names an agency's NATS integrator needs, with nothing secret among them."""
    spec = topology.agency_consumer(agency_id)
    return {
        "stream": subjects.STREAM,
        "durable": spec.durable,
        "filter_subjects": list(spec.filter_subjects),
        "js_api_prefix": JS_API_PREFIX,
        "inbox_prefix": inbox_prefix(agency_id),
        "publishes": list(_agency_publishes(agency_id)),
        "asks": list(agency_grant(agency_id).asks),
    }


def every_grant(services: Iterable[Service], agencies: Iterable[Agency]) -> list[Grant]:
    """The grant of every service on the broker and of every NATS agency."""
    agencies = list(agencies)
    grants = [service_grant(s, agencies) for s in services if s.on_broker]
    grants += [agency_grant(a.id) for a in agencies if a.channel == "nats"]
    return grants

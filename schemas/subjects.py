"""The one subject scheme of Wegweiser.

    ww.intake.<entity>.<event>         intake's events: requests, consents, referral commands
    ww.referral.<agency>.<event>       every event about a referral, under its agency, so that
                                       an agency's access can be limited to ww.referral.<own id>.>
    ww.answer.<agency>.<action>        an agency's answers; it may publish only under its own id
    ww.agency.<agency>.<fact>          what an agency says about itself (capacity, waiting time)
    ww.deadletter.<service>            messages a service gave up on, with the reason
    ww.audit.head-signed               each tree head the audit log signs, for its witnesses

All six live in the JetStream stream WEGWEISER. Queries that need an immediate answer use
core NATS request/reply under `wwq.` so that the stream never captures (and acks) them:

    wwq.directory.resolve              rank agencies for a need, with reasons
    wwq.directory.agency               look one agency up by id
    wwq.directory.agencies             list the agencies of some adapters (the gateway's)
    wwq.audit.tree-head                sign a tree head now and return it (admin tools)
    wwq.referral.verdict.<agency>      what became of one of the agency's answers (its own only)

`QUERIES` says who answers each and who may ask it; the broker's permissions come from it.
"""

import re
from dataclasses import dataclass

STREAM = "WEGWEISER"
STREAM_SUBJECTS = (
    "ww.intake.>",
    "ww.referral.>",
    "ww.answer.>",
    "ww.agency.>",
    "ww.directory.>",
    "ww.deadletter.>",
    "ww.audit.>",
)
AUDIT_HEAD_SIGNED = "ww.audit.head-signed"

_TOKEN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

REQUEST_RECORDED = "ww.intake.request.recorded"
NEED_UNMET = "ww.intake.need.unmet"
CONSENT_RECORDED = "ww.intake.consent.recorded"
CONSENT_WITHDRAWN = "ww.intake.consent.withdrawn"
PERSON_LINK_ISSUED = "ww.intake.person-link.issued"
REFERRAL_REQUESTED = "ww.intake.referral.requested"
CANCELLATION_REQUESTED = "ww.intake.referral.cancellation-requested"
FORWARD_REFUSED = "ww.intake.referral.forward-refused"

ALL_REFERRAL_EVENTS = "ww.referral.>"
ALL_ANSWERS = "ww.answer.>"

DIRECTORY_RESOLVE = "wwq.directory.resolve"
DIRECTORY_AGENCY = "wwq.directory.agency"
DIRECTORY_AGENCIES = "wwq.directory.agencies"
DIRECTORY_PLACE = "wwq.directory.place"
AUDIT_TREE_HEAD = "wwq.audit.tree-head"
REFERRAL_VERDICT = "wwq.referral.verdict.<agency>"

EACH_AGENCY = "agency"
"""In `Query.asked_by`: every agency asks, each under its own id (`<agency>`) only."""


@dataclass(frozen=True, slots=True)
class Query:
    """A core request/reply subject, the service that answers it and those that may ask."""

    subject: str
    answered_by: str
    asked_by: tuple[str, ...]

    @property
    def pattern(self) -> str:
        """What the answering service listens on: an agency's own query (`<agency>`) for
        every agency."""
        return self.subject.replace("<agency>", "*")

    def of(self, agency_id: str) -> str:
        """The subject one agency asks on."""
        return self.subject.replace("<agency>", token(agency_id))


QUERIES = (
    Query(DIRECTORY_RESOLVE, "directory", ("intake",)),
    Query(DIRECTORY_AGENCY, "directory", ("intake",)),
    Query(DIRECTORY_AGENCIES, "directory", ("gateway",)),
    Query(DIRECTORY_PLACE, "directory", ("intake",)),
    Query(AUDIT_TREE_HEAD, "audit", ("admin",)),
    Query(REFERRAL_VERDICT, "referral", (EACH_AGENCY,)),
)
VERDICT_QUERY = QUERIES[-1]


def matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: `*` is one token, `>` the rest."""
    p, s = pattern.split("."), subject.split(".")
    for i, part in enumerate(p):
        if part == ">":
            return len(s) > i
        if i >= len(s) or (part != "*" and part != s[i]):
            return False
    return len(p) == len(s)


def is_token(value: str) -> bool:
    """Whether `value` is safe as one subject token (the form of every agency id)."""
    return _TOKEN.match(value) is not None


def token(value: str) -> str:
    """Return `value` if it is safe as one subject token (agency ids are), else raise."""
    if not is_token(value):
        raise ValueError(f"{value!r} is not a valid subject token (a-z, 0-9, '-')")
    return value


def referral_event(agency_id: str, event: str) -> str:
    """Subject of a referral event addressed to (and readable by) one agency."""
    return f"ww.referral.{token(agency_id)}.{event}"


def directory_event(agency_id: str, event: str) -> str:
    """Subject of the directory's news about one agency's identity (for the audit)."""
    return f"ww.directory.{token(agency_id)}.{event}"


def agency_referrals(agency_id: str) -> str:
    """Filter for everything one agency may read."""
    return f"ww.referral.{token(agency_id)}.>"


def answer(agency_id: str, action: str) -> str:
    """Subject on which an agency answers."""
    return f"ww.answer.{token(agency_id)}.{action}"


def agency_from_subject(subject: str) -> str:
    """The agency token of a ww.referral.* or ww.answer.* subject."""
    parts = subject.split(".")
    if len(parts) != 4 or parts[1] not in {"referral", "answer", "agency"}:
        raise ValueError(f"{subject!r} carries no agency")
    return parts[2]


def agency_capacity(agency_id: str) -> str:
    """Subject on which an agency reports its capacity and waiting time."""
    return f"ww.agency.{token(agency_id)}.capacity"


def dead_letter(service: str) -> str:
    """Subject where a service parks a message it gave up on."""
    return f"ww.deadletter.{token(service)}"


def referral_kind(subject: str) -> str:
    """The event token of a ww.referral.<agency>.<event> subject."""
    return subject.rsplit(".", 1)[-1]

"""The closed forms every field of an audit entry must have, or be withheld.

An append-only log can never be erased, so it must never take in personal data, whoever sent
the event. Each field the log keeps has a form: an id of its kind, a code, a time, a number,
the agency the NATS subject names. A value that does not have its field's form (a name in
`subject`, an address in `correlationid`, a date of birth as an `action`) is replaced by
`WITHHELD` and the field is listed in the entry's `anomalies`, for the ombudsperson to see
that a sender put something there, never what.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from schemas import envelope
from schemas.catalogue import BY_TYPE, CATALOGUE
from schemas.events import AGE_BANDS
from schemas.upcasting import UPCASTERS
from schemas.vocabulary import AgencyAction, Outcome, ReasonCode, ReferralStatus, WithdrawnBy

WITHHELD = "‹withheld: not of its field's form›"

ANY_ID = re.compile(envelope.ID)
TOKEN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
CODE = re.compile(r"^[a-z][a-z0-9-]{0,40}(?:\.[a-z][a-z0-9-]{0,40}){0,3}$")
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$")
SOURCE = re.compile(r"^/wegweiser/(?:agency/|gateway/)?[a-z0-9][a-z0-9-]{0,62}$")
HEX = re.compile(r"^[0-9a-f]{16,128}$")
VERSION = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
KID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_ACTIONS = "(?:" + "|".join(re.escape(a.value) for a in AgencyAction) + ")"


def _subject_form(subject: str) -> re.Pattern[str]:
    """A catalogue subject as the NATS subjects it stands for (`<action>`: the lifecycle's)."""
    tokens = [
        _ACTIONS if t == "<action>" else "[a-z0-9][a-z0-9-]{0,62}" if t.startswith("<") else
        re.escape(t)
        for t in subject.split(".")
    ]  # fmt: skip
    return re.compile("^" + r"\.".join(tokens) + "$")


_SUBJECTS = tuple(_subject_form(s.subject) for s in CATALOGUE)

Check = Callable[[Any, "Context"], bool]


class Context:
    """What a field's form may depend on: the agency the NATS subject names, if any."""

    def __init__(self, nats_subject: str) -> None:
        parts = nats_subject.split(".")
        self.agency = (
            parts[2]
            if len(parts) == 4 and parts[1] in {"answer", "agency", "referral", "directory"}
            else None
        )
        self.from_agency = len(parts) > 1 and parts[1] in {"answer", "agency"}


def matching(pattern: re.Pattern[str]) -> Check:
    return lambda value, _ctx: isinstance(value, str) and bool(pattern.match(value))


def one_of(*values: str) -> Check:
    allowed = frozenset(values)
    return lambda value, _ctx: value in allowed


def either(*checks: Check) -> Check:
    return lambda value, ctx: any(check(value, ctx) for check in checks)


def count(value: Any, _ctx: Context) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**12


def flag(value: Any, _ctx: Context) -> bool:
    return isinstance(value, bool)


def list_of(check: Check) -> Check:
    return lambda value, ctx: isinstance(value, list) and all(check(v, ctx) for v in value)


def nats_subject(value: Any, _ctx: Context) -> bool:
    return isinstance(value, str) and any(p.match(value) for p in _SUBJECTS)


def the_agency(value: Any, ctx: Context) -> bool:
    """An agency id: in what an agency sends, its own (the subject's), nothing else."""
    if not (isinstance(value, str) and TOKEN.match(value)):
        return False
    return not ctx.from_agency or value == ctx.agency


def from_a_service(check: Check) -> Check:
    """A value only the services send (the controller's name): never from an agency."""
    return lambda value, ctx: not ctx.from_agency and check(value, ctx)


def text(limit: int) -> Check:
    return lambda value, _ctx: isinstance(value, str) and 0 < len(value) <= limit


ID = matching(ANY_ID)
STATUS = one_of(*(s.value for s in ReferralStatus))
ACTION = one_of(*(a.value for a in AgencyAction))

ENVELOPE: dict[str, Check] = {
    "id": ID,
    "type": one_of(*BY_TYPE, *UPCASTERS),  # and the older versions still read
    "source": matching(SOURCE),
    "subject": either(ID, the_agency, nats_subject),
    "time": matching(TIME),
    "correlationid": ID,
    "causationid": ID,
}

DATA: dict[str, Check] = {
    "referral_id": ID,
    "request_id": ID,
    "consent_id": ID,
    "office_id": matching(TOKEN),
    "agency_id": the_agency,
    "agency": the_agency,
    "agency_kind": matching(TOKEN),
    "kind": matching(TOKEN),
    "status": STATUS,
    "current_status": either(STATUS, lambda v, _c: v is None),
    "version": count,
    "action": ACTION,
    "attempted": ACTION,
    "occurred_at": matching(TIME),
    "acknowledge_by": matching(TIME),
    "confirm_by": matching(TIME),
    "withdrawn_at": matching(TIME),
    "withdrawn_by": one_of(*(w.value for w in WithdrawnBy)),
    "recorded_at": matching(TIME),
    "given_at": matching(TIME),
    "expires_at": either(matching(TIME), lambda v, _c: v is None),
    "urgency": matching(TOKEN),
    "code": matching(CODE),
    "reason": one_of(*(r.value for r in ReasonCode)),  # free text before version 2: withheld
    "outcome": one_of(*(o.value for o in Outcome)),
    "sender": matching(re.compile(r"^(?:office|agency:[a-z0-9][a-z0-9-]{0,62})$")),
    "service": matching(TOKEN),
    "original_subject": nats_subject,
    "original_event_id": either(ID, lambda v, _c: v is None),
    "stream_sequence": count,
    "deliveries": count,
    "released_categories": list_of(matching(CODE)),
    "recipient_kid": matching(TOKEN),
    "signer_kid": matching(TOKEN),
    "purposes": list_of(matching(CODE)),
    "data_categories": list_of(matching(CODE)),
    "explicit_special_categories": either(flag, list_of(matching(CODE))),
    "method": matching(CODE),
    "text_version": matching(VERSION),
    "text_language": matching(TOKEN),
    "text_sha256": matching(HEX),
    "person_reference": either(matching(HEX), matching(TOKEN)),
    "controller": from_a_service(text(200)),
    "change": matching(TOKEN),
    "keys": list_of(
        lambda v, _c: (
            isinstance(v, dict)
            and set(v) <= {"kid", "use", "custody", "valid_from"}
            and bool(KID.match(str(v.get("kid", ""))))
            and v.get("use") in {"enc", "sig", "nats"}
            and v.get("custody") in {"agency", "gateway", "county"}
            and bool(TIME.match(str(v.get("valid_from", ""))))
        )
    ),
    "keys_ended": count,
    "revoked_at": matching(TIME),
    "issued_at": matching(TIME),
    "forward_to": matching(TOKEN),  # an agency id: whom an agency forwards to
    "forwarded_to": ID,
    "answer_id": ID,
    "refused_at": matching(TIME),
    "urgent": flag,
    "need": matching(CODE),
    "stage": one_of("none-fitting", "none-took-it"),
    "county": matching(re.compile(r"^[0-9]{5}$")),
    "municipality": matching(re.compile(r"^[0-9]{8}$")),
    "languages": list_of(matching(re.compile(r"^[a-z]{2,3}$"))),
    "language": matching(re.compile(r"^[a-z]{2,3}$")),
    "age_band": one_of(*AGE_BANDS),
    "excluded": list_of(
        lambda v, _c: (
            isinstance(v, dict)
            and set(v) == {"code", "agencies"}
            and bool(CODE.match(str(v.get("code", ""))))
            and isinstance(v.get("agencies"), int)
        )
    ),
}
"""Every data field the log keeps (anything else is left out), with its form."""


def conforms(fields: dict[str, Check], name: str, value: Any, ctx: Context) -> bool:
    """Whether `value` has the form of field `name` (a missing or null value always has)."""
    return value is None or fields[name](value, ctx)

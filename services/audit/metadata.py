"""What the audit log keeps of an event: metadata only, by an allow-list, never personal data.

Any event is accepted, known or not: the envelope's attributes, the allow-listed fields of
`data` (ids, states, codes, times, categories, consent terms), and the SHA-256 of any sealed
ciphertext, so that the ombudsperson can prove what was sent without being able to read it.
"""

from __future__ import annotations

import hashlib
from typing import Any

ENVELOPE = ("id", "type", "source", "subject", "time", "correlationid", "causationid")
KEPT = frozenset(
    {
        "referral_id",
        "request_id",
        "office_id",
        "agency_id",
        "agency_kind",
        "consent_id",
        "status",
        "version",
        "action",
        "occurred_at",
        "acknowledge_by",
        "confirm_by",
        "withdrawn_at",
        "recorded_at",
        "urgency",
        "code",
        "attempted",
        "current_status",
        "sender",
        "service",
        "original_subject",
        "original_event_id",
        "stream_sequence",
        "deliveries",
        "released_categories",
        "recipient_kid",
        "signer_kid",
        "purposes",
        "data_categories",
        "explicit_special_categories",
        "method",
        "given_at",
        "expires_at",
        "text_version",
        "text_language",
        "person_reference",
        "controller",
        "agency",
        "kind",
    }
)
NESTED = ("case", "consent", "terms")
REDACTED_TEXT = ("reason", "message")  # free text a person typed: kept as "given or not"


def metadata(event: dict[str, Any], nats_subject: str, stream_sequence: int) -> dict[str, Any]:
    """The audit entry's content for one event."""
    entry: dict[str, Any] = {k: event.get(k) for k in ENVELOPE}
    entry["nats_subject"] = nats_subject
    entry["stream_sequence"] = stream_sequence
    data = event.get("data")
    entry["data"] = _keep(data) if isinstance(data, dict) else None
    return entry


def _keep(data: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {k: _plain(v) for k, v in data.items() if k in KEPT}
    for key in REDACTED_TEXT:
        if key in data:
            kept[f"{key}_given"] = bool(data[key])
    for key in NESTED:
        if isinstance(data.get(key), dict):
            kept[key] = _keep(data[key])
    if isinstance(data.get("jwe"), str):
        kept["ciphertext_sha256"] = hashlib.sha256(data["jwe"].encode()).hexdigest()
    if isinstance(data.get("recipients"), list):
        kept["recipients"] = [_keep(r) for r in data["recipients"] if isinstance(r, dict)]
    return kept


def _plain(value: Any) -> Any:
    """Only JSON scalars and lists of them; floats become strings (canonical encoding)."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return [_plain(v) for v in value if not isinstance(v, dict)]
    if isinstance(value, dict):
        return None
    return value

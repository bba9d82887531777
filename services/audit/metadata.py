"""What the audit log keeps of an event: metadata only, by an allow-list, never personal data.

Any message is accepted, known or not: the envelope's attributes, the allow-listed fields of
`data` (ids, states, codes, times, categories, consent terms), and the SHA-256 of any sealed
ciphertext, so that the ombudsperson can prove what was sent without being able to read it.
Every kept value must have its field's closed form (`forms`); one that does not (a name in
`subject`, an address in `correlationid`) is withheld and the entry lists the field in
`anomalies`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from services.audit import forms

NESTED = ("case", "consent", "terms", "comment", "forwarded_from")
"""Objects kept field by field (a comment: its kids and its ciphertext's hash)."""
REDACTED_TEXT = ("message",)  # free text: kept as "given or not"


def metadata(event: dict[str, Any], nats_subject: str, stream_sequence: int) -> dict[str, Any]:
    """The audit entry's content for one message."""
    ctx = forms.Context(nats_subject)
    anomalies: list[str] = []
    entry: dict[str, Any] = {
        k: _checked(forms.ENVELOPE, k, event.get(k), ctx, anomalies, k) for k in forms.ENVELOPE
    }
    if forms.nats_subject(nats_subject, ctx):
        entry["nats_subject"] = nats_subject
    else:
        entry["nats_subject"] = forms.WITHHELD
        anomalies.append("nats_subject")
    entry["stream_sequence"] = stream_sequence
    data = event.get("data")
    entry["data"] = _keep(data, ctx, anomalies, "data") if isinstance(data, dict) else None
    if anomalies:
        entry["anomalies"] = sorted(anomalies)
    return entry


def _checked(
    fields: dict[str, forms.Check],
    name: str,
    value: Any,
    ctx: forms.Context,
    anomalies: list[str],
    where: str,
) -> Any:
    value = _plain(value)
    if forms.conforms(fields, name, value, ctx):
        return value
    anomalies.append(where)
    return forms.WITHHELD


def _keep(
    data: dict[str, Any], ctx: forms.Context, anomalies: list[str], where: str
) -> dict[str, Any]:
    kept: dict[str, Any] = {
        k: _checked(forms.DATA, k, v, ctx, anomalies, f"{where}.{k}")
        for k, v in data.items()
        if k in forms.DATA
    }
    for key in REDACTED_TEXT:
        if key in data:
            kept[f"{key}_given"] = bool(data[key])
    for key in NESTED:
        if isinstance(data.get(key), dict):
            kept[key] = _keep(data[key], ctx, anomalies, f"{where}.{key}")
    if isinstance(data.get("jwe"), str):
        kept["ciphertext_sha256"] = hashlib.sha256(data["jwe"].encode()).hexdigest()
    if isinstance(data.get("recipients"), list):
        kept["recipients"] = [
            _keep(r, ctx, anomalies, f"{where}.recipients")
            for r in data["recipients"]
            if isinstance(r, dict)
        ]
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

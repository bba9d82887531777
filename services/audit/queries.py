"""What the ombudsperson reads from the log (metadata only)."""

from __future__ import annotations

import json
from typing import Any

from schemas.vocabulary import ANSWER_KINDS, CLOSED_STATES, OVERDUE_KINDS


def trail(entries: list[bytes]) -> list[dict[str, Any]]:
    """One referral's events in log order, each with the consent that covered the referral."""
    rows, consent = [], None
    for raw in entries:
        entry = json.loads(raw)
        data = entry.get("data") or {}
        consent = data.get("consent_id") or (data.get("consent") or {}).get("consent_id") or consent
        rows.append(
            {
                "index": entry["index"],
                "time": entry["time"],
                "type": entry["type"],
                "state": data.get("status"),
                "action": data.get("action"),
                "agency": data.get("agency_id"),
                "consent": consent,
                "ciphertext_sha256": (data.get("case") or {}).get("ciphertext_sha256"),
                "forwarded_to": data.get("forwarded_to"),
                "forwarded_from": (data.get("forwarded_from") or {}).get("referral_id"),
            }
        )
    return rows


def _entries(raw: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(r) for r in raw]


def referrals(raw: list[bytes]) -> dict[str, dict[str, Any]]:
    """Every referral's summary, from the log alone."""
    out: dict[str, dict[str, Any]] = {}
    for entry in _entries(raw):
        data = entry.get("data") or {}
        rid, kind = data.get("referral_id"), str(entry.get("type", ""))
        if not rid or not kind.startswith("de.wegweiser.referral."):
            continue
        row = out.setdefault(
            rid,
            {
                "referral_id": rid,
                "agency": data.get("agency_id"),
                "request": data.get("request_id"),
                "consent": None,
                "state": None,
                "offered_at": None,
                "received_at": None,
                "answered_at": None,
                "closed_at": None,
                "overdue": None,
                "deletion": None,
            },
        )
        event = kind.split(".")[3]
        at = data.get("occurred_at") or entry.get("time")
        row["consent"] = data.get("consent_id") or row["consent"]
        if data.get("status"):
            row["state"] = data["status"]
        if event == "offered":
            row["offered_at"] = at
        elif event == "received":
            row["received_at"] = at
        elif event in ANSWER_KINDS:
            row["answered_at"] = at
        elif event in OVERDUE_KINDS:
            row["overdue"] = event
        elif event.startswith("deletion-"):
            row["deletion"] = event
        if row["state"] in CLOSED_STATES and not row["closed_at"]:
            row["closed_at"] = at
    return out


def answer_times(raw: list[bytes]) -> list[dict[str, Any]]:
    """Per agency: how many offers, and the median seconds to acknowledge and to answer."""
    from datetime import datetime
    from statistics import median

    def seconds(a: str | None, b: str | None) -> float | None:
        if not a or not b:
            return None
        return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()

    per: dict[str, dict[str, list[float]]] = {}
    for row in referrals(raw).values():
        slot = per.setdefault(row["agency"], {"ack": [], "answer": [], "n": []})
        slot["n"].append(1)
        for name, end in (
            ("ack", row["received_at"] or row["answered_at"]),
            ("answer", row["answered_at"]),
        ):
            value = seconds(row["offered_at"], end)
            if value is not None:
                slot[name].append(value)
    return [
        {
            "agency": agency,
            "offers": len(s["n"]),
            "median_seconds_to_acknowledge": median(s["ack"]) if s["ack"] else None,
            "median_seconds_to_answer": median(s["answer"]) if s["answer"] else None,
        }
        for agency, s in sorted(per.items())
    ]


def withdrawals(raw: list[bytes]) -> list[dict[str, Any]]:
    """Each withdrawn consent with the deletions it caused and whether they were confirmed."""
    consents: dict[str, dict[str, Any]] = {}
    for entry in _entries(raw):
        data, kind = entry.get("data") or {}, str(entry.get("type", ""))
        if kind.startswith("de.wegweiser.intake.consent.withdrawn"):
            consents[data["consent_id"]] = {
                "consent": data["consent_id"],
                "withdrawn_at": data.get("withdrawn_at"),
                "by": data.get("withdrawn_by", "office"),
                "deletions": {},
            }
        elif ".deletion-" in kind and data.get("consent_id") in consents:
            state = kind.split(".")[3]
            consents[data["consent_id"]]["deletions"][data["referral_id"]] = {
                "agency": data.get("agency_id"),
                "state": state,
            }
    return list(consents.values())


SEQUENCE_GAP = "de.wegweiser.audit.sequence-gap.v1"
"""An entry the audit writes itself: stream sequences it never received (purged, lost)."""


def anomalies(raw: list[bytes]) -> dict[str, list[dict[str, Any]]]:
    """Things that should never happen, listed all the same (expected to be empty)."""
    requested: dict[Any, dict[str, Any]] = {}
    offered: dict[Any, Any] = {}
    uncovered, strangers, withheld, gaps = [], [], [], []
    for entry in _entries(raw):
        data, kind = entry.get("data") or {}, str(entry.get("type", ""))
        if entry.get("anomalies"):
            withheld.append({"index": entry["index"], "type": kind, "fields": entry["anomalies"]})
        if kind == SEQUENCE_GAP:
            gaps.append(
                {
                    "index": entry["index"],
                    "missing_from": entry.get("missing_from"),
                    "missing_to": entry.get("missing_to"),
                }
            )
        if kind.startswith("de.wegweiser.intake.referral.requested"):
            requested[data.get("referral_id")] = data
        elif kind.startswith("de.wegweiser.referral.offered"):
            offered[data["referral_id"]] = data.get("agency_id")
            request = requested.get(data["referral_id"])
            recipients = ((request or {}).get("consent") or {}).get("recipients") or []
            covered = request is not None and any(
                r.get("agency_id") == data.get("agency_id")
                or r.get("kind") == request.get("agency_kind")
                for r in recipients
            )
            if not covered:
                uncovered.append({"index": entry["index"], "referral_id": data["referral_id"]})
        elif kind.startswith("de.wegweiser.agency.answer") and (
            offered.get(data.get("referral_id")) != data.get("agency_id")
            and data.get("action") != "confirm-deletion"
        ):
            strangers.append(
                {
                    "index": entry["index"],
                    "referral_id": data.get("referral_id"),
                    "agency": data.get("agency_id"),
                }
            )
    return {
        "offers_without_covering_consent": uncovered,
        "answers_for_referrals_never_received": strangers,
        "fields_withheld": withheld,
        "sequence_gaps": gaps,
    }

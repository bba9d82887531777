"""What the ombudsperson reads from the log (metadata only)."""

from __future__ import annotations

import json
from typing import Any


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
            }
        )
    return rows

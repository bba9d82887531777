"""The sample directory that ships with Wegweiser: Ludwigslust-Parchim and Oberallgäu in HSDS."""

from __future__ import annotations

import json
from pathlib import Path

from services.directory import profile

SAMPLE_PATH = Path(__file__).with_name("data") / "sample-directory.json"


def sample_agency_ids() -> list[str]:
    """The agency ids of the sample directory's services, e.g. to make demo keys for them."""
    data = json.loads(SAMPLE_PATH.read_text(encoding="utf-8"))
    return sorted(
        profile.ServiceProfile.model_validate(service[profile.EXTENSION]).agency_id or service["id"]
        for service in data["services"]
        if profile.EXTENSION in service
    )

"""The sample directory that ships with Wegweiser: Ludwigslust-Parchim and Oberallgäu in HSDS."""

from __future__ import annotations

import json
from pathlib import Path

from services.directory import profile

SAMPLE_PATH = Path(__file__).with_name("data") / "sample-directory.json"


def sample_agency_ids(adapter: str | None = None) -> list[str]:
    """The agency ids of the sample directory's services (of one adapter, if given), e.g. to
    make demo keys for them."""
    data = json.loads(SAMPLE_PATH.read_text(encoding="utf-8"))
    found = []
    for service in data["services"]:
        if profile.EXTENSION not in service:
            continue
        extension = profile.ServiceProfile.model_validate(service[profile.EXTENSION])
        if adapter is None or extension.referral.adapter == adapter:
            found.append(extension.agency_id or service["id"])
    return sorted(found)

"""The directory as a running service: the HSDS read API, imports, and confidential locations."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from schemas.vocabulary import Need
from services.directory import needs
from services.directory.hsds.schema import check
from tests.support.cli import wegweiser
from tests.support.directory import (
    CANARY_POSTCODE,
    CANARY_STREET,
    confidential_sample,
)
from tests.support.system import (
    office_client,
    request_body,
    requested_referral,
    stream_events,
    until_status,
    wait_for,
)

pytestmark = pytest.mark.slow


def valid(kind: str, documents: list[dict[str, Any]]) -> list[str]:
    return [str(p) for i, doc in enumerate(documents) for p in check(kind, doc, f"[{i}]")]


async def test_the_hsds_read_api_serves_the_sample_directory(system):
    async with httpx.AsyncClient(base_url=system.settings.directory_url) as api:
        root = (await api.get("/")).json()
        assert root["version"] == "3.0"
        listing = (await api.get("/services", params={"per_page": 10, "page": 2})).json()
        assert (listing["total_items"], listing["total_pages"], listing["size"]) == (32, 4, 10)
        assert not listing["first_page"] and not listing["last_page"]
        assert valid("service", listing["contents"]) == []
        full = (await api.get("/services", params={"per_page": 500, "full": "true"})).json()
        assert valid("service", full["contents"]) == []
        one = (await api.get(f"/services/{full['contents'][0]['id']}")).json()
        assert one == full["contents"][0] and one["attributes"] and one["languages"]

        organizations = (await api.get("/organizations", params={"per_page": 500})).json()
        assert valid("organization", organizations["contents"]) == []
        org = (await api.get(f"/organizations/{one['organization_id']}")).json()
        assert one["id"] in [s["id"] for s in org["services"]]

        parchim = (await api.get("/service_at_locations", params={"postcode": "19370"})).json()
        assert parchim["total_items"] > 0
        for entry in parchim["contents"]:
            sal = (await api.get(f"/service_at_locations/{entry['id']}")).json()
            assert "19370" in [a["postal_code"] for a in sal["location"]["addresses"]]
        assert valid("service_at_location", parchim["contents"]) == []

        german = needs.taxonomy_id("de")
        taxonomies = (await api.get("/taxonomies")).json()
        assert {t["id"] for t in taxonomies["contents"]} == {german, needs.taxonomy_id("en")}
        top = (
            await api.get(
                "/taxonomy_terms",
                params={"taxonomy_id": german, "top_only": "true", "per_page": 100},
            )
        ).json()
        assert "Rechtsberatung" in [t["name"] for t in top["contents"]]
        assert all("parent_id" not in t for t in top["contents"])
        literacy = needs.term_id(Need.LITERACY_COURSE)
        courses = (await api.get("/services", params={"taxonomy_term_id": literacy})).json()
        assert courses["total_items"] >= 2 and valid("service", courses["contents"]) == []

        missing = await api.get("/services/00000000-0000-4000-8000-000000000000")
        assert missing.status_code == 404 and "no service" in missing.json()["detail"]
        assert (await api.get("/services", params={"per_page": 0})).status_code == 422
        assert (await api.post("/services", json={})).status_code == 405


async def test_an_import_reaches_the_running_directory_and_a_confidential_address_never_shows(
    system, tmp_path
):
    data = confidential_sample()
    renamed = "Frauenhaus Ludwigslust-Parchim (Schutzwohnung, neu aufgenommen)"
    next(s for s in data["services"] if s["wegweiser"]["agency_id"] == "lup-frauenhaus")["name"] = (
        renamed
    )
    path = tmp_path / "directory.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    out, err = wegweiser(system, "directory", "import", str(path)).communicate(timeout=60)
    assert "withheld 1 address(es) of confidential locations" in out, err
    assert "0 created, 1 updated, 0 removed" in out

    seen: list[str] = []
    async with httpx.AsyncClient(base_url=system.settings.directory_url) as api:
        queries: list[tuple[str, dict[str, str | int]]] = [
            ("/services", {"full": "true", "per_page": 500}),
            ("/organizations", {"full": "true", "full_service": "true", "per_page": 500}),
            ("/service_at_locations", {"full": "true", "per_page": 500}),
            ("/service_at_locations", {"postcode": CANARY_POSTCODE}),
        ]
        for route, params in queries:
            response = await api.get(route, params=params)
            assert response.status_code == 200
            seen.append(response.text)
        assert json.loads(seen[-1])["total_items"] == 0
        shelter = next(
            s
            for s in json.loads(seen[0])["contents"]
            if s["wegweiser"]["agency_id"] == "lup-frauenhaus"
        )
        assert shelter["name"] == renamed
        seen.append((await api.get(f"/services/{shelter['id']}")).text)
        (location,) = [sal["location"] for sal in shelter["service_at_locations"]][:1]
        assert location["addresses"] == [] and "latitude" not in location

    async with office_client(system) as http:
        await requested_referral(http)
        body = request_body(needs=["violence-protection"], municipality="13076090")
        request = (await http.post("/requests", json=body)).json()
        suggestions = await http.get(f"/requests/{request['request_id']}/suggestions")
        assert "lup-frauenhaus" in suggestions.text and renamed in suggestions.text
        seen.append(suggestions.text)
    capacity = wegweiser(system, "agency", "capacity", "0", "3", "--agency", "lup-frauenhaus")
    assert capacity.wait(30) == 0

    async def capacity_shown() -> bool:
        async with httpx.AsyncClient(base_url=system.settings.directory_url) as api:
            text = (await api.get(f"/services/{shelter['id']}")).text
            return json.loads(text)["wegweiser"]["capacity"] == 0

    assert await wait_for(capacity_shown)
    exported, _ = wegweiser(system, "directory", "export").communicate(timeout=60)
    assert json.loads(exported)["services"]
    seen.append(exported)
    seen.append(json.dumps(await stream_events(system, "ww.>"), ensure_ascii=False))
    everything = "\n".join(seen)
    assert "lup-frauenhaus" in everything  # positive control: the shelter itself is listed
    assert CANARY_STREET not in everything and CANARY_POSTCODE not in everything
    assert "53.3301" not in everything


async def test_a_farsi_speaker_is_sent_to_an_agency_and_its_interpreter_as_a_pair(system):
    """The running directory bridges the language over NATS; sending the pair offers both."""
    body = request_body(client_reference="farsi-e2e", languages=["fa"])
    body["consent"]["recipients"] = [{"kind": "migration-counselling"}, {"kind": "interpreting"}]
    async with office_client(system, timeout=15) as http:
        request = (await http.post("/requests", json=body)).json()
        found = (await http.get(f"/requests/{request['request_id']}/suggestions")).json()
        assert found["suggestions"] == []
        pair = found["bridges"][0]
        agencies = [
            pair["candidate"]["agency"]["agency_id"],
            pair["interpreter"]["candidate"]["agency"]["agency_id"],
        ]
        assert agencies == ["lup-mbe-ludwigslust", "lup-sprachmittlerpool"]
        referrals = []
        for agency in agencies:
            sent = await http.post(
                f"/requests/{request['request_id']}/referrals", json={"agency_id": agency}
            )
            assert sent.status_code == 202, sent.text
            referrals.append(sent.json()["referral_id"])
        for referral in referrals:
            await until_status(http, referral, "requested")

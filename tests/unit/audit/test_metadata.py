"""What the log keeps of an event: only values of their field's closed form; what a sender
wrote anywhere else is withheld and named as an anomaly, never copied."""

from __future__ import annotations

import hashlib
import json

from services.audit.forms import WITHHELD
from services.audit.metadata import metadata

REF = "ref-3f0c2b8e-6a1d-4c1e-9b7a-1d2e3f4a5b6c"
EVENT = "4b2a7c1e-9d3f-4e5a-8b6c-7d8e9f0a1b2c"
PERSON = "Zora Canary, born 1990-03-04, Hauptstraße 5, 19370 Parchim"


def answer(**overrides: object) -> dict:
    event: dict[str, object] = {
        "id": EVENT,
        "type": "de.wegweiser.agency.answer.v2",
        "source": "/wegweiser/agency/lup-jobcenter",
        "subject": REF,
        "time": "2026-12-01T09:00:00Z",
        "correlationid": REF,
        "causationid": None,
        "data": {
            "referral_id": REF,
            "agency_id": "lup-jobcenter",
            "action": "accept",
            "reason": None,
        },
    }
    for key, value in overrides.items():
        if key.startswith("data_"):
            data = event["data"]
            assert isinstance(data, dict)
            data[key.removeprefix("data_")] = value
        else:
            event[key] = value
    return event


def test_a_well_formed_answer_is_kept_whole_with_no_anomaly():
    entry = metadata(answer(), "ww.answer.lup-jobcenter.accept", 7)
    assert "anomalies" not in entry
    assert entry["subject"] == REF and entry["data"]["action"] == "accept"


def test_personal_data_in_any_free_field_is_withheld_and_named():
    event = answer(
        subject=PERSON,
        correlationid="zora-1990-03-04",
        causationid=PERSON,
        source="/wegweiser/agency/zora canary",
        time="4 March 1990",
        data_referral_id=PERSON,
        data_agency_id="lup-frauenhaus",  # another agency's id in an answer of lup-jobcenter
        data_action="zora-canary",
        data_reason=PERSON,
        data_note=PERSON,  # not an allowed field at all: left out
    )
    entry = metadata(event, "ww.answer.lup-jobcenter.accept", 7)
    assert "Zora" not in json.dumps(entry) and "1990" not in json.dumps(entry)
    assert entry["anomalies"] == [
        "causationid",
        "correlationid",
        "data.action",
        "data.agency_id",
        "data.reason",
        "data.referral_id",
        "source",
        "subject",
        "time",
    ]
    assert entry["subject"] == WITHHELD and entry["data"]["reason"] == WITHHELD
    assert "note" not in entry["data"]


def test_a_subject_token_outside_the_catalogue_is_withheld():
    entry = metadata(answer(), "ww.answer.lup-jobcenter.zora-1990", 7)
    assert entry["nats_subject"] == WITHHELD and entry["anomalies"] == ["nats_subject"]


def test_a_reason_is_kept_as_its_code_and_a_comment_only_as_the_hash_of_its_ciphertext():
    comment = {"jwe": "zora-ciphertext", "recipient_kid": "office-1", "signer_kid": None}
    event = answer(data_action="reject", data_reason="no-capacity", data_comment=comment)
    entry = metadata(event, "ww.answer.lup-jobcenter.reject", 7)
    assert "anomalies" not in entry and entry["data"]["reason"] == "no-capacity"
    assert entry["data"]["comment"] == {
        "recipient_kid": "office-1",
        "signer_kid": None,
        "ciphertext_sha256": hashlib.sha256(b"zora-ciphertext").hexdigest(),
    }
    assert "zora" not in json.dumps(entry)


def test_an_older_version_still_in_the_stream_is_kept_with_its_type():
    entry = metadata(
        answer(type="de.wegweiser.agency.answer.v1"), "ww.answer.lup-jobcenter.accept", 7
    )
    assert "anomalies" not in entry and entry["type"] == "de.wegweiser.agency.answer.v1"


def test_what_services_send_passes_their_forms():
    offered = {
        "id": EVENT,
        "type": "de.wegweiser.referral.offered.v3",
        "source": "/wegweiser/referral",
        "subject": REF,
        "time": "2026-12-01T09:00:00.123456Z",
        "correlationid": REF,
        "causationid": EVENT,
        "data": {
            "referral_id": REF,
            "agency_id": "lup-jobcenter",
            "status": "requested",
            "version": 1,
            "acknowledge_by": "2026-12-04T09:00:00Z",
            "case": {"jwe": "a.b.c.d.e", "recipient_kid": "lup-jobcenter", "signer_kid": "lup-x"},
        },
    }
    entry = metadata(offered, "ww.referral.lup-jobcenter.offered", 9)
    assert "anomalies" not in entry, entry

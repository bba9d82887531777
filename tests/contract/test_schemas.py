"""The committed contract files are what the code generates, and the contracts hold."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas import subjects
from schemas.catalogue import BY_TYPE, CATALOGUE
from schemas.envelope import Envelope, new_event
from schemas.events import ExclusionCount, Recipient, ReferralCancellationRequested
from schemas.queries import ResolveAgencies, Suggestions
from schemas.vocabulary import Need
from wegweiser.contracts import drift, expected_files
from wegweiser.platform.consumer import describe


def test_committed_json_schemas_and_asyncapi_documents_match_the_code():
    assert drift() == [], "run `wegweiser schemas generate` and commit the result"


def test_every_event_type_has_one_schema_and_is_versioned():
    names = [p.name for p in expected_files() if p.suffix == ".json"]
    for spec in CATALOGUE:
        assert re.search(r"\.v[0-9]+$", spec.event_type)
        assert f"{spec.event_type}.json" in names
    assert len(BY_TYPE) == len(CATALOGUE)


def test_a_changed_missing_or_stray_file_is_reported_as_drift(tmp_path, monkeypatch):
    import wegweiser.contracts as gen

    monkeypatch.setattr(gen, "JSON_DIR", tmp_path / "json")
    monkeypatch.setattr(gen, "ASYNCAPI_DIR", tmp_path / "asyncapi")
    written = gen.write_all()
    assert gen.drift() == []
    changed, removed = [p for p in written if p.suffix == ".json"][:2]
    changed.write_text(changed.read_text().replace('"title"', '"titel"', 1))
    removed.unlink()
    stray = tmp_path / "asyncapi" / "old.yaml"
    stray.write_text("asyncapi: 3.0.0\n")
    assert gen.drift() == sorted([changed, removed, stray])


def event() -> Envelope[ReferralCancellationRequested]:
    data = ReferralCancellationRequested(referral_id="r1", office_id="o1", reason="need-met")
    return new_event(data, source="/wegweiser/intake", subject="r1")


def test_an_event_is_a_cloudevent_with_correlation_and_causation():
    first = event()
    body = json.loads(first.model_dump_json())
    assert body["specversion"] == "1.0" and body["datacontenttype"] == "application/json"
    assert body["type"] == "de.wegweiser.intake.referral.cancellation-requested.v2"
    assert body["correlationid"] == first.id and body["causationid"] is None
    second = new_event(first.data, source="/wegweiser/referral", subject="r1", causation=first)
    assert second.correlationid == first.id and second.causationid == first.id


def test_events_are_frozen_and_refuse_unknown_fields_and_wrong_types():
    e = event()
    with pytest.raises(ValidationError):
        e.data.reason = "other"  # type: ignore[misc,assignment]
    body = json.loads(e.model_dump_json())
    with pytest.raises(ValidationError, match="extra"):
        Envelope[ReferralCancellationRequested].model_validate({**body, "extra": 1})
    with pytest.raises(ValidationError, match="does not match data"):
        Envelope[ReferralCancellationRequested].model_validate(
            {**body, "type": "de.wegweiser.referral.accepted.v2"}
        )
    with pytest.raises(ValidationError, match="time"):
        Envelope[ReferralCancellationRequested].model_validate(
            {**body, "time": "2026-01-01T10:00:00"}
        )


def test_a_recipient_is_an_agency_or_a_kind_never_both():
    assert Recipient(kind="legal-aid").kind == "legal-aid"
    with pytest.raises(ValidationError, match="either agency_id or kind"):
        Recipient(agency_id="a", kind="legal-aid")
    with pytest.raises(ValidationError, match="either agency_id or kind"):
        Recipient()


def test_offers_travel_on_a_per_agency_subject_and_tokens_are_checked():
    assert (
        subjects.referral_event("lup-jobcenter", "offered") == "ww.referral.lup-jobcenter.offered"
    )
    assert subjects.agency_referrals("a-1") == "ww.referral.a-1.>"
    assert subjects.agency_from_subject("ww.answer.a-1.accept") == "a-1"
    for bad in ("a.b", "*", ">", "A", ""):
        with pytest.raises(ValueError, match="not a valid subject token"):
            subjects.token(bad)
    assert all(s.startswith("ww.") for s in subjects.STREAM_SUBJECTS)
    assert not subjects.DIRECTORY_RESOLVE.startswith("ww.")  # the stream must not capture queries
    assert datetime.now(UTC)


@pytest.mark.parametrize("limit", [0, 1001, -5])
def test_a_resolve_query_asking_to_list_fewer_than_1_or_more_than_1000_is_refused(limit):
    asked = json.dumps({"need": "housing", "limit": limit})
    with pytest.raises(ValidationError) as refused:
        ResolveAgencies.model_validate_json(asked)
    bound = "greater than or equal to 1" if limit < 1 else "less than or equal to 1000"
    assert describe(refused.value) == f"limit: Input should be {bound}"  # as QueryFailed says


def test_a_resolve_query_without_a_limit_lists_100_and_1000_is_allowed():
    assert ResolveAgencies.model_validate_json('{"need": "housing"}').limit == 100
    assert ResolveAgencies(need=Need.HOUSING, limit=1000).limit == 1000


def test_an_answer_without_totals_counts_its_listed_exclusions():
    reason = {"code": "capacity.none", "text": "has no free slots"}
    card = {"name": "A", "kind": "housing", "channel": "nats", "capacity": 0}
    card |= {"waiting_days": 1, "active": True}
    old = Suggestions.model_validate(
        {
            "candidates": [],
            "excluded": [
                {"agency": card | {"agency_id": "a"}, "reasons": [reason]},
                {
                    "agency": card | {"agency_id": "b"},
                    "reasons": [reason, reason | {"code": "inactive"}],
                },
            ],
        }
    )
    assert (old.candidates_total, old.excluded_total) == (None, None)  # all are listed
    assert old.exclusion_counts() == (
        ExclusionCount(code="capacity.none", agencies=2),
        ExclusionCount(code="inactive", agencies=1),
    )
    summary = (ExclusionCount(code="language.not-offered", agencies=70),)
    new = old.model_copy(update={"excluded_total": 72, "excluded_by_reason": summary})
    assert new.exclusion_counts() == summary

"""The first consent check: recipient, purpose, categories, validity in time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import ConsentTerms, Recipient
from schemas.vocabulary import SPECIAL_CATEGORIES, AgencyKind, DataCategory, Need, Purpose
from services.consent.rules import ConsentViolation, check, releasable_needs, releasable_to

NOW = datetime(2026, 11, 2, 9, tzinfo=UTC)


def terms(**overrides: object) -> ConsentTerms:
    values: dict[str, object] = {
        "consent_id": "c1",
        "person_reference": "p1",
        "controller": "Landkreis",
        "recipients": (Recipient(kind=AgencyKind.LEGAL_AID), Recipient(agency_id="oa-jobcenter")),
        "purposes": (Purpose.REFERRAL,),
        "data_categories": (DataCategory.NEEDS,),
        "method": "signed-form",
        "given_at": NOW - timedelta(days=1),
        "text_version": "v1",
        "text_language": "de",
    }
    values.update(overrides)
    return ConsentTerms.model_validate(values)


def attempt(
    t: ConsentTerms,
    agency: str = "x",
    kind: AgencyKind = AgencyKind.LEGAL_AID,
    categories: tuple[DataCategory, ...] = (DataCategory.NEEDS,),
    purpose: Purpose = Purpose.REFERRAL,
    now: datetime = NOW,
) -> None:
    check(t, agency_id=agency, kind=kind, purpose=purpose, categories=categories, now=now)


def test_a_consent_covers_an_agency_by_kind_or_by_name():
    attempt(terms())
    attempt(terms(), agency="oa-jobcenter", kind=AgencyKind.JOBCENTER)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": AgencyKind.HOUSING}, "does not cover agency x (kind housing)"),
        ({"purpose": Purpose.FOLLOW_UP}, "does not cover the purpose follow-up"),
        ({"categories": (DataCategory.NEEDS, DataCategory.HEALTH)}, "does not release health"),
        ({"now": NOW - timedelta(days=2)}, "dated in the future"),
    ],
)
def test_a_referral_outside_the_consent_is_refused_with_the_reason(kwargs, message):
    with pytest.raises(ConsentViolation, match=re.escape(message)):
        attempt(terms(), **kwargs)


def test_an_expired_consent_stops_new_referrals():
    lapsing = terms(expires_at=NOW + timedelta(hours=1))
    attempt(lapsing)
    with pytest.raises(ConsentViolation, match="expired"):
        attempt(lapsing, now=NOW + timedelta(hours=1))


@given(st.sets(st.sampled_from(list(DataCategory)), min_size=1), st.booleans())
def test_special_categories_are_releasable_only_under_explicit_consent(categories, explicit):
    special = categories & SPECIAL_CATEGORIES
    if special and not explicit:
        with pytest.raises(ValueError, match="special categories"):
            terms(data_categories=tuple(sorted(categories)), explicit_special_categories=False)
        return
    t = terms(data_categories=tuple(sorted(categories)), explicit_special_categories=explicit)
    assert releasable_to(t, "x", AgencyKind.LEGAL_AID) == categories


def test_a_named_agency_gets_its_own_categories_and_others_of_its_kind_the_kind_entry():
    t = terms(
        recipients=(
            Recipient(agency_id="oa-rechtshilfe", data_categories=(DataCategory.NAME,)),
            Recipient(kind=AgencyKind.LEGAL_AID, data_categories=(DataCategory.NEEDS,)),
        ),
        data_categories=(DataCategory.NEEDS, DataCategory.NAME),
    )
    assert releasable_to(t, "oa-rechtshilfe", AgencyKind.LEGAL_AID) == {DataCategory.NAME}
    assert releasable_to(t, "lup-legal", AgencyKind.LEGAL_AID) == {DataCategory.NEEDS}
    assert releasable_to(t, "lup-jobcenter", AgencyKind.JOBCENTER) == frozenset()
    with pytest.raises(ConsentViolation, match="does not release needs to oa-rechtshilfe"):
        attempt(t, agency="oa-rechtshilfe", categories=(DataCategory.NEEDS,))


def test_a_referral_to_a_psychosocial_agency_needs_explicit_consent_as_it_reveals_health():
    kind_only = terms(recipients=(Recipient(kind=AgencyKind.PSYCHOSOCIAL),))
    with pytest.raises(ConsentViolation, match="reveals health data"):
        attempt(kind_only, kind=AgencyKind.PSYCHOSOCIAL)
    attempt(
        terms(
            recipients=(Recipient(kind=AgencyKind.PSYCHOSOCIAL),), explicit_special_categories=True
        ),
        kind=AgencyKind.PSYCHOSOCIAL,
    )


def test_needs_that_reveal_health_are_withheld_without_explicit_consent():
    needs = (Need.LEGAL_AID, Need.PSYCHOSOCIAL, Need.VIOLENCE_PROTECTION)
    assert releasable_needs(terms(), needs) == (Need.LEGAL_AID,)
    assert releasable_needs(terms(explicit_special_categories=True), needs) == needs

"""Property: the referral service offers if and only if a valid consent covers the recipient,
the purpose and every data category in the payload."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as event_label
from hypothesis import strategies as st
from sqlmodel import col, select

from schemas.envelope import new_event
from schemas.events import ConsentTerms, Recipient, ReferralRequested, SealedCase
from schemas.vocabulary import SPECIAL_CATEGORIES, AgencyKind, DataCategory, Purpose
from services.referral import handlers, store
from services.referral.store import ReferralRow
from wegweiser.platform.consumer import Delivery
from wegweiser.platform.db import Database
from wegweiser.platform.outbox import OutboxRow

NOW = datetime(2026, 11, 21, 9, tzinfo=UTC)
AGENCIES = ("agency-a", "agency-b", "agency-c")
KINDS = (AgencyKind.LEGAL_AID, AgencyKind.JOBCENTER, AgencyKind.PSYCHOSOCIAL)

categories = st.sets(st.sampled_from(list(DataCategory)), min_size=1, max_size=5)
own = st.one_of(st.none(), categories.map(lambda c: tuple(sorted(c))))
recipients = st.lists(
    st.one_of(
        st.builds(Recipient, agency_id=st.sampled_from(AGENCIES), data_categories=own),
        st.builds(Recipient, kind=st.sampled_from(KINDS), data_categories=own),
    ),
    min_size=1,
    max_size=3,
)


@st.composite
def situations(draw):
    given_at = NOW - timedelta(hours=draw(st.integers(-5, 500)))
    expires = draw(
        st.one_of(st.none(), st.integers(-100, 100).map(lambda h: NOW + timedelta(hours=h)))
    )
    if expires is not None and expires <= given_at:
        expires = None
    chosen, listed = draw(recipients), tuple(sorted(draw(categories)))
    named = set(listed).union(*(r.data_categories or () for r in chosen))
    explicit = draw(st.booleans()) or bool(named & SPECIAL_CATEGORIES)  # else no valid consent
    terms = ConsentTerms(
        consent_id=f"c-{uuid.uuid4().hex}",
        person_reference="p-1",
        controller="Landkreis",
        recipients=tuple(chosen),
        purposes=tuple(draw(st.sets(st.sampled_from(list(Purpose)), min_size=1))),
        data_categories=listed,
        explicit_special_categories=explicit,
        method="signed-form",
        given_at=given_at,
        expires_at=expires,
        text_version="v1",
        text_language="de",
    )
    return (
        terms,
        draw(st.sampled_from(AGENCIES)),
        draw(st.sampled_from(KINDS)),
        tuple(sorted(draw(categories))),
        draw(st.booleans()),
    )


def oracle(terms: ConsentTerms, agency: str, kind: AgencyKind, sent: tuple, withdrawn: bool):
    """The rule, written out independently of services/consent/rules.py."""
    in_time = terms.given_at <= NOW and (terms.expires_at is None or terms.expires_at > NOW)
    by_name = [r for r in terms.recipients if r.agency_id == agency]
    by_kind = [r for r in terms.recipients if r.kind == kind]
    entries = by_name or by_kind
    if not entries:
        return False
    if kind is AgencyKind.PSYCHOSOCIAL and not terms.explicit_special_categories:
        return False  # being referred there reveals health data
    allowed = set(entries[0].data_categories or terms.data_categories)
    if not terms.explicit_special_categories:
        allowed -= {DataCategory.HEALTH, DataCategory.ETHNIC_ORIGIN, DataCategory.RELIGION}
    return not withdrawn and in_time and Purpose.REFERRAL in terms.purposes and set(sent) <= allowed


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    database = Database(
        f"sqlite:///{tmp_path_factory.mktemp('prop') / 'referral.db'}",
        [ReferralRow, OutboxRow, store.WithdrawnConsent, store.DeletionRow],
    )
    database.migrate()
    return database


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(situations())
def test_an_offer_is_emitted_exactly_when_a_valid_consent_covers_it(db, situation):
    terms, agency, kind, sent, withdrawn = situation
    referral_id = f"r-{uuid.uuid4().hex}"
    command = ReferralRequested(
        referral_id=referral_id,
        request_id="q",
        office_id="o",
        agency_id=agency,
        agency_kind=kind,
        consent=terms,
        case=SealedCase(
            jwe="x" * 30, recipient_kid=agency, signer_kid="o", released_categories=sent
        ),
    )
    event = new_event(command, source="/wegweiser/intake", subject=referral_id)
    ctx = handlers.Context(clock=lambda: NOW)

    def run(session):
        if withdrawn:
            store.record_withdrawal(session, terms.consent_id, NOW)
        handlers.open_referral(ctx, session, Delivery(event, "ww.intake.referral.requested"))
        return [
            row.subject
            for row in session.exec(
                select(OutboxRow).where(col(OutboxRow.subject).like(f"ww.referral.{agency}.%"))
            )
            if referral_id.encode() in row.body
        ]

    staged = db.run_sync(run)
    expected = oracle(terms, agency, kind, sent, withdrawn)
    event_label("offered" if expected else "refused")
    assert staged == [f"ww.referral.{agency}.{'offered' if expected else 'refused'}"]
    assert db.run_sync(lambda s: store.exists(s, referral_id)) is expected

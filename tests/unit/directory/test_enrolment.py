"""An agency enrols with keys it made itself; the directory publishes them with their validity
(issue "Partners own their identities", parts 1 and 3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from jwcrypto import jwe
from sqlmodel import Session, SQLModel, create_engine

from schemas.enrolment import EnrolmentRequest
from services.agency.enrolment import AgencyKeys, enrolment_request
from services.directory import enrolment, identities, importer, store
from services.directory.enrolment import Refused
from services.directory.identities import Custody, NewKey, Use
from services.directory.sample import SAMPLE_PATH
from wegweiser.platform import keys
from wegweiser.platform.outbox import OutboxRow

AGENCY = "lup-mbe-ludwigslust"
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    tables = [*store.TABLES, OutboxRow]
    SQLModel.metadata.create_all(engine, tables=[t.__table__ for t in tables])  # type: ignore[attr-defined]
    with Session(engine) as s:
        assert importer.import_file(s, SAMPLE_PATH).ok
        s.commit()
        yield s
    engine.dispose()


@pytest.fixture
def agency(tmp_path):
    """The agency's own key folder, as `wegweiser agency enrol` makes it."""
    return AgencyKeys(tmp_path / "agency-machine").ensure()


def invited(session, valid_for=timedelta(days=7)):
    invitation = enrolment.invite(session, AGENCY, valid_for, NOW)
    session.commit()
    return invitation


def body(agency, code, **changes):
    return EnrolmentRequest.model_validate({**enrolment_request(agency, code), **changes})


def test_an_agency_enrols_with_its_own_keys_and_they_are_published_at_once(session, agency):
    county_key = keys.public_dict(keys.generate_encryption_key())
    assert identities.publish_on_file(session, {AGENCY: county_key}, NOW) == 1
    invitation = invited(session)
    row = enrolment.request(session, body(agency, invitation.code), NOW)
    assert row.status == "requested"
    assert row.request is not None
    assert "d" not in row.request["sealing_key"] and "d" not in row.request["signing_key"]
    assert identities.sealing_keys(session, NOW)[AGENCY]["x"] == county_key["x"]

    enrolment.approve(session, row.id, now=NOW)
    published = identities.sealing_keys(session, NOW + timedelta(seconds=1))[AGENCY]
    assert published["x"] == agency.sealing.export_public(as_dict=True)["x"]
    assert published["kid"] == agency.sealing.thumbprint()
    assert identities.broker_users(session, NOW)[AGENCY] == agency.broker_user
    jwks = identities.jwks(session, AGENCY, NOW + timedelta(seconds=1))["keys"]
    assert {(k["use"], k["kid"], k["wegweiser:custody"]) for k in jwks} == {
        ("enc", agency.sealing.thumbprint(), "agency"),
        ("sig", agency.signing.thumbprint(), "agency"),
    }
    assert all("d" not in k for k in jwks)  # public halves only
    assert enrolment.view(session, row.id)["nats"]["durable"] == f"agency-{AGENCY}"


def test_a_webhook_secret_goes_back_sealed_to_the_agencys_own_key(session, agency):
    row = enrolment.request(session, body(agency, invited(session).code), NOW)
    enrolment.approve(session, row.id, webhook_secret="whsec_abc", now=NOW)
    delivery = enrolment.view(session, row.id)["sealed_delivery"]
    assert "whsec_abc" not in delivery
    opened = jwe.JWE()
    opened.deserialize(delivery, key=agency.sealing)
    assert json.loads(opened.payload) == {"webhook_secret": "whsec_abc"}


def test_a_code_is_spent_by_its_first_request(session, agency, tmp_path):
    code = invited(session).code
    enrolment.request(session, body(agency, code), NOW)
    other = AgencyKeys(tmp_path / "someone-else").ensure()
    with pytest.raises(Refused) as refused:
        enrolment.request(session, body(other, code), NOW)
    assert (refused.value.code, refused.value.status) == ("enrolment.code-used", 409)


@pytest.mark.parametrize(
    ("code", "when", "expected"),
    [
        ("wwe_guessed-guessed-guessed", NOW, "enrolment.unknown-code"),
        (None, NOW + timedelta(days=8), "enrolment.code-expired"),
    ],
)
def test_a_guessed_or_expired_code_is_refused(session, agency, code, when, expected):
    invitation = invited(session)
    with pytest.raises(Refused) as refused:
        enrolment.request(session, body(agency, code or invitation.code), when)
    assert refused.value.code == expected
    assert enrolment.pending(session)[0].status == "invited"


def _forged_jws(_agency, code, tmp_path):
    forger = AgencyKeys(tmp_path / "forger").ensure()
    return {"proof": enrolment_request(forger, code)["proof"]}


def _foreign_nkey(_agency, code, tmp_path):
    forger = AgencyKeys(tmp_path / "forger").ensure()
    return {"nats_proof": enrolment_request(forger, code)["nats_proof"]}


def _swapped_key(_agency, _code, tmp_path):
    forger = AgencyKeys(tmp_path / "forger").ensure()
    return {"sealing_key": forger.sealing.export_public(as_dict=True)}


def _private_half(agency, _code, _tmp_path):
    return {"sealing_key": json.loads(agency.sealing.export_private())}


def _wrong_curve(agency, _code, _tmp_path):
    return {"sealing_key": agency.signing.export_public(as_dict=True)}


@pytest.mark.parametrize(
    ("forge", "expected"),
    [
        (_forged_jws, "enrolment.bad-proof"),
        (_foreign_nkey, "enrolment.bad-proof"),
        (_swapped_key, "enrolment.bad-proof"),  # a key the proofs do not name
        (_private_half, "enrolment.private-key-sent"),
        (_wrong_curve, "enrolment.bad-key"),
    ],
)
def test_a_request_whose_proofs_do_not_hold_is_refused_and_the_code_stays_unspent(
    session, agency, tmp_path, forge, expected
):
    code = invited(session).code
    with pytest.raises(Refused) as refused:
        enrolment.request(session, body(agency, code, **forge(agency, code, tmp_path)), NOW)
    assert refused.value.code == expected
    session.rollback()
    assert enrolment.request(session, body(agency, code), NOW).status == "requested"


def test_only_a_requested_enrolment_can_be_approved_or_refused_and_once(session, agency):
    invitation = invited(session)
    with pytest.raises(Refused, match="is invited"):
        enrolment.approve(session, invitation.enrolment_id, now=NOW)
    row = enrolment.request(session, body(agency, invitation.code), NOW)
    enrolment.refuse(session, row.id, NOW)
    with pytest.raises(Refused, match="is refused"):
        enrolment.approve(session, row.id, now=NOW)
    assert AGENCY not in identities.sealing_keys(session, NOW)


def test_an_invitation_is_only_for_an_agency_of_the_directory(session):
    with pytest.raises(Refused) as refused:
        enrolment.invite(session, "nowhere", timedelta(days=1), NOW)
    assert refused.value.code == "enrolment.unknown-agency"


def test_a_rotation_overlaps_then_retires_the_old_key_and_a_revocation_ends_all(session):
    old, new = keys.generate_encryption_key(), keys.generate_encryption_key()
    for key, when in [(old, NOW), (new, NOW + timedelta(days=1))]:
        identities.publish(
            session,
            AGENCY,
            [NewKey(Use.SEALING, key.thumbprint(), keys.public_dict(key))],
            Custody.AGENCY,
            valid_from=when,
            overlap=timedelta(days=3),
        )
    current = identities.sealing_keys
    assert current(session, NOW + timedelta(hours=1))[AGENCY]["kid"] == old.thumbprint()
    assert current(session, NOW + timedelta(days=2))[AGENCY]["kid"] == new.thumbprint()
    during = identities.jwks(session, AGENCY, NOW + timedelta(days=2))["keys"]
    assert [k["kid"] for k in during] == [old.thumbprint(), new.thumbprint()]  # overlap
    after = identities.jwks(session, AGENCY, NOW + timedelta(days=5))["keys"]
    assert [k["kid"] for k in after] == [new.thumbprint()]
    assert identities.next_change(session, NOW) == NOW + timedelta(days=1)

    assert identities.revoke(session, AGENCY, NOW + timedelta(days=6)) == 2
    assert AGENCY not in current(session, NOW + timedelta(days=6))
    assert identities.jwks(session, AGENCY, NOW + timedelta(days=6)) == {"keys": []}
    assert identities.is_revoked(session, AGENCY)


def test_keys_on_file_do_not_displace_an_agencys_own(session, agency):
    row = enrolment.request(session, body(agency, invited(session).code), NOW)
    enrolment.approve(session, row.id, now=NOW)
    county_key = keys.public_dict(keys.generate_encryption_key())
    assert (
        identities.publish_on_file(session, {AGENCY: county_key, "unknown": county_key}, NOW) == 0
    )
    assert identities.sealing_keys(session, NOW)[AGENCY]["kid"] == agency.sealing.thumbprint()


def _rotation(new, signer, when=NOW):
    from jwcrypto import jws

    from schemas.enrolment import KeyRotation, rotation_statement

    said = rotation_statement(
        AGENCY, new.sealing.thumbprint(), new.signing.thumbprint(), when.isoformat()
    )

    def signed(key):
        token = jws.JWS(said)
        token.add_signature(key, alg="EdDSA", protected={"alg": "EdDSA"})
        return token.serialize(compact=True)

    return KeyRotation(
        sealing_key=new.sealing.export_public(as_dict=True),
        signing_key=new.signing.export_public(as_dict=True),
        valid_from=when,
        proof=signed(signer),
        new_proof=signed(new.signing),
    )


def test_only_the_enrolled_agency_rotates_its_keys_with_its_current_signing_key(
    session, agency, tmp_path
):
    new = AgencyKeys(tmp_path / "next").ensure()
    with pytest.raises(Refused) as refused:
        enrolment.rotate(session, AGENCY, _rotation(new, agency.signing), now=NOW)
    assert refused.value.code == "rotation.not-enrolled"  # not enrolled yet
    row = enrolment.request(session, body(agency, invited(session).code), NOW)
    enrolment.approve(session, row.id, now=NOW)
    impostor = AgencyKeys(tmp_path / "impostor").ensure()
    with pytest.raises(Refused) as refused:
        enrolment.rotate(session, AGENCY, _rotation(new, impostor.signing), now=NOW)
    assert refused.value.code == "enrolment.bad-proof"
    later = NOW + timedelta(hours=1)
    kids = enrolment.rotate(session, AGENCY, _rotation(new, agency.signing), now=later)
    assert kids == [new.sealing.thumbprint(), new.signing.thumbprint()]
    assert identities.sealing_keys(session, later)[AGENCY]["kid"] == new.sealing.thumbprint()
    overlap = identities.jwks(session, AGENCY, later + timedelta(days=13))["keys"]
    assert agency.sealing.thumbprint() in {k["kid"] for k in overlap}
    gone = identities.jwks(session, AGENCY, later + timedelta(days=15))["keys"]
    assert agency.sealing.thumbprint() not in {k["kid"] for k in gone}


def test_an_email_agencys_key_on_file_is_marked_as_held_by_the_gateway(session):
    mail_agency = "oa-rechtshilfe-auslaenderinnen"
    key = keys.public_dict(keys.generate_encryption_key())
    other = keys.public_dict(keys.generate_encryption_key())
    identities.publish_on_file(session, {mail_agency: key, AGENCY: other}, NOW)
    custody = {
        agency: identities.jwks(session, agency)["keys"][0]["wegweiser:custody"]
        for agency in (mail_agency, AGENCY)
    }
    assert custody == {mail_agency: "gateway", AGENCY: "county"}


def test_each_publication_and_revocation_is_told_to_the_audit_in_the_same_transaction(
    session, agency
):
    from sqlmodel import select

    row = enrolment.request(session, body(agency, invited(session).code), NOW)
    enrolment.approve(session, row.id, now=NOW)
    identities.revoke(session, AGENCY, NOW + timedelta(days=1))
    told = [(r.subject, json.loads(r.body)) for r in session.exec(select(OutboxRow))]
    assert [subject for subject, _ in told] == [
        f"ww.directory.{AGENCY}.keys-published",
        f"ww.directory.{AGENCY}.revoked",
    ]
    published, revoked = told[0][1]["data"], told[1][1]["data"]
    assert published["change"] == "enrolled"
    assert {k["kid"] for k in published["keys"]} == {
        agency.sealing.thumbprint(),
        agency.signing.thumbprint(),
        agency.broker_user,
    }
    assert revoked["keys_ended"] == 3
    private = json.loads(agency.sealing.export_private())["d"]
    assert all(private not in json.dumps(event) for _, event in told)

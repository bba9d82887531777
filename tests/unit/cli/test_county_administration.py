"""The county's use cases behind `wegweiser agency credentials`, `approve` and `revoke`, on a
real directory in a temporary data directory: a webhook, a FHIR and an e-mail agency get the
credentials of their channel without a broker; an unknown agency or enrolment is refused.
(A NATS agency's credentials need a running broker: the end-to-end tests cover them.)"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from services.directory import identities, importer
from services.directory.enrolment import Refused
from services.directory.identities import Custody, Use
from services.directory.sample import SAMPLE_PATH, sample_agency_ids
from services.gateway.fhir.access import TokenFolder
from tests.support.databases import copied
from wegweiser.agencies import (
    CountyAdministration,
    EmailCredentials,
    FhirCredentials,
    UnknownAgency,
    WebhookCredentials,
)
from wegweiser.platform.keys import KeyRing
from wegweiser.platform.secrets import SecretFolder
from wegweiser.settings import Settings

WEBHOOK_AGENCY = "lup-iq-anerkennung"
FHIR_AGENCY = "lup-psychosozial-ludwigslust"
[EMAIL_AGENCY] = sample_agency_ids("email")
REACHED_BY = {WEBHOOK_AGENCY: "webhook", FHIR_AGENCY: "fhir"}
BY = "test:county"


def _import_the_sample(session: Session) -> None:
    """The sample directory, with one agency reached by webhook and one by FHIR."""
    document = json.loads(SAMPLE_PATH.read_text(encoding="utf-8"))
    for service in document["services"]:
        adapter = REACHED_BY.get(service["wegweiser"]["agency_id"])
        if adapter is not None:
            service["wegweiser"]["referral"] = {"adapter": adapter, "address": "https://x.test/"}
    with tempfile.TemporaryDirectory() as folder:
        sample = Path(folder) / "directory.json"
        sample.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        assert importer.import_file(session, sample).ok


def _no_broker() -> str:
    raise AssertionError("no use case of a webhook, FHIR or e-mail agency asks for the broker")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", portal_url="https://gateway.test")


@pytest.fixture
def county(settings: Settings) -> Iterator[CountyAdministration]:
    settings.data_dir.mkdir(parents=True)
    directory = copied("directory", settings.data_dir / "directory.db", _import_the_sample, "cc")
    yield CountyAdministration(settings, directory, _no_broker)
    directory.dispose()


async def test_a_webhook_agency_gets_its_signing_secret_and_where_to_answer(
    county: CountyAdministration, settings: Settings
) -> None:
    issued = await county.credentials(WEBHOOK_AGENCY)
    assert isinstance(issued, WebhookCredentials)
    assert issued.secret.startswith("whsec_")
    assert issued.secret == SecretFolder(settings.webhook_secrets_path).get(WEBHOOK_AGENCY)
    assert issued.answers_url == f"https://gateway.test/webhooks/{WEBHOOK_AGENCY}/answers"
    assert await county.credentials(WEBHOOK_AGENCY) == issued  # asked again: the same secret


async def test_a_fhir_agency_gets_a_new_token_each_time_and_keeps_its_notification_secret(
    county: CountyAdministration, settings: Settings
) -> None:
    first = await county.credentials(FHIR_AGENCY)
    second = await county.credentials(FHIR_AGENCY)
    assert isinstance(first, FhirCredentials) and isinstance(second, FhirCredentials)
    tokens = TokenFolder.under(settings.keys_path)
    assert tokens.admits(FHIR_AGENCY, second.token)
    assert not tokens.admits(FHIR_AGENCY, first.token)  # the earlier token stops working
    assert first.notification_secret == second.notification_secret
    assert second.notification_secret.startswith("whsec_")
    assert second.fhir_base == f"https://gateway.test/fhir/{FHIR_AGENCY}"


async def test_an_email_agencys_key_pair_is_held_by_the_gateway_and_published(
    county: CountyAdministration, settings: Settings
) -> None:
    issued = await county.credentials(EMAIL_AGENCY)
    assert isinstance(issued, EmailCredentials)
    assert issued.referral_address and "@" in issued.referral_address
    assert issued.key_folder == settings.keys_path / "agencies"
    held = KeyRing(settings.keys_path).agency_path(EMAIL_AGENCY)
    assert held.parent == issued.key_folder and held.exists()
    published = county.directory.read_sync(identities.current)[(EMAIL_AGENCY, Use.SEALING)]
    assert published.custody == Custody.GATEWAY


async def test_an_agency_not_in_the_directory_gets_no_credentials(
    county: CountyAdministration, settings: Settings
) -> None:
    with pytest.raises(UnknownAgency, match="unknown agency 'nope': not in the directory"):
        await county.credentials("nope")
    assert not settings.keys_path.exists()


async def test_revoking_an_agency_ends_its_keys_and_says_no_embedded_broker_runs_here(
    county: CountyAdministration,
) -> None:
    await county.credentials(EMAIL_AGENCY)  # a key published for it
    revoked = await county.revoke(EMAIL_AGENCY, by=BY)
    assert (revoked.agency_id, revoked.keys_ended, revoked.reloaded) == (EMAIL_AGENCY, 1, False)
    assert county.directory.read_sync(lambda s: identities.is_revoked(s, EMAIL_AGENCY))


async def test_an_unknown_agency_or_enrolment_is_refused_with_its_code(
    county: CountyAdministration,
) -> None:
    with pytest.raises(Refused) as revoking:
        await county.revoke("nope", by=BY)
    assert revoking.value.code == "agency.unknown"
    with pytest.raises(Refused) as approving:
        await county.approve("enr-nope", by=BY)
    assert approving.value.code.startswith("enrolment.")

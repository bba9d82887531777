"""Settings: environment over settings file over defaults, and unsafe combinations refused."""

from datetime import timedelta

import pytest
from pydantic import ValidationError

from wegweiser.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ("NATS_URL", "WEGWEISER_NATS_URL", "WEGWEISER_INTAKE_PORT", "WEGWEISER_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_a_settings_file_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    (tmp_path / "wegweiser.toml").write_text(
        'intake_port = 9000\noffice_id = "oa-office"\nremind_after = "P1D"\n'
        'escalate_after = "P2D"\nexpire_after = "P5D"\n'
    )
    monkeypatch.setenv("WEGWEISER_INTAKE_PORT", "9100")
    settings = Settings()
    assert settings.intake_port == 9100
    assert settings.office_id == "oa-office"
    assert settings.expire_after == timedelta(days=5)


def test_each_service_gets_its_own_sqlite_file_unless_a_url_is_given(tmp_path):
    settings = Settings(data_dir=tmp_path / "d", referral_db_url="postgresql://db/referral")
    assert settings.db_url("intake") == f"sqlite:///{tmp_path / 'd' / 'intake.db'}"
    assert settings.db_url("referral") == "postgresql://db/referral"


def test_nats_url_falls_back_to_the_common_variable(monkeypatch):
    monkeypatch.setenv("NATS_URL", "nats://elsewhere:4222")
    assert Settings().nats_url == "nats://elsewhere:4222"


def test_deadlines_must_grow():
    with pytest.raises(ValidationError, match="remind_after < escalate_after < expire_after"):
        Settings(remind_after=timedelta(days=8))


def test_production_refuses_sqlite_unless_explicitly_allowed(monkeypatch):
    with pytest.raises(ValidationError, match="production needs PostgreSQL URLs for directory"):
        Settings(
            environment="production",
            intake_db_url="postgresql://db/i",
            referral_db_url="postgresql://db/r",
        )
    monkeypatch.setenv("WEGWEISER_ALLOW_SQLITE", "1")
    assert Settings(environment="production").environment == "production"


def test_unknown_settings_are_an_error():
    with pytest.raises(ValidationError, match="intake_prot"):
        Settings(intake_prot=1)  # type: ignore[call-arg]


def test_two_services_cannot_share_one_database():
    with pytest.raises(ValidationError, match="these share one: referral, intake"):
        Settings(
            referral_db_url="postgresql://db/wegweiser", intake_db_url="postgresql://db/wegweiser"
        )


def test_the_link_on_a_persons_receipt_is_https_in_production(monkeypatch):
    monkeypatch.setenv("WEGWEISER_ALLOW_SQLITE", "1")
    with pytest.raises(ValidationError, match="web_public_url must be https in production"):
        Settings(environment="production", web_public_url="http://wegweiser.kreis.example")
    with pytest.raises(ValidationError, match="web_public_url"):
        Settings(web_public_url="https://wegweiser.kreis.example/p/")  # a base, no path
    secure = Settings(environment="production", web_public_url="https://wegweiser.kreis.example")
    assert secure.web_public_url == "https://wegweiser.kreis.example"

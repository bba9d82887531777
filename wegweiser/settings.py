"""One Settings object: environment variables (WEGWEISER_*), then wegweiser.toml, then defaults."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from wegweiser.platform.nats_server import free_port
from wegweiser.registry import NAMES as SERVICES


class Settings(BaseSettings):
    """Everything a Wegweiser process can be configured with; see README, Configuration."""

    model_config = SettingsConfigDict(
        env_prefix="WEGWEISER_",
        toml_file=os.environ.get("WEGWEISER_SETTINGS_FILE", "wegweiser.toml"),
        extra="forbid",
    )

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("wegweiser-data")
    nats_url: str | None = Field(
        default=None, description="use this NATS server instead of starting an embedded one"
    )
    nats_port: int = Field(default=0, description="embedded nats-server port; 0 picks a free one")
    nats_monitor_port: int = Field(
        default=0, description="embedded nats-server's HTTP monitoring port; 0 picks a free one"
    )
    nats_monitor: bool | None = Field(
        default=None,
        description="serve the embedded nats-server's HTTP monitoring endpoint, which has no "
        "authentication (default: in development only)",
    )
    nats_cluster_size: int = Field(
        default=1,
        ge=1,
        description="nodes of the embedded NATS: 1 runs one server, 3 (or more) a JetStream "
        "cluster on loopback (`wegweiser up --cluster`)",
    )
    nats_replicas: int | None = Field(
        default=None,
        ge=1,
        le=5,
        description="replicas of the stream and its consumers "
        "(default: 3 in a cluster, else infra/jetstream.toml's)",
    )
    nats_sync_interval: str = Field(
        default="always",
        description="JetStream fsync policy of the embedded server ('always' or a duration)",
    )
    keys_dir: Path | None = Field(default=None, description="key files (default: <data_dir>/keys)")
    nats_seed: Path | None = Field(
        default=None,
        description="nkey seed file to authenticate to NATS with (default: a service's own, "
        "keys_dir/nats/<service>.nk; for admin commands keys_dir/nats/admin.nk)",
    )
    intake_master_key: str | None = Field(
        default=None,
        description="base64 key that wraps every person's key in the intake store "
        "(default: a key file in keys_dir, created on first start)",
    )
    intake_db_url: str | None = None
    referral_db_url: str | None = None
    directory_db_url: str | None = None
    intake_host: str = "127.0.0.1"
    intake_port: int = 8300
    intake_hosts: list[str] = Field(
        default=[],
        description="names intake answers to in the Host header "
        "(default: intake_host, localhost and 127.0.0.1)",
    )
    intake_origins: list[str] = Field(
        default=[],
        description="browser origins whose pages may call intake (default: none; the web app "
        "calls it from its server)",
    )
    web_intake_credential: Path | None = Field(
        default=None,
        description="the web app's client credential for intake, from `wegweiser api-client "
        "add --web` (default: keys_dir/web/intake-client.json, made by intake in development)",
    )
    office_id: str = "lup-integration-office"
    office_name: str = Field(
        default="Landkreis Ludwigslust-Parchim, Büro für Chancengleichheit",
        description="the controller named on consent records and receipts",
    )
    offices: dict[str, str] = Field(
        default={"oa-integration-office": "Landratsamt Oberallgäu, Integrationsbeauftragte"},
        description="further counselling offices served by this intake (id: controller name)",
    )
    max_deliver: int = Field(
        default=5,
        ge=2,
        description="attempts at a message before it is dead-lettered "
        "(deliveries, on an agency's consumer)",
    )
    remind_after: timedelta = timedelta(days=3)
    escalate_after: timedelta = timedelta(days=7)
    expire_after: timedelta = timedelta(days=14)
    legal_acknowledge_within: timedelta = Field(
        default=timedelta(hours=4),
        description="working time an agency has to acknowledge an offer under a legal deadline",
    )
    legal_alert_margin: int = Field(
        default=3,
        ge=1,
        le=20,
        description="working days left before a legal deadline when the office is alerted "
        "that no agency has acknowledged",
    )
    deletion_confirm_within: timedelta = timedelta(days=2)
    deletion_escalate_after: timedelta = timedelta(days=7)
    retention_after_closure: timedelta = Field(
        default=timedelta(days=180),
        description="how long intake keeps a request's personal data after its referrals closed",
    )
    audit_head_every: float = Field(
        default=60.0, description="seconds between signed tree heads (when the log grew)"
    )
    directory_host: str = "127.0.0.1"
    directory_port: int = Field(default=8302, description="the directory's HSDS read API")
    gateway_db_url: str | None = None
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8303, description="webhook callbacks and the e-mail portal")
    portal_url: str | None = Field(
        default=None,
        description="the portal's address in e-mailed links (default: http://gateway_host:port)",
    )
    portal_link_valid_for: timedelta = Field(
        default=timedelta(days=7), description="how long an e-mailed one-time link works"
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for notices (default: .eml files in data_dir/mail)"
    )
    smtp_port: int = 25
    mail_sender: str = "wegweiser@localhost"
    webhook_give_up_after: timedelta = Field(
        default=timedelta(hours=24),
        description="how long a failing webhook delivery is retried before it is dead-lettered",
    )
    gateway_refresh_every: float = Field(
        default=30.0, description="seconds between the gateway's looks for new agencies"
    )
    webhook_ca_file: Path | None = Field(
        default=None, description="extra CA certificates to trust for webhook endpoints"
    )
    audit_db_url: str | None = None
    audit_host: str = "127.0.0.1"
    audit_port: int = 8301
    ombudsperson_token: str | None = Field(
        default=None,
        description="the ombudsperson's read-only bearer token "
        "(default: a token file in keys_dir/audit, created on first start)",
    )
    ombudsperson_email: str | None = Field(
        default=None,
        description="where every signed audit tree head is mailed (SMTP when smtp_host is set, "
        "else .eml files in data_dir/mail/ombudsperson)",
    )
    web_db_url: str | None = None
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8304, description="the web app for counsellors and ombudsperson")
    web_public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#]+$",
        description="where people reach the web app (e.g. https://wegweiser.kreis.example): the "
        "base of the link to the person's own page on a receipt; https in production. Unset: "
        "the address the counsellor's browser used",
    )
    web_trusted_proxies: str = Field(
        default="127.0.0.1",
        description="the reverse proxies whose X-Forwarded-For and -Proto the web app believes "
        "(comma-separated addresses, uvicorn's forwarded_allow_ips): the client's own address "
        "then counts for throttling, not the proxy's",
    )
    web_session_idle: timedelta = Field(
        default=timedelta(minutes=30), description="a web session ends after this long unused"
    )
    web_session_lifetime: timedelta = Field(
        default=timedelta(hours=10), description="a web session ends this long after sign-in"
    )
    instance: int = Field(
        default=1, ge=1, description="which instance of its service this process is (set by up)"
    )
    instances: int = Field(
        default=1, ge=1, le=8, description="how many processes `wegweiser up` runs per service"
    )
    deadline_check_every: float = 5.0
    metrics_host: str = Field(
        default="127.0.0.1",
        description="where `wegweiser up` serves the services' metrics for Prometheus "
        "(loopback: the figures are for the operator's monitoring)",
    )
    metrics_port: int = Field(default=8309, ge=1, le=65535)
    metrics_every: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="how often each service reads its outbox backlog, its consumers and the "
        "stream for its gauges (seconds)",
    )
    follow_up_every: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="how often intake looks for forwards that agencies asked for, urgent "
        "alerts to re-offer and requests whose unmet needs to record, that it has not yet "
        "decided (seconds)",
    )
    inbox_keep: timedelta = Field(
        default=timedelta(days=30),
        description="how long a service remembers an event it processed, to recognise it if "
        "it comes again (a redelivery, or an outbox republishing after a crash); older ids are "
        "forgotten every hour",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="where each service sends its traces (OpenTelemetry, OTLP over HTTP: the "
        "collector's base URL, e.g. http://127.0.0.1:4318; spans go to <it>/v1/traces). Unset: "
        "no tracing, and events carry no trace context",
    )
    log_level: str = "INFO"
    log_json: bool | None = None

    @classmethod
    def on_free_ports(cls, **fields: Any) -> Settings:
        """Settings whose every HTTP port is one free right now (unless `fields` names it),
        for systems that run side by side on one machine (the tests, the benchmark); the
        embedded nats-server picks its own (`nats_port` 0), and the mail server's is not ours."""
        ports: dict[str, Any] = {
            name: free_port()
            for name in cls.model_fields
            if name.endswith("_port") and not name.startswith(("nats_", "smtp_"))
        }
        return cls(**{**ports, **fields})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - pydantic-settings passes it
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env, no secrets dir
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @model_validator(mode="after")
    def _sane(self) -> Settings:
        if self.nats_url is None and os.environ.get("NATS_URL"):
            self.nats_url = os.environ["NATS_URL"]
        if not self.remind_after < self.escalate_after < self.expire_after:
            raise ValueError("deadlines must grow: remind_after < escalate_after < expire_after")
        urls: dict[str, list[str]] = {}
        for service in SERVICES:
            urls.setdefault(self.db_url(service), []).append(service)
        shared = [names for names in urls.values() if len(names) > 1]
        if shared:
            raise ValueError(
                "each service needs a database of its own (each has its outbox, inbox and "
                f"migrations); these share one: {'; '.join(', '.join(n) for n in shared)}"
            )
        if self.environment == "production":
            if self.web_public_url and not self.web_public_url.startswith("https://"):
                raise ValueError(
                    f"web_public_url must be https in production: {self.web_public_url}"
                )
            sqlite = [s for s in SERVICES if self.db_url(s).startswith("sqlite")]
            if sqlite and os.environ.get("WEGWEISER_ALLOW_SQLITE") != "1":
                raise ValueError(
                    f"production needs PostgreSQL URLs for {', '.join(sqlite)} "
                    "(or WEGWEISER_ALLOW_SQLITE=1 for a single-county install)"
                )
        return self

    def db_url(self, service: str) -> str:
        """The service's database URL; SQLite under the data directory unless configured."""
        configured: str | None = getattr(self, f"{service}_db_url")
        if configured:
            return configured
        return f"sqlite:///{(self.data_dir / f'{service}.db').resolve()}"

    @property
    def keys_path(self) -> Path:
        return (self.keys_dir or self.data_dir / "keys").resolve()

    @property
    def nats_seed_path(self) -> Path | None:
        """The nkey seed admin commands and provisioning authenticate with, if any."""
        return self.nats_seed or self._seed_file("admin")

    def service_seed_path(self, service: str) -> Path | None:
        """The nkey seed a service authenticates with: its own, if any."""
        return self.nats_seed or self._seed_file(service)

    def _seed_file(self, principal: str) -> Path | None:
        path = self.keys_path / "nats" / f"{principal}.nk"
        return path if path.exists() else None

    def agency_seed_path(self, agency_id: str) -> Path | None:
        """An agency's nkey seed as `wegweiser agency credentials` wrote it, if it exists."""
        from wegweiser.platform.nats_auth import Seeds

        path = Seeds(self.keys_path / "nats").agency_path(agency_id)
        return path if path.exists() else None

    @property
    def nats_monitoring(self) -> bool:
        """Whether the embedded nats-server serves its (unauthenticated) monitoring port."""
        if self.nats_monitor is not None:
            return self.nats_monitor
        return self.environment == "development"

    @property
    def stream_replicas(self) -> int | None:
        """How many copies JetStream keeps of the stream and each consumer."""
        if self.nats_replicas is not None:
            return self.nats_replicas
        return 3 if self.nats_cluster_size >= 3 else None

    @property
    def all_offices(self) -> dict[str, str]:
        """Every office this installation serves, the default office first."""
        return {self.office_id: self.office_name, **self.offices}

    @property
    def gateway_url(self) -> str:
        return self.portal_url or f"http://{self.gateway_host}:{self.gateway_port}"

    @property
    def intake_allowed_hosts(self) -> list[str]:
        return self.intake_hosts or sorted({self.intake_host, "localhost", "127.0.0.1"})

    @property
    def web_intake_credential_path(self) -> Path:
        return self.web_intake_credential or self.keys_path / "web" / "intake-client.json"

    @property
    def directory_admin_tokens_path(self) -> Path:
        """The digests of the tokens that may use the directory's admin routes."""
        return self.keys_path / "directory" / "admin-tokens"

    @property
    def web_directory_token_path(self) -> Path:
        """The web app's token for the directory's admin routes (its administrators' pages)."""
        return self.keys_path / "web" / "directory-admin.token"

    @property
    def webhook_secrets_path(self) -> Path:
        """Where each webhook agency's signing secret is kept (the gateway signs with it)."""
        return self.keys_path / "webhooks"

    @property
    def demo_intake_credential_path(self) -> Path:
        """`wegweiser demo`'s credential for the default office (made in development)."""
        return self.keys_path / "demo" / "intake-client.json"

    @property
    def intake_url(self) -> str:
        return f"http://{self.intake_host}:{self.intake_port}"

    @property
    def web_url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}"

    @property
    def directory_url(self) -> str:
        return f"http://{self.directory_host}:{self.directory_port}"

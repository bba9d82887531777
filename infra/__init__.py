"""Deployment settings: the JetStream topology and the embedded nats-server configuration."""

from pathlib import Path

HERE = Path(__file__).parent
JETSTREAM_TOML = HERE / "jetstream.toml"
NATS_SERVER_CONF = HERE / "nats-server.conf"

"""Deployment settings: the JetStream topology and the embedded nats-server configuration."""

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
JETSTREAM_TOML = HERE / "jetstream.toml"
NATS_SERVER_CONF = HERE / "nats-server.conf"


@cache
def jetstream_settings() -> dict[str, Any]:
    """infra/jetstream.toml, read once."""
    return tomllib.loads(JETSTREAM_TOML.read_text())

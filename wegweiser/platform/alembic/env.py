"""Alembic's entry point for every service: the work is done in wegweiser.platform.migrations."""

from typing import cast

from alembic import context
from alembic.runtime.environment import EnvironmentContext

from wegweiser.platform.migrations import run_env

run_env(cast(EnvironmentContext, context))  # alembic.context proxies the running environment

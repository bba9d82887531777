"""An offer's own clock, placed before the request's legal deadline

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 04:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("remind_at", "escalate_at", "expire_at")


def upgrade() -> None:
    with op.batch_alter_table("referrals") as table:
        for name in COLUMNS:
            table.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("referrals") as table:
        for name in reversed(COLUMNS):
            table.drop_column(name)

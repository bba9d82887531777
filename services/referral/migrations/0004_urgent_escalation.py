"""Whether an offer's escalation is the urgent alert before a legal deadline

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 08:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referrals") as table:
        table.add_column(
            sa.Column("escalation_urgent", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("referrals") as table:
        table.drop_column("escalation_urgent")

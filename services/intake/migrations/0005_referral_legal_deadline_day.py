"""The day a referral's legal deadline ends, for the office's lists

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 05:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referral_views") as table:
        table.add_column(sa.Column("deadline_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("referral_views") as table:
        table.drop_column("deadline_on")

"""Reason codes, outcomes and sealed comments on referrals

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 19:00:00

A referral's reason becomes a code (the column keeps older free text as it was); its outcome
and an agency's comment, sealed to the office, are new.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("referral_views", "referral_trail"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("outcome", sa.String(length=24), nullable=True))
            batch.add_column(sa.Column("comment", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ("referral_views", "referral_trail"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("comment")
            batch.drop_column("outcome")

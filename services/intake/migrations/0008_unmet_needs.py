"""Unmet needs: which needs of a request no agency took up, for the monitoring report

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unmet_needs",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("need", sa.String(length=60), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_id", "need", "stage"),
    )
    with op.batch_alter_table("requests") as table:
        table.add_column(sa.Column("unmet_check", sa.String(length=16), nullable=True))
        table.create_index(op.f("ix_requests_unmet_check"), ["unmet_check"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("requests") as table:
        table.drop_index(op.f("ix_requests_unmet_check"))
        table.drop_column("unmet_check")
    op.drop_table("unmet_needs")

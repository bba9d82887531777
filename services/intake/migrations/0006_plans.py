"""Plans: referrals of one request sent together, shown and cancelled as one

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 05:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("office_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_plans_request_id"), "plans", ["request_id"], unique=False)
    with op.batch_alter_table("referral_views") as table:
        table.add_column(sa.Column("plan_id", sa.String(length=64), nullable=True))
        table.create_index(op.f("ix_referral_views_plan_id"), ["plan_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("referral_views") as table:
        table.drop_index(op.f("ix_referral_views_plan_id"))
        table.drop_column("plan_id")
    op.drop_index(op.f("ix_plans_request_id"), table_name="plans")
    op.drop_table("plans")

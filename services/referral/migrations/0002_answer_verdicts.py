"""Verdicts on agencies' answers, for `agency answer --wait`

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "answer_verdicts",
        sa.Column("answer_id", sa.String(length=64), nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("message", sa.String(length=500), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("answer_id"),
    )
    op.create_index(
        op.f("ix_answer_verdicts_decided_at"), "answer_verdicts", ["decided_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_answer_verdicts_decided_at"), table_name="answer_verdicts")
    op.drop_table("answer_verdicts")

"""Forwarding and automatic re-offer: an agency passes a referral on, intake seals it afresh

Also: a request may allow intake to offer the next agency of a kind on an urgent alert.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 07:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "forwards",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("forward_to", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("answer_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=80), nullable=True),
        sa.Column("message", sa.String(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_forwards_referral_id"), "forwards", ["referral_id"], unique=False)
    op.create_index(op.f("ix_forwards_state"), "forwards", ["state"], unique=False)
    with op.batch_alter_table("referral_views") as table:
        table.add_column(sa.Column("forwarded_from", sa.String(length=64), nullable=True))
        table.add_column(sa.Column("forwarded_to", sa.String(length=64), nullable=True))
    op.create_table(
        "reoffers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("sent_referral_id", sa.String(length=64), nullable=True),
        sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_reoffers_request_id"), "reoffers", ["request_id"], unique=False)
    op.create_index(op.f("ix_reoffers_state"), "reoffers", ["state"], unique=False)
    with op.batch_alter_table("requests") as table:
        table.add_column(
            sa.Column("auto_reoffer", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("requests") as table:
        table.drop_column("auto_reoffer")
    op.drop_index(op.f("ix_reoffers_state"), table_name="reoffers")
    op.drop_index(op.f("ix_reoffers_request_id"), table_name="reoffers")
    op.drop_table("reoffers")
    with op.batch_alter_table("referral_views") as table:
        table.drop_column("forwarded_to")
        table.drop_column("forwarded_from")
    op.drop_index(op.f("ix_forwards_state"), table_name="forwards")
    op.drop_index(op.f("ix_forwards_referral_id"), table_name="forwards")
    op.drop_table("forwards")

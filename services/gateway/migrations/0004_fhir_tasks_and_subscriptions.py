"""the FHIR adapter: each FHIR agency's view of its referrals, and its Subscriptions

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_fhir_tasks",
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("office_id", sa.String(length=64), nullable=False),
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("outcome", sa.String(length=40), nullable=True),
        sa.Column("sealed_case", sa.String(), nullable=True),
        sa.Column("consent_active", sa.Boolean(), nullable=False),
        sa.Column("unconfirmed", sa.Integer(), nullable=False),
        sa.Column("authored_on", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("referral_id"),
    )
    op.create_index(
        op.f("ix_gateway_fhir_tasks_agency_id"), "gateway_fhir_tasks", ["agency_id"], unique=False
    )
    op.create_index(
        op.f("ix_gateway_fhir_tasks_updated_at"), "gateway_fhir_tasks", ["updated_at"], unique=False
    )
    op.create_table(
        "gateway_fhir_subscriptions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.String(length=2000), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("events_since_start", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_gateway_fhir_subscriptions_agency_id"),
        "gateway_fhir_subscriptions",
        ["agency_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_gateway_fhir_subscriptions_agency_id"), table_name="gateway_fhir_subscriptions"
    )
    op.drop_table("gateway_fhir_subscriptions")
    op.drop_index(op.f("ix_gateway_fhir_tasks_updated_at"), table_name="gateway_fhir_tasks")
    op.drop_index(op.f("ix_gateway_fhir_tasks_agency_id"), table_name="gateway_fhir_tasks")
    op.drop_table("gateway_fhir_tasks")

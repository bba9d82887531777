"""The person's own page: links stored by the hash of their token

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 22:00:00

One live link per consent (issuing again replaces it); erased with the request.
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
        "person_links",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("office_id", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_sha256"),
        sa.UniqueConstraint("consent_id"),
    )
    op.create_index("ix_person_links_request_id", "person_links", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_person_links_request_id", table_name="person_links")
    op.drop_table("person_links")

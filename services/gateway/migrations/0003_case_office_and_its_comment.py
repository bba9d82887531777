"""an e-mail agency's case: the office that sent it, and the office's sealed comment

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 19:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_cases") as batch:
        batch.add_column(sa.Column("office_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("office_note", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gateway_cases") as batch:
        batch.drop_column("office_note")
        batch.drop_column("office_id")

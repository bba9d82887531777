"""callbacks taken once, links minted at send time, deleted cases

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 00:48:38.695592

Notices staged before this revision hold their one-time link in clear in `body`. The sent
ones are deleted with it; each unsent one is read back into what the relay needs now (the
agency from its Message-ID, the referral and the news from its subject, the agency's name
from its greeting) and leaves with a freshly minted link.
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TITLES = {
    "Neue Vermittlung": "offered",
    "Erinnerung: Vermittlung wartet auf Antwort": "reminded",
    "Vermittlung überfällig": "escalated",
    "Vermittlung zurückgezogen": "cancelled",
    "Vermittlung abgelaufen": "expired",
    "Bitte Daten löschen": "deletion-requested",
}
"""The notices' German titles as revision 0001's code wrote them, and their news."""

mail = sa.table(
    "gateway_mail",
    sa.column("message_id", sa.String),
    sa.column("subject", sa.String),
    sa.column("body", sa.String),
    sa.column("sent_at", sa.DateTime),
    sa.column("agency_id", sa.String),
    sa.column("agency_name", sa.String),
    sa.column("referral_id", sa.String),
    sa.column("kind", sa.String),
)


def _fields(message_id: str, subject: str, body: str) -> dict[str, str]:
    """What an unsent notice of revision 0001 was about, read back from its text."""
    agency_id = message_id.strip("<>").split("@")[0].rsplit(".", 1)[-1]
    titled = re.fullmatch(r"Wegweiser: (.*) / .* \((.+)\)", subject)
    greeted = re.search(r"für (.+) gibt es über Wegweiser", body)
    title, referral_id = titled.groups() if titled else ("", "unknown")
    return {
        "agency_id": agency_id,
        "agency_name": greeted.group(1) if greeted else agency_id,
        "referral_id": referral_id,
        "kind": TITLES.get(title, "news"),
    }


def upgrade() -> None:
    op.create_table(
        "gateway_answers",
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("answer_id", sa.String(length=200), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("agency_id", "answer_id"),
    )
    op.create_table(
        "gateway_callbacks",
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("webhook_id", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("agency_id", "webhook_id"),
    )
    with op.batch_alter_table("gateway_callbacks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gateway_callbacks_received_at"), ["received_at"], unique=False
        )

    with op.batch_alter_table("gateway_cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("gateway_mail", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agency_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("agency_name", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("referral_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("kind", sa.String(length=40), nullable=True))
    connection = op.get_bind()
    connection.execute(sa.delete(mail).where(mail.c.sent_at.is_not(None)))
    unsent = connection.execute(sa.select(mail.c.message_id, mail.c.subject, mail.c.body))
    for message_id, subject, body in unsent.all():
        connection.execute(
            sa.update(mail)
            .where(mail.c.message_id == message_id)
            .values(**_fields(message_id, subject, body))
        )
    with op.batch_alter_table("gateway_mail", schema=None) as batch_op:
        for name in ("agency_id", "agency_name", "referral_id", "kind"):
            batch_op.alter_column(name, nullable=False)
        batch_op.drop_column("subject")
        batch_op.drop_column("body")


def downgrade() -> None:
    # a notice not sent yet has no text to go back to: it is dropped
    op.get_bind().execute(sa.delete(mail))
    with op.batch_alter_table("gateway_mail", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body", sa.VARCHAR(), nullable=False))
        batch_op.add_column(sa.Column("subject", sa.VARCHAR(), nullable=False))
        batch_op.drop_column("kind")
        batch_op.drop_column("referral_id")
        batch_op.drop_column("agency_name")
        batch_op.drop_column("agency_id")

    with op.batch_alter_table("gateway_cases", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")

    with op.batch_alter_table("gateway_callbacks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gateway_callbacks_received_at"))

    op.drop_table("gateway_callbacks")
    op.drop_table("gateway_answers")

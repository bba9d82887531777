"""The gateway's revision 0002 on a database with notices staged by 0001: their one-time
links in clear go, a notice not yet sent stays, to leave with a link minted then."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy

from tests.support.databases import service_database
from wegweiser.platform import migrations

LINK = "http://portal.test/portal/CLEAR-TOKEN-0001"


def test_notices_staged_before_hold_no_link_after(database_url: str) -> None:
    db = service_database("gateway", database_url)
    try:
        migrations.upgrade(db, "0001")
        body = f"Guten Tag,\n\nfür Kleiner Verein e.V. gibt es über Wegweiser: …\n{LINK}\n"
        staged = [
            ("<e-1.oa-kleiner-verein@wegweiser>", "Neue Vermittlung / New referral", None),
            ("<e-2.oa-kleiner-verein@wegweiser>", "Bitte Daten löschen / Please …", None),
            ("<e-3.oa-kleiner-verein@wegweiser>", "Neue Vermittlung / New referral", "sent"),
        ]
        with db.engine.begin() as conn:
            for n, (message_id, title, sent) in enumerate(staged):
                conn.execute(
                    sqlalchemy.text(
                        "INSERT INTO gateway_mail (message_id, recipient, subject, body, "
                        "created_at, sent_at) VALUES (:m, 'post@verein.example', :s, :b, :c, :t)"
                    ),
                    {
                        "m": message_id,
                        "s": f"Wegweiser: {title} (ref-{n})",
                        "b": body,
                        "c": datetime(2026, 11, 21, tzinfo=UTC),
                        "t": datetime(2026, 11, 21, tzinfo=UTC) if sent else None,
                    },
                )
        migrations.upgrade(db)
        assert migrations.differences(db) == []
        with db.engine.connect() as conn:
            rows = conn.execute(
                sqlalchemy.text(
                    "SELECT message_id, agency_id, agency_name, referral_id, kind "
                    "FROM gateway_mail ORDER BY message_id"
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("<e-1.oa-kleiner-verein@wegweiser>", "oa-kleiner-verein", "Kleiner Verein e.V.",
             "ref-0", "offered"),
            ("<e-2.oa-kleiner-verein@wegweiser>", "oa-kleiner-verein", "Kleiner Verein e.V.",
             "ref-1", "deletion-requested"),
        ]  # fmt: skip
        migrations.downgrade(db, "0001")  # and back: the unsent notices are lost
        with db.engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT * FROM gateway_mail")).all() == []
    finally:
        db.dispose()

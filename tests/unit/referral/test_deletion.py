"""After a withdrawal: an agency's deletion is reminded, then escalated, until confirmed."""

from datetime import UTC, datetime, timedelta

import pytest

from services.referral.deletion import AlreadyConfirmed, Deletion, DeletionPolicy

NOW = datetime(2026, 11, 2, 9, tzinfo=UTC)
POLICY = DeletionPolicy(confirm_within=timedelta(days=2), escalate_after=timedelta(days=7))


def test_an_unconfirmed_deletion_is_reminded_then_escalated_once_each():
    deletion = Deletion.request("r1", "agency-a", NOW)
    assert deletion.confirm_by(POLICY) == NOW + timedelta(days=2)
    deletion.check(NOW + timedelta(days=1), POLICY)
    deletion.check(NOW + timedelta(days=3), POLICY)
    deletion.check(NOW + timedelta(days=4), POLICY)
    assert deletion.next_check(POLICY) == NOW + timedelta(days=7)
    deletion.check(NOW + timedelta(days=30), POLICY)
    deletion.check(NOW + timedelta(days=31), POLICY)
    assert deletion.changes == ["deletion-requested", "deletion-reminded", "deletion-escalated"]
    assert deletion.next_check(POLICY) is None


def test_a_confirmed_deletion_has_no_more_reminders_and_cannot_be_confirmed_twice():
    deletion = Deletion.request("r1", "agency-a", NOW)
    deletion.confirm(NOW + timedelta(hours=5))
    deletion.check(NOW + timedelta(days=30), POLICY)
    assert deletion.changes == ["deletion-requested", "deletion-confirmed"]
    assert deletion.next_check(POLICY) is None
    with pytest.raises(AlreadyConfirmed):
        deletion.confirm(NOW + timedelta(days=1))

"""The administrator's `wegweiser user` use cases, on the web app's real SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.web.accounts import AccountError, Role
from services.web.users import UserAdministration
from wegweiser.settings import Settings


def never_asked() -> str:
    raise AssertionError("the password was asked although the user is refused")


@pytest.fixture
def users(tmp_path: Path) -> UserAdministration:
    return UserAdministration(Settings(data_dir=tmp_path / "data"))


def test_a_user_added_is_listed_and_a_second_add_is_refused(users: UserAdministration):
    office = Settings().office_id
    users.add("berater", lambda: "lang genug 123", Role.COUNSELLOR, office)
    users.add("ombud", lambda: "lang genug 456", Role.OMBUDSPERSON)
    assert [(u.username, u.role, u.office_id) for u in users.listed()] == [
        ("berater", "counsellor", office),
        ("ombud", "ombudsperson", None),
    ]
    with pytest.raises(AccountError, match="exists"):
        users.add("berater", lambda: "lang genug 789", Role.COUNSELLOR, office)
    users.add("berater", lambda: "lang genug 789", Role.ADMINISTRATOR, replace=True)
    assert [u.role for u in users.listed()] == ["administrator", "ombudsperson"]


def test_an_unknown_office_is_refused_before_the_password_is_asked(users: UserAdministration):
    with pytest.raises(AccountError, match="unknown office 'nowhere'; configured: "):
        users.add("berater", never_asked, Role.COUNSELLOR, "nowhere")
    assert users.listed() == []

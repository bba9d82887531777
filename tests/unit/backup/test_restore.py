"""A restore fills only an empty installation, and only with what this version can run:
every refusal comes before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.backup import PUBLIC, SECRET, a_folder, manifest_of
from wegweiser.backup.archive import DatabaseEntry, Key, Refused, seal
from wegweiser.backup.restore import restore
from wegweiser.platform import migrations
from wegweiser.registry import service
from wegweiser.settings import Settings


def archive_with(tmp_path: Path, revision: str | None) -> Path:
    folder = a_folder(tmp_path)
    manifest = manifest_of(
        folder, databases={"intake": DatabaseEntry(kind="sqlite", revision=revision)}
    )
    out = tmp_path / "backup.age"
    seal(folder, manifest, out, Key(recipients=[PUBLIC]))
    return out


def test_a_data_directory_in_use_is_refused_and_left_as_it_was(tmp_path):
    archive = archive_with(tmp_path, None)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "intake.db").write_bytes(b"precious")
    with pytest.raises(Refused, match=f"{data_dir} is not empty"):
        restore(Settings(data_dir=data_dir), archive, Key(identities=[SECRET]))
    assert [p.name for p in data_dir.iterdir()] == ["intake.db"]
    assert (data_dir / "intake.db").read_bytes() == b"precious"


def test_a_database_of_a_newer_schema_is_refused_before_anything_is_written(tmp_path):
    archive = archive_with(tmp_path, "9999")
    data_dir = tmp_path / "data"
    with pytest.raises(Refused, match="intake database is at schema revision 9999"):
        restore(Settings(data_dir=data_dir), archive, Key(identities=[SECRET]))
    assert not data_dir.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".wegweiser")] == []


def test_an_archive_without_the_stream_or_a_database_it_lists_is_refused(tmp_path):
    newest = migrations.head(service("intake").revisions)
    archive = archive_with(tmp_path, newest)
    lacks = "it lacks stream/meta.json, stream/snapshot.tar.s2, stream/tail.jsonl$"
    with pytest.raises(Refused, match=lacks):
        restore(Settings(data_dir=tmp_path / "data"), archive, Key(identities=[SECRET]))
    assert not (tmp_path / "data").exists(), "a failed restore leaves nothing behind"


def test_no_archive_is_refused(tmp_path):
    with pytest.raises(Refused, match="no archive"):
        restore(
            Settings(data_dir=tmp_path / "data"), tmp_path / "none.age", Key(identities=[SECRET])
        )

"""The README and the code agree on the event catalogue and the settings."""

from pathlib import Path

from schemas.catalogue import CATALOGUE
from wegweiser.settings import Settings

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def test_the_readme_lists_every_event_type_with_its_subject():
    for spec in CATALOGUE:
        assert f"| `{spec.event_type}` | `{spec.subject}` |" in README, spec.event_type


def test_the_readme_documents_every_setting():
    for name in Settings.model_fields:
        assert f"`{name}`" in README, name

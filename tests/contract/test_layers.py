"""Dependencies point one way: the contracts import nothing of Wegweiser's code, and the
platform knows no service (each service hands the platform what it needs)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("schemas", ("services", "wegweiser", "infra")),
        ("wegweiser/platform", ("services", "wegweiser.cli", "wegweiser.supervisor")),
    ],
)
def test_a_layer_imports_nothing_above_it(layer: str, forbidden: tuple[str, ...]) -> None:
    offending = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in (ROOT / layer).rglob("*.py")
        for module in imports_of(path)
        if module.split(".")[0] in forbidden or module.startswith(forbidden)
    }
    assert not offending, sorted(offending)

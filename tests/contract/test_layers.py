"""Dependencies point one way: the contracts import nothing of Wegweiser's code, the platform
knows no service (each service hands the platform what it needs, the services' list included),
and no service reaches into another, but for the crossings listed here with their reasons."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from wegweiser import registry

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"

LIBRARIES = {
    "consent": "the consent rules and texts: intake and referral both check them (defence in "
    "depth), the report and the web app show them",
    "report": "the monitoring report, made from the audit log's metadata: the audit service "
    "serves it, the CLI prints it",
}
"""Folders under services/ that are no service of the registry (they run no process and keep no
store): any service may import them. services/agency, the agencies' SDK shipped on its own, is
none: no service imports it."""

CROSSINGS = {
    ("intake", "services.referral.domain"): "intake forwards only from the states the "
    "lifecycle's rules allow (RULES), the rules being the referral service's",
    ("intake", "services.referral.legal_deadline"): "intake admits a request's legal deadline "
    "and shows its clock by the referral service's rules, pure functions",
    ("gateway", "services.referral.domain"): "the FHIR adapter checks an agency's Task update "
    "against the lifecycle's rules before it becomes an answer",
    ("web", "services.referral.legal_deadline"): "the Länder a legal deadline is counted for, "
    "offered in the counsellor's form",
    ("web", "services.audit.keys"): "where the audit log's public key is kept, which the web "
    "app pins (it never reads the private half)",
    ("web", "services.audit.access"): "the ombudsperson's token, with which the web app calls "
    "the audit API",
    ("web", "services.audit.export"): "the web app checks an export as `wegweiser audit "
    "verify` does, with the same code",
    ("web", "services.audit.verification"): "the same offline checks of the log's heads",
    ("web", "services.directory.admin_models"): "the wire models of the directory's admin API "
    "(pydantic alone), which the web app calls",
    ("web", "services.directory.needs"): "the needs' German and English labels",
    ("web", "services.intake.api_models"): "the wire models of intake's API, which the web app "
    "calls",
    ("web", "services.intake.credential"): "the client side of intake's API credentials",
    ("web", "services.intake.person"): "whether a person's link token is plausible before the "
    "web app asks intake for it",
}
"""(importing service, imported module) -> why: a service's published pieces (pure rules, wire
models, a client) that another one imports; anything else across services fails the test."""


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function, with the names taken from
    it (`from wegweiser import registry` is `wegweiser.registry`); relative imports resolved."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(
                [*package[: len(package) - node.level + 1], node.module or ""]
                if node.level
                else [node.module or ""]
            ).strip(".")
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize(
    ("layer", "forbidden", "allowed"),
    [
        ("schemas", ("services", "wegweiser", "infra"), ()),
        # neither the CLI, the supervisor, provisioning nor the registry (the services' list)
        (
            "wegweiser/platform",
            ("services", "wegweiser"),
            ("wegweiser.platform", "wegweiser.settings"),
        ),
    ],
)
def test_a_layer_imports_nothing_above_it(
    layer: str, forbidden: tuple[str, ...], allowed: tuple[str, ...]
) -> None:
    offending = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in (ROOT / layer).rglob("*.py")
        for module in imports_of(path)
        if within(module, forbidden) and not within(module, allowed)
    }
    assert not offending, sorted(offending)


def test_no_service_imports_another_but_for_the_listed_crossings() -> None:
    offending = set()
    for path in SERVICES.rglob("*.py"):
        own = path.relative_to(SERVICES).parts[0]
        for module in imports_of(path):
            parts = module.split(".")
            if parts[0] != "services" or len(parts) < 2 or parts[1] in (own, *LIBRARIES):
                continue
            crossing = ".".join(parts[:3])  # services.<other>.<module>
            if (own, crossing) not in CROSSINGS:
                offending.add(f"{path.relative_to(ROOT)}: {module}")
    assert not offending, sorted(offending)


def test_the_libraries_import_no_service_and_every_crossing_is_still_made() -> None:
    """A library that imported a service would make every service import it; a crossing no
    longer made is an exception left behind."""
    made = set()
    for path in SERVICES.rglob("*.py"):
        own = path.relative_to(SERVICES).parts[0]
        for module in imports_of(path):
            parts = module.split(".")
            if parts[0] != "services" or len(parts) < 2 or parts[1] == own:
                continue
            if own in LIBRARIES:
                assert parts[1] in LIBRARIES, f"{path.relative_to(ROOT)}: {module}"
            made.add((own, ".".join(parts[:3])))
    assert not set(LIBRARIES) & set(registry.NAMES)
    assert set(CROSSINGS) <= made, sorted(set(CROSSINGS) - made)

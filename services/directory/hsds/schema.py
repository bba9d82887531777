"""The HSDS 3.0 tables, their relations, and validation against the official JSON Schemas.

The schemas are the ones Open Referral publishes, copied into `schemas/hsds/schema` (CC BY-SA
4.0). Relations are read from them: an array of `$ref` is a one-to-many relation whose child
carries `<parent>_id` (attributes: `link_id`, metadata: `resource_id`); a single `$ref` is a
to-one relation whose parent carries `<child>_id`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import schemas

SCHEMA_DIR = Path(schemas.__file__).parent / "hsds" / "schema"
BASE_URI = "https://raw.githubusercontent.com/openreferral/specification/3.0/schema/"
VERSION = "3.0"
PROFILE = "https://openreferral.org/specification/3.0"
NOT_TABLES = frozenset({"openapi"})
MESSAGE_LIMIT = 240


@dataclass(frozen=True, slots=True)
class Relation:
    """A nested property of one table that holds records of another."""

    prop: str
    kind: str
    many: bool

    def child_key(self, parent_kind: str) -> str:
        """The field of a child record (many) that names its parent."""
        return {"attribute": "link_id", "metadata": "resource_id"}.get(
            self.kind, f"{parent_kind}_id"
        )

    @property
    def parent_key(self) -> str:
        """The field of a parent record (to-one) that names its child."""
        return f"{self.kind}_id"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input: where (a JSON path or file/row/column) and what."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@cache
def table_schemas() -> dict[str, dict[str, Any]]:
    """Every table's schema by kind (`service`, `organization`, ...)."""
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(SCHEMA_DIR.glob("*.json"))
        if path.stem not in NOT_TABLES
    }


def kinds() -> tuple[str, ...]:
    return tuple(table_schemas())


@cache
def table_files() -> dict[str, str]:
    """Tabular file name -> kind, from each schema's `path` (`services.csv` -> `service`)."""
    return {schema["path"]: kind for kind, schema in table_schemas().items()}


def kind_of_table(name: str) -> str | None:
    """The kind a table is named for: `services.csv`, `services` or `service`."""
    files = table_files()
    stem = name.removesuffix(".csv")
    if f"{stem}.csv" in files:
        return files[f"{stem}.csv"]
    if stem in table_schemas():
        return stem
    return {file.removesuffix(".csv"): kind for file, kind in files.items()}.get(stem + "s")


@cache
def relations(kind: str) -> tuple[Relation, ...]:
    found = []
    for prop, spec in table_schemas()[kind].get("properties", {}).items():
        if "$ref" in spec:
            found.append(Relation(prop, Path(spec["$ref"]).stem, many=False))
        elif spec.get("type") == "array" and "$ref" in spec.get("items", {}):
            found.append(Relation(prop, Path(spec["items"]["$ref"]).stem, many=True))
    return tuple(found)


def relation(kind: str, prop: str) -> Relation | None:
    return next((r for r in relations(kind) if r.prop == prop), None)


def field_types(kind: str) -> dict[str, str]:
    """Each plain field's JSON type, for reading CSV cells."""
    return {
        prop: spec["type"]
        for prop, spec in table_schemas()[kind].get("properties", {}).items()
        if isinstance(spec.get("type"), str) and spec["type"] not in ("array", "object")
    }


@cache
def _registry() -> Registry:
    resources = [
        (BASE_URI + f"{kind}.json", Resource.from_contents(schema, DRAFT202012))
        for kind, schema in table_schemas().items()
    ]
    return Registry().with_resources(resources)


@cache
def validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": BASE_URI + f"{kind}.json"},
        registry=_registry(),
        format_checker=FormatChecker(),
    )


def check(kind: str, document: object, where: str) -> list[Problem]:
    """Every way `document` breaks the HSDS schema of `kind`, each with its JSON path."""
    problems = []
    for error in sorted(validator(kind).iter_errors(document), key=lambda e: list(e.path)):
        message = error.message
        if len(message) > MESSAGE_LIMIT:
            message = message[: MESSAGE_LIMIT - 1] + "…"
        problems.append(Problem(where + error.json_path.removeprefix("$"), message))
    return problems

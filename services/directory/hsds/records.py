"""HSDS data as flat records, the way its tabular form keeps it, and nested documents built back.

An import flattens every nested document into records of one table each, linked by ids; the
read API and the export assemble them back into the nested documents the schemas describe.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from services.directory.hsds.schema import Problem, Relation, kinds, relation, relations

Record = dict[str, Any]

EXTRA_RELATIONS = {
    ("organization", "services"): Relation("services", "service", many=True),
    ("service_at_location", "service"): Relation("service", "service", many=False),
}
"""Nestings the official examples use that the schemas do not list."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The import says which records of `kind` belong to one parent: exactly `ids`."""

    kind: str
    key: str
    parent_id: str
    ids: frozenset[str]


@dataclass
class Batch:
    """Flat records read from one input, with where each came from and the claims it makes."""

    records: dict[str, dict[str, Record]] = field(default_factory=lambda: defaultdict(dict))
    origin: dict[tuple[str, str], str] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def add(self, kind: str, record: Record, where: str) -> None:
        """Keep a record; the same record twice is fine, two different ones with one id are not."""
        known = self.records[kind].get(record["id"])
        if known is not None:
            clash = sorted(k for k in known.keys() & record.keys() if known[k] != record[k])
            if clash:
                first = self.origin[kind, record["id"]]
                self.problems.append(
                    Problem(
                        f"{where}.{clash[0]}",
                        f"{kind} {record['id']} has another {clash[0]} at {first}",
                    )
                )
                return
            record = {**known, **record}
        self.records[kind][record["id"]] = record
        self.origin.setdefault((kind, record["id"]), where)

    def count(self) -> int:
        return sum(len(table) for table in self.records.values())

    def flatten(self, kind: str, document: Record, where: str) -> str:
        """Split a (valid) nested document into records; returns its id."""
        record: Record = {}
        nested: list[tuple[Relation, Any]] = []
        for prop, value in document.items():
            rel = relation(kind, prop) or EXTRA_RELATIONS.get((kind, prop))
            if rel is None:
                record[prop] = value
            elif value is not None:
                nested.append((rel, value))
        self.add(kind, record, where)
        for rel, value in nested:
            path = f"{where}.{rel.prop}"
            if rel.many:
                ids = []
                key = rel.child_key(kind)
                for index, child in enumerate(value):
                    if child.get(key) not in (None, record["id"]):
                        self.problems.append(
                            Problem(f"{path}[{index}].{key}", f"differs from {where}.id")
                        )
                        continue
                    child = {**child, key: record["id"]}
                    if rel.kind == "attribute":
                        child.setdefault("link_entity", kind)
                    if rel.kind == "metadata":
                        child.setdefault("resource_type", kind)
                    ids.append(self.flatten(rel.kind, child, f"{path}[{index}]"))
                self.claims.append(Claim(rel.kind, key, record["id"], frozenset(ids)))
            else:
                child_id = self.flatten(rel.kind, value, path)
                if record.get(rel.parent_key) not in (None, child_id):
                    self.problems.append(
                        Problem(f"{where}.{rel.parent_key}", f"differs from {path}.id")
                    )
                record[rel.parent_key] = child_id
        return str(record["id"])

    def claim_tables(self, tables: Iterable[str]) -> None:
        """A tabular input holds whole tables: for each parent it has, each child table it has
        lists exactly that parent's children."""
        present = set(tables)
        for parent_kind in present:
            for rel in relations(parent_kind):
                if not rel.many or rel.kind not in present:
                    continue
                key = rel.child_key(parent_kind)
                children: dict[str, set[str]] = defaultdict(set)
                for child in self.records[rel.kind].values():
                    if child.get(key) is not None:
                        children[child[key]].add(child["id"])
                for parent_id in self.records[parent_kind]:
                    ids = frozenset(children.get(parent_id, ()))
                    self.claims.append(Claim(rel.kind, key, parent_id, ids))


class Assembler:
    """Builds nested documents from flat records, as the HSDS API and compiled schemas show them."""

    def __init__(self, records: dict[str, dict[str, Record]]) -> None:
        self.records = records
        self.children: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for kind, table in records.items():
            for record_id in sorted(table):
                for key in _link_keys(kind):
                    value = table[record_id].get(key)
                    if value is not None:
                        self.children[kind, key, value].append(record_id)

    def get(self, kind: str, record_id: str) -> Record | None:
        return self.records.get(kind, {}).get(record_id)

    def ids(self, kind: str) -> list[str]:
        return sorted(self.records.get(kind, {}))

    def children_of(self, kind: str, key: str, parent_id: str) -> list[str]:
        return self.children.get((kind, key, parent_id), [])

    def full(self, kind: str, record_id: str) -> Record:
        """The record with every related record nested in it."""
        record = dict(self.records[kind][record_id])
        for rel in relations(kind):
            if rel.many:
                key = rel.child_key(kind)
                record[rel.prop] = [
                    self.full(rel.kind, child)
                    for child in self.children_of(rel.kind, key, record_id)
                ]
            else:
                target = record.get(rel.parent_key)
                if target is not None and target in self.records.get(rel.kind, {}):
                    record[rel.prop] = self.full(rel.kind, target)
        return record


@cache
def _link_keys(kind: str) -> tuple[str, ...]:
    """The fields by which a record of `kind` names the parents it is nested under."""
    if kind == "attribute":
        return ("link_id",)
    if kind == "metadata":
        return ("resource_id",)
    parents = {p for p in kinds() for r in relations(p) if r.many and r.kind == kind}
    parents |= {p for (p, _), r in EXTRA_RELATIONS.items() if r.many and r.kind == kind}
    return tuple(sorted(f"{parent}_id" for parent in parents))

"""Import HSDS data into the directory, and export it: all or nothing, idempotent.

An import reads a file (any form `hsds.reader` accepts), checks every record against the HSDS
schemas and Wegweiser's profile, withholds confidential addresses, and applies the result in one
transaction: records are created or updated in place, and children an imported parent no longer
lists are removed. Any problem and nothing changes. The agencies resolution reads are derived in
the same transaction. Importing the same file again changes nothing.
"""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from services.directory import needs, profile, store
from services.directory.gazetteer import SAMPLE, Gazetteer
from services.directory.hsds import reader
from services.directory.hsds.records import Assembler, Batch
from services.directory.hsds.schema import PROFILE, VERSION, Problem, check, relations
from services.directory.store import Changes, Records

ROOTS = ("organization", "service", "taxonomy", "taxonomy_term")
"""What an export lists at its top level; everything else is nested in them."""


@dataclass
class Report:
    """The outcome of an import: problems (nothing changed) or the changes made."""

    problems: list[Problem] = field(default_factory=list)
    changes: Changes = field(default_factory=Changes)
    withheld_addresses: int = 0
    agencies: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        c = self.changes
        parts = [
            f"{sum(c.created.values())} created",
            f"{sum(c.updated.values())} updated",
            f"{sum(c.removed.values())} removed",
            f"{sum(c.unchanged.values())} unchanged",
        ]
        return f"{', '.join(parts)}; {self.agencies} services receive referrals"


def add_builtin(batch: Batch) -> None:
    """Add the needs taxonomy, part of every directory."""
    for record in needs.taxonomies():
        batch.add("taxonomy", record, "needs taxonomy")
    for record in needs.terms():
        batch.add("taxonomy_term", record, "needs taxonomy")


def import_file(
    session: Session, path: Path, kind: str | None = None, gazetteer: Gazetteer = SAMPLE
) -> Report:
    return import_batch(session, reader.read(path, kind), gazetteer)


def import_batch(session: Session, batch: Batch, gazetteer: Gazetteer = SAMPLE) -> Report:
    """Apply a batch in the session's transaction, or nothing when any record is at fault."""
    add_builtin(batch)
    report = Report(problems=list(batch.problems))
    report.problems.extend(profile.check(batch.records, batch.origin))
    if report.problems:
        return report
    before = store.load_records(session)
    after = merge(before, batch)
    report.withheld_addresses = profile.withhold_confidential(after)
    stamp_modified(before, after, batch, datetime.now(UTC))
    assembler = Assembler(after)
    agencies, problems = profile.agencies(assembler, gazetteer)
    report.problems.extend(problems)
    if report.problems:
        return report
    report.warnings.extend(dangling(after))
    report.changes = store.write_records(session, before, after)
    changed_agencies = store.replace_agencies(session, agencies)
    if report.changes.any or changed_agencies:
        store.bump(session)
    report.agencies = len(agencies)
    return report


def merge(before: Records, batch: Batch) -> Records:
    """The records after the batch: its records replace theirs, its claims prune children."""
    after: Records = copy.deepcopy(before)
    children: dict[tuple[str, str], dict[str, list[str]]] = {}
    for kind, key in {(claim.kind, claim.key) for claim in batch.claims}:
        by_parent: dict[str, list[str]] = defaultdict(list)
        for child_id, child in after.get(kind, {}).items():
            if child.get(key) is not None:
                by_parent[child[key]].append(child_id)
        children[kind, key] = by_parent
    for claim in batch.claims:
        for child_id in children[claim.kind, claim.key].get(claim.parent_id, ()):
            if child_id not in claim.ids:
                after[claim.kind].pop(child_id, None)
    for kind, table in batch.records.items():
        after.setdefault(kind, {}).update(copy.deepcopy(table))
    return after


def stamp_modified(before: Records, after: Records, batch: Batch, now: datetime) -> None:
    """Give each service the `last_modified` that `modified_after` compares with (listing.py):
    the publisher's, where the batch gives one; else the time of this import, if it changed
    the service or anything nested in it (or the service has no time yet); else the time it
    had. So another directory keeps its copy in step even with data that carries no times,
    and importing the same file again changes nothing. The time is taken before the import
    commits: a copy that asks from its previous ask's start on misses nothing."""
    given = batch.records.get("service", {})
    old, new = Assembler(before), Assembler(after)
    known = before.get("service", {})
    stamp = now.isoformat(timespec="milliseconds")  # HSDS: "should have millisecond accuracy"
    for service_id, record in after.get("service", {}).items():
        if given.get(service_id, {}).get("last_modified") is not None:
            continue
        previous = known.get(service_id, {}).get("last_modified")
        unchanged = service_id in known and _unstamped(
            old.full("service", service_id)
        ) == _unstamped(new.full("service", service_id))
        # one kept from before this rule has no time yet: it gets this import's
        record["last_modified"] = previous if unchanged and previous is not None else stamp


def _unstamped(service: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in service.items() if key != "last_modified"}


def dangling(records: Records) -> list[str]:
    """References to records that are not there (HSDS data often has them; they are kept)."""
    found = []
    for kind, table in sorted(records.items()):
        keys = {f"{r.kind}_id": r.kind for r in relations(kind) if not r.many}
        for record_id, record in sorted(table.items()):
            for key, target in keys.items():
                value = record.get(key)
                if value is not None and value not in records.get(target, {}):
                    found.append(f"{kind} {record_id}: {key} {value} is not in the directory")
    return found


def export(session: Session) -> dict[str, Any]:
    """The whole directory as one HSDS 3.0 dataset, every entry checked against its schema."""
    assembler = Assembler(store.load_records(session))
    document: dict[str, Any] = {
        "version": VERSION,
        "profile": PROFILE,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    problems: list[Problem] = []
    for kind in ROOTS:
        entries = [
            public(assembler.full(kind, record_id), kind) for record_id in assembler.ids(kind)
        ]
        name = f"{kind}s" if kind != "taxonomy" else "taxonomies"
        for index, entry in enumerate(entries):
            problems.extend(check(kind, entry, f"$.{name}[{index}]"))
        document[name] = entries
    if problems:
        raise ValueError("export does not validate: " + "; ".join(map(str, problems[:5])))
    return document


def public(document: dict[str, Any], kind: str) -> dict[str, Any]:
    """A nested document with nothing that places a confidential location, at any depth."""
    if kind == "location" and profile.is_confidential(document):
        document = {k: v for k, v in document.items() if k not in profile.CONFIDENTIAL_FIELDS}
        document["addresses"] = []
    for rel in relations(kind):
        value = document.get(rel.prop)
        if rel.many and isinstance(value, list):
            document[rel.prop] = [public(child, rel.kind) for child in value]
        elif isinstance(value, dict):
            document[rel.prop] = public(value, rel.kind)
    return document


def counts(changes: Changes) -> dict[str, dict[str, int]]:
    """The changes per table, for printing."""
    tables: dict[str, Counter[str]] = {}
    for what in ("created", "updated", "removed", "unchanged"):
        for kind, n in getattr(changes, what).items():
            tables.setdefault(kind, Counter())[what] = n
    return {kind: dict(c) for kind, c in sorted(tables.items())}

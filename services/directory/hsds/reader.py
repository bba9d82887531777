"""Read HSDS 3.0 data in any of its forms into flat records, checking every record.

Accepted: one nested document (organization, service, location, service_at_location, taxonomy
or taxonomy term), an API page (`{"contents": [...]}`), a list of documents, a dataset keyed by
table (`{"services": [...], "organizations.csv": [...]}`, as Wegweiser's export and the
official `tabular.json`), and the tabular package: a folder or zip of CSV files named as the
schemas' `path` (services.csv, ...). Every record is validated against its table's schema; all
problems are collected, each with its path, and a batch with problems must not be applied.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.directory.hsds.records import Batch
from services.directory.hsds.schema import Problem, check, field_types, kind_of_table

EXTENSION_FIELDS = frozenset({"wegweiser"})
"""Columns of a CSV that hold a JSON object (profile extensions)."""
DATASET_META = frozenset({"version", "profile", "openapi_url", "generated_at", "note"})
"""Keys of a dataset document (or of the API's root document) that are not tables."""


def read(path: Path, kind: str | None = None) -> Batch:
    """Read a file or folder; `kind` names the table of a single document or list."""
    if path.is_dir():
        return read_tabular({p.name: p.read_text(encoding="utf-8") for p in path.glob("*.csv")})
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as archive:
            return read_tabular(
                {
                    Path(name).name: archive.read(name).decode("utf-8")
                    for name in archive.namelist()
                    if name.lower().endswith(".csv")
                }
            )
    if path.suffix.lower() == ".csv":
        return read_tabular({path.name: path.read_text(encoding="utf-8")})
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        batch = Batch()
        batch.problems.append(Problem(path.name, f"not JSON: {exc}"))
        return batch
    return read_document(data, kind)


def read_document(data: Any, kind: str | None = None) -> Batch:
    """Flatten decoded JSON in any accepted shape."""
    batch = Batch()
    if isinstance(data, list):
        for index, item in enumerate(data):
            _read_item(batch, kind, item, f"$[{index}]")
    elif isinstance(data, dict) and isinstance(data.get("contents"), list):
        for index, item in enumerate(data["contents"]):
            _read_item(batch, kind, item, f"$.contents[{index}]")
    elif isinstance(data, dict) and kind is None and _is_dataset(data):
        tables = []
        for name, rows in data.items():
            if name in DATASET_META:
                continue
            table = kind_of_table(name)
            if table is None or not isinstance(rows, list):
                batch.problems.append(Problem(f"$.{name}", "is not an HSDS table (a list)"))
                continue
            tables.append(table)
            types = field_types(table)
            for index, row in enumerate(rows):
                where = f"$.{name}[{index}]"
                if name.endswith(".csv") and isinstance(row, dict):
                    row, problems = _typed({k: _as_cell(v) for k, v in row.items()}, types, where)
                    batch.problems.extend(problems)
                _read_item(batch, table, row, where)
        batch.claim_tables(tables)
    else:
        _read_item(batch, kind, data, "$")
    return batch


def read_tabular(files: Mapping[str, str]) -> Batch:
    """Flatten the CSV files of a tabular package (file name -> text)."""
    batch = Batch()
    if not files:
        batch.problems.append(Problem(".", "no CSV files found"))
    tables = []
    for name in sorted(files):
        kind = kind_of_table(name)
        if kind is None:
            batch.problems.append(Problem(name, "is not an HSDS table"))
            continue
        tables.append(kind)
        types = field_types(kind)
        for line, row in enumerate(csv.DictReader(io.StringIO(files[name])), start=2):
            where = f"{name} line {line}"
            record, problems = _typed(row, types, where)
            batch.problems.extend(problems)
            _read_item(batch, kind, record, where)
    batch.claim_tables(tables)
    return batch


def guess_kind(document: Mapping[str, Any]) -> str:
    """The table a lone document most likely belongs to (override with `kind`)."""
    if "status" in document:
        return "service"
    if "location_type" in document:
        return "location"
    if {"service", "service_id", "location_id"} & document.keys() or (
        "location" in document and "name" not in document
    ):
        return "service_at_location"
    if {"taxonomy", "parent_id", "term_uri", "code", "taxonomy_id"} & document.keys():
        return "taxonomy_term"
    if "version" in document and "website" not in document:
        return "taxonomy"
    return "organization"


def _is_dataset(data: dict[str, Any]) -> bool:
    """Keyed by tables, or only the API root document's keys (nothing to import)."""
    return all(key in DATASET_META or kind_of_table(key) is not None for key in data)


def _as_cell(value: Any) -> str | None:
    """A JSON value as the CSV cell it stands for (in `{"services.csv": [...]}` documents)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _read_item(batch: Batch, kind: str | None, item: Any, where: str) -> None:
    if not isinstance(item, dict):
        batch.problems.append(Problem(where, "expected a JSON object"))
        return
    table = kind or guess_kind(item)
    problems = check(table, item, where)
    if problems:
        batch.problems.extend(problems)
    else:
        batch.flatten(table, item, where)


def _typed(
    row: dict[str, str | None], types: dict[str, str], where: str
) -> tuple[dict[str, Any], list[Problem]]:
    """A CSV row with its cells turned into the schema's types; empty cells are left out."""
    record: dict[str, Any] = {}
    problems = []
    for column, cell in row.items():
        if column is None or cell is None or cell == "":
            continue
        if column in EXTENSION_FIELDS:
            try:
                record[column] = json.loads(cell)
            except json.JSONDecodeError as exc:
                problems.append(Problem(f"{where}.{column}", f"not JSON: {exc}"))
            continue
        record[column] = _cell(cell, types.get(column, "string"))
    return record, problems


def _cell(cell: str, json_type: str) -> Any:
    try:
        if json_type == "integer":
            return int(cell)
        if json_type == "number":
            number = float(cell)
            return int(number) if number.is_integer() and "." not in cell else number
        if json_type == "boolean" and cell.lower() in ("true", "false"):
            return cell.lower() == "true"
    except ValueError:
        pass
    return cell

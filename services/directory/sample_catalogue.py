"""Agencies from JSON records, checked field by field, and the sample catalogue shipped as data."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

from services.directory.catalogue import Agency, AgencyKind, Need

SAMPLE_PATH = Path(__file__).with_name("data") / "sample-agencies.json"
FIELDS = tuple(field.name for field in fields(Agency))

ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
COUNTY = re.compile(r"\d{5}")
AGS = re.compile(r"\d{8}")
POSTCODE = re.compile(r"\d{5}")
LANGUAGE = re.compile(r"[a-z]{2}")


def load_sample() -> list[Agency]:
    """The sample catalogue for Ludwigslust-Parchim and Oberallgäu."""
    return agencies_from_json(json.loads(SAMPLE_PATH.read_text(encoding="utf-8")))


def agencies_from_json(data: list[dict[str, Any]]) -> list[Agency]:
    """Agencies from decoded JSON records; ValueError names the record index and field at fault."""
    if not isinstance(data, list):
        raise ValueError("agency data: expected a list of agency records")
    agencies = [_Record(index, record).agency() for index, record in enumerate(data)]
    first_index: dict[str, int] = {}
    for index, agency in enumerate(agencies):
        if agency.id in first_index:
            raise _invalid(index, "id", f"repeats the id of record {first_index[agency.id]}")
        first_index[agency.id] = index
    return agencies


def _invalid(index: int, field: str, problem: str) -> ValueError:
    return ValueError(f"agency record {index}: field '{field}' {problem}")


class _Record:
    """One raw record and the index it had, for error messages."""

    def __init__(self, index: int, raw: object) -> None:
        if not isinstance(raw, dict):
            raise ValueError(f"agency record {index}: expected an object")
        missing = [name for name in FIELDS if name not in raw]
        unknown = sorted(set(raw) - set(FIELDS))
        if missing:
            raise _invalid(index, missing[0], "is missing")
        if unknown:
            raise _invalid(index, unknown[0], "is not an agency field")
        self.index, self.raw = index, raw

    def agency(self) -> Agency:
        county = self.text("county", COUNTY)
        agency = Agency(
            id=self.text("id", ID),
            name=self.text("name"),
            kind=self.choice("kind", AgencyKind),
            needs=frozenset(self.choice_list("needs", Need)),
            languages=self.keys("languages", LANGUAGE),
            county=county,
            municipalities=self.keys("municipalities", AGS, allow_empty=True),
            postcodes=self.keys("postcodes", POSTCODE, allow_empty=True),
            county_wide=self.flag("county_wide"),
            remote=self.flag("remote"),
            min_age=self.optional_count("min_age"),
            max_age=self.optional_count("max_age"),
            capacity=self.count("capacity"),
            waiting_days=self.count("waiting_days"),
            active=self.flag("active"),
            channel=self.text("channel"),
            sample=self.flag("sample"),
            address=self.optional_text("address"),
            confidential_address=self.flag("confidential_address"),
            email=self.optional_text("email"),
        )
        self.check_consistency(agency)
        return agency

    def check_consistency(self, agency: Agency) -> None:
        outside = sorted(key for key in agency.municipalities if not key.startswith(agency.county))
        if outside:
            raise self.invalid("municipalities", f"has {outside[0]} outside county {agency.county}")
        if agency.county_wide and agency.municipalities:
            raise self.invalid("municipalities", "must be empty when county_wide is true")
        if not (agency.county_wide or agency.remote or agency.municipalities or agency.postcodes):
            raise self.invalid("municipalities", "is empty, so the agency serves no area")
        low, high = agency.min_age, agency.max_age
        if low is not None and high is not None and low > high:
            raise self.invalid("max_age", "is below min_age")
        if agency.confidential_address and agency.address is not None:
            raise self.invalid("address", "must be null when confidential_address is true")
        if agency.email is not None and "@" not in agency.email:
            raise self.invalid("email", "is not an e-mail address")

    def invalid(self, field: str, problem: str) -> ValueError:
        return _invalid(self.index, field, problem)

    def optional_text(self, field: str) -> str | None:
        return None if self.raw[field] is None else self.text(field)

    def text(self, field: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self.raw[field]
        if not isinstance(value, str) or not value.strip():
            raise self.invalid(field, "must be a non-empty string")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.invalid(field, f"has malformed value {value!r}")
        return value

    def flag(self, field: str) -> bool:
        value = self.raw[field]
        if not isinstance(value, bool):
            raise self.invalid(field, "must be true or false")
        return value

    def optional_count(self, field: str) -> int | None:
        return None if self.raw[field] is None else self.count(field)

    def count(self, field: str) -> int:
        value = self.raw[field]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.invalid(field, "must be a whole number, 0 or more")
        return value

    def choice(self, field: str, vocabulary: type[Any]) -> Any:
        return self.member(field, vocabulary, self.raw[field])

    def member(self, field: str, vocabulary: type[Any], value: object) -> Any:
        try:
            return vocabulary(value)
        except ValueError:
            raise self.invalid(field, f"has unknown value {value!r}") from None

    def strings(self, field: str, *, allow_empty: bool = False) -> list[str]:
        values = self.raw[field]
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise self.invalid(field, "must be a list of strings")
        if not values and not allow_empty:
            raise self.invalid(field, "must not be empty")
        return values

    def choice_list(self, field: str, vocabulary: type[Any]) -> list[Any]:
        return [self.member(field, vocabulary, value) for value in self.strings(field)]

    def keys(
        self, field: str, pattern: re.Pattern[str], *, allow_empty: bool = False
    ) -> frozenset[str]:
        values = self.strings(field, allow_empty=allow_empty)
        bad = [value for value in values if not pattern.fullmatch(value)]
        if bad:
            raise self.invalid(field, f"has malformed value {bad[0]!r}")
        return frozenset(values)

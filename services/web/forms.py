"""The request-and-consent form: from the browser's fields to intake's `RequestCreate`, with a
message per field the counsellor can act on (message ids of the catalogues)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from schemas.vocabulary import SPECIAL_CATEGORIES
from services.consent.texts import CONSENT_TEXT_VERSION
from services.intake.api_models import RequestCreate
from services.web.i18n import N_

_GENERIC = {
    "missing": N_("This field is required."),
    "too_short": N_("Choose at least one."),
    "string_pattern_mismatch": N_("This is not in the expected format."),
    "enum": N_("Choose one of the offered values."),
    "int_parsing": N_("Enter a whole number."),
    "greater_than_equal": N_("The number is too small."),
    "less_than_equal": N_("The number is too large."),
    "string_too_long": N_("This is too long."),
    "string_too_short": N_("This field is required."),
}


@dataclass
class Parsed:
    """The form's values as entered (to show again), and the outcome."""

    values: dict[str, Any]
    body: dict[str, Any] | None = None
    errors: dict[str, str] = field(default_factory=dict)


def parse(form: FormData, now: datetime | None = None) -> Parsed:
    """Check the form; `body` is intake's request when there are no `errors`."""
    values: dict[str, Any] = {
        "client_reference": _text(form, "client_reference"),
        "client_name": _text(form, "client_name"),
        "needs": form.getlist("needs"),
        "languages": form.getlist("languages") + _codes(_text(form, "other_languages")),
        "other_languages": _text(form, "other_languages"),
        "municipality": _text(form, "municipality"),
        "postcode": _text(form, "postcode"),
        "age": _text(form, "age"),
        "urgency": _text(form, "urgency") or "routine",
        "note": _text(form, "note"),
        "phone": _text(form, "phone"),
        "email": _text(form, "email"),
        "postal_address": _text(form, "postal_address"),
        "preferred_channel": _text(form, "preferred_channel"),
        "reachable": _text(form, "reachable"),
        "interpreter_needed": form.get("interpreter_needed") == "yes",
        "residence_status": _text(form, "residence_status"),
        "legal_basis": _text(form, "legal_basis"),
        "residence_valid_until": _text(form, "residence_valid_until"),
        "deadline_kind": _text(form, "deadline_kind"),
        "deadline_land": _text(form, "deadline_land"),
        "deadline_delivered_on": _text(form, "deadline_delivered_on"),
        "deadline_ends_on": _text(form, "deadline_ends_on"),
        "auto_reoffer": form.get("auto_reoffer") == "yes",
        "recipient_kinds": form.getlist("recipient_kinds"),
        "recipient_agencies": _text(form, "recipient_agencies"),
        "data_categories": form.getlist("data_categories"),
        "explicit_special_categories": form.get("explicit_special_categories") == "yes",
        "purposes": form.getlist("purposes"),
        "method": _text(form, "method"),
        "text_language": _text(form, "text_language") or "de",
        "consent_read": form.get("consent_read") == "yes",
    }
    parsed = Parsed(values)
    if not values["municipality"] and not values["postcode"]:
        parsed.errors["municipality"] = N_("Give the municipality key (AGS) or the postcode.")
    special = {c.value for c in SPECIAL_CATEGORIES} & set(values["data_categories"])
    if special and not values["explicit_special_categories"]:
        parsed.errors["explicit_special_categories"] = N_(
            "Health, origin or religion may only be shared with the person's explicit consent."
        )
    if not values["consent_read"]:
        parsed.errors["consent_read"] = N_("Confirm that the person was shown the consent text.")
    recipients: list[dict[str, str]] = [{"kind": k} for k in values["recipient_kinds"]]
    recipients += [{"agency_id": a} for a in _codes(values["recipient_agencies"])]
    body = {
        "client_reference": values["client_reference"],
        "client_name": values["client_name"] or None,
        "needs": values["needs"],
        "languages": values["languages"],
        "municipality": values["municipality"] or None,
        "postcode": values["postcode"] or None,
        "age": values["age"] or None,
        "urgency": values["urgency"],
        "note": values["note"] or None,
        "contact": _contact(values),
        "residence": _residence(values),
        "legal_deadline": _legal_deadline(values),
        "auto_reoffer": values["auto_reoffer"],
        "consent": {
            "recipients": recipients,
            "purposes": values["purposes"],
            "data_categories": values["data_categories"],
            "explicit_special_categories": values["explicit_special_categories"],
            "method": values["method"],
            "given_at": (now or datetime.now(UTC)).isoformat(),
            "text_version": CONSENT_TEXT_VERSION,
            "text_language": values["text_language"],
        },
    }
    try:
        checked = RequestCreate.model_validate(body)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            name = _field_of(error["loc"])
            if name not in parsed.errors:
                parsed.errors[name] = _GENERIC.get(error["type"], N_("This value is not accepted."))
    if not parsed.errors:
        parsed.body = checked.model_dump(mode="json", exclude_none=True)
    return parsed


def _contact(values: dict[str, Any]) -> dict[str, Any] | None:
    """The contact details as intake takes them; none when the counsellor gave none."""
    given = {
        name: values[name] or None
        for name in ("phone", "email", "postal_address", "preferred_channel", "reachable")
    }
    if not any(given.values()) and not values["interpreter_needed"]:
        return None
    return given | {"interpreter_needed": values["interpreter_needed"]}


def _residence(values: dict[str, Any]) -> dict[str, Any] | None:
    if not (values["residence_status"] or values["legal_basis"] or values["residence_valid_until"]):
        return None
    return {
        "status": values["residence_status"] or None,
        "legal_basis": values["legal_basis"] or None,
        "valid_until": values["residence_valid_until"] or None,
    }


def _legal_deadline(values: dict[str, Any]) -> dict[str, Any] | None:
    """The legal deadline as intake takes it (intake counts it and says what it refuses)."""
    names = ("deadline_kind", "deadline_land", "deadline_delivered_on", "deadline_ends_on")
    if not any(values[name] for name in names):
        return None
    return {
        "kind": values["deadline_kind"] or None,
        "land": values["deadline_land"] or None,
        "delivered_on": values["deadline_delivered_on"] or None,
        "ends_on": values["deadline_ends_on"] or None,
    }


_FORM_FIELDS = {
    ("contact",): "phone",  # the contact's only cross-field rule: how to reach the person
    ("residence", "status"): "residence_status",
    ("residence", "valid_until"): "residence_valid_until",
    ("legal_deadline",): "deadline_kind",
    ("legal_deadline", "kind"): "deadline_kind",
    ("legal_deadline", "land"): "deadline_land",
    ("legal_deadline", "delivered_on"): "deadline_delivered_on",
    ("legal_deadline", "ends_on"): "deadline_ends_on",
}


def _field_of(loc: tuple[int | str, ...]) -> str:
    """The form field an error of the API model belongs to."""
    if loc and loc[0] in ("contact", "residence", "legal_deadline"):
        path = tuple(str(part) for part in loc[:2])
        if (named := _FORM_FIELDS.get(path)) is not None:
            return named
        return path[1] if len(path) > 1 else _FORM_FIELDS[path]
    if loc and loc[0] == "consent":
        rest = [str(p) for p in loc[1:]]
        if rest and rest[0] == "recipients":
            return "recipient_kinds"
        return rest[0] if rest else "explicit_special_categories"  # its only cross-field rule
    if loc and loc[0] == "languages":
        return "other_languages"
    return str(loc[0]) if loc else "municipality"  # the request's only cross-field rule


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _codes(text: str) -> list[str]:
    """Language or agency codes typed as a list: lower case, split at spaces and commas."""
    return [c.lower() for c in re.split(r"[\s,;]+", text) if c]

"""The constraints of the SDOH Clinical Care profiles (SDOHCCTaskForReferralManagement,
SDOHCCServiceRequest, SDOHCCConsent) that can be checked offline, after the guide's FSH at
HL7/fhir-sdoh-clinicalcare 6604b7ac: required elements, fixed values, required bindings to
value sets the guide or FHIR R4 enumerate, reference targets by the referenced type, and the
FHIRPath invariants of the profiles and of their R4 base resources (with `fhirpathpy`).

Not checked offline: bindings to external terminologies (US Core procedure codes are checked
by their code system only) and whether a reference resolves to an instance of a profile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fhirpathpy
from fhirpathpy.models import models

R4 = models["r4"]
TEMP = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
SDC_TEMP = "http://hl7.org/fhir/uv/sdc/CodeSystem/temp"

TASK_STATUS = {
    *("draft", "requested", "received", "accepted", "rejected", "ready", "cancelled"),
    *("in-progress", "on-hold", "failed", "completed", "entered-in-error"),
}
REFERRAL_TASK_STATUS = TASK_STATUS - {"ready", "received"}
"""SDOHCCValueSetReferralTaskStatus: FHIR TaskStatus but `ready` and `received`."""
REQUEST_STATUS = {
    "draft",
    "active",
    "on-hold",
    "revoked",
    "completed",
    "entered-in-error",
    "unknown",
}
REQUEST_INTENT = {
    *("proposal", "plan", "directive", "order", "original-order", "reflex-order"),
    *("filler-order", "instance-order", "option"),
}
CONSENT_STATE = {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"}
SDOH_CATEGORY = {
    *("sdoh-category-unspecified", "food-insecurity", "housing-instability", "homelessness"),
    *("inadequate-housing", "transportation-insecurity", "financial-insecurity"),
    *("material-hardship", "educational-attainment", "employment-status", "veteran-status"),
    *("stress", "social-connection", "intimate-partner-violence", "elder-abuse"),
    *("personal-health-literacy", "health-insurance-coverage-status", "medical-cost-burden"),
    *("digital-literacy", "digital-access", "utility-insecurity", "incarceration-status"),
    *("language-access", "protective-factor"),
}
"""SDOHCCValueSetSDOHCategory."""
PROCEDURE_CODE_SYSTEMS = {
    "http://snomed.info/sct",
    "http://www.ama-assn.org/go/cpt",
    "urn:oid:2.16.840.1.113883.6.285",
    "http://www.cms.gov/Medicare/Coding/ICD10",
    "http://ada.org/cdt",
    "http://loinc.org",
}
"""The code systems of US Core's procedure codes (its codes themselves need a terminology
server)."""

DOMAIN_RESOURCE = {
    "dom-2": "contained.contained.empty()",
    "dom-4": "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()",
    "dom-5": "contained.meta.security.empty()",
}
INVARIANTS: dict[str, dict[str, str]] = {
    "Task": {
        **DOMAIN_RESOURCE,
        "inv-1": "lastModified.exists().not() or authoredOn.exists().not() "
        "or lastModified >= authoredOn",
        "SDOH-Task-1": "code.coding.where(system='http://hl7.org/fhir/uv/sdc/CodeSystem/temp' and "
        "code='complete-questionnaire').exists() implies ((input.type.coding.where("
        "system='http://hl7.org/fhir/uv/sdc/CodeSystem/temp' and code='questionnaire').exists() "
        f"xor input.type.coding.where(system='{TEMP}' and code='questionnaire-pdf').exists() "
        f"xor input.type.coding.where(system='{TEMP}' and code='questionnaire-url').exists()) "
        f"and input.type.coding.where(system='{TEMP}' and code='questionnaire-category')"
        ".exists())",
        "SDOH-Task-2": f"code.coding.where(system='{TEMP}' and code='general-information')"
        ".exists() implies (description.exists() and (output.empty() or output.type.coding"
        f".all(system='{TEMP}' and code='general-information-response').exists()))",
        "SDOH-Task-3": f"code.coding.where(system='{TEMP}' and code='review-material').exists() "
        "implies focus.resolve().all($this is DocumentReference)",
        "SDOH-Task-4": f"code.coding.where(system='{TEMP}' and code='make-contact').exists() "
        f"implies input.type.coding.where(system='{TEMP}' and code='contact-entity').exists()",
        "SDOH-Task-5": f"input.type.coding.where(system='{SDC_TEMP}' and code='questionnaire')"
        f".exists() implies (output.type.coding.where(system='{SDC_TEMP}' and "
        "code='questionnaire-response').exists() or output.empty())",
        "SDOH-Task-6": f"input.type.coding.where(system='{SDC_TEMP}' and code='questionnaire-pdf')"
        f".exists() implies (output.type.coding.where(system='{SDC_TEMP}' and "
        "code='questionnaire-pdf-completed').exists() or output.empty())",
        "SDOH-Task-7": f"code.coding.where(system='{TEMP}' and code='make-contact').exists() "
        "implies (description.exists() and (output.empty() or output.type.coding.all("
        f"system='{TEMP}' and code='chosen-contact').exists()))",
    },
    "ServiceRequest": {
        **DOMAIN_RESOURCE,
        "prr-1": "orderDetail.empty() or code.exists()",
    },
    "Consent": {
        **DOMAIN_RESOURCE,
        "ppc-1": "policy.exists() or policyRule.exists()",
        **{
            f"ppc-{n}": "patient.exists() or scope.coding.where(system='http://terminology.hl7.org"
            f"/CodeSystem/consentscope' and code='{scope}').exists().not()"
            for n, scope in ((2, "patient-privacy"), (3, "research"), (4, "adr"), (5, "treatment"))
        },
    },
}
"""The FHIRPath invariants, as the guide (SDOH-Task-*) and FHIR R4 (the others) state them."""


def _resolve(references: list[Any]) -> list[dict[str, Any]]:
    """Offline `resolve()`: a stub of the referenced type (enough for `is` checks)."""
    return [
        {"resourceType": str(r.get("type") or r.get("reference", "").split("/")[0])}
        for r in references
        if isinstance(r, dict)
    ]


OPTIONS = {"userInvocationTable": {"resolve": {"fn": _resolve, "arity": {0: []}}}}


def _target(reference: dict[str, Any] | None) -> str | None:
    if not reference:
        return None
    return str(reference.get("type") or reference.get("reference", "").split("/")[0] or "")


def _codings(concept: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((concept or {}).get("coding") or [])


def _has(concept: dict[str, Any] | None, system: str, code: str) -> bool:
    return any(c.get("system") == system and c.get("code") == code for c in _codings(concept))


class Report:
    def __init__(self, resource: dict[str, Any]) -> None:
        self.resource = resource
        self.problems: list[str] = []
        self.kind = str(resource.get("resourceType"))

    def required(self, *names: str) -> None:
        for name in names:
            if self.resource.get(name) in (None, [], {}, ""):
                self.problems.append(f"{self.kind}.{name}: required")

    def bound(self, name: str, value: Any, allowed: set[str]) -> None:
        if value is not None and value not in allowed:
            self.problems.append(f"{self.kind}.{name}: {value!r} not in the required value set")

    def refers(self, name: str, reference: Any, targets: set[str]) -> None:
        for one in reference if isinstance(reference, list) else [reference]:
            if one is not None and _target(one) not in targets:
                self.problems.append(f"{self.kind}.{name}: refers to {_target(one)}, not {targets}")

    def invariants(self) -> None:
        for key, expression in INVARIANTS[self.kind].items():
            if fhirpathpy.evaluate(self.resource, expression, model=R4, options=OPTIONS) != [True]:
                self.problems.append(f"{self.kind}: invariant {key} fails")


def _task(r: Report) -> None:
    t = r.resource
    r.required("status", "intent", "code", "focus", "for", "authoredOn", "requester")
    r.bound("status", t.get("status"), REFERRAL_TASK_STATUS)
    if t.get("intent") not in (None, "order"):
        r.problems.append("Task.intent: fixed to 'order'")
    if t.get("code") and not _has(t["code"], "http://hl7.org/fhir/CodeSystem/task-code", "fulfill"):
        r.problems.append("Task.code: fixed to task-code#fulfill")
    if "statusReason" in t and not (t["statusReason"].get("text") or "").strip():
        r.problems.append("Task.statusReason.text: required")
    r.refers("focus", t.get("focus"), {"ServiceRequest"})
    r.refers("for", t.get("for"), {"RelatedPerson", "Group", "Patient"})
    r.refers("requester", t.get("requester"), {"PractitionerRole", "Organization"})
    r.refers("partOf", t.get("partOf"), {"Task"})
    for part in t.get("input") or []:
        if _has(part.get("type"), TEMP, "additional-content") and "valueReference" not in part:
            r.problems.append("Task.input:AdditionalContent: value[x] only Reference")
    for part in t.get("output") or []:
        if _has(part.get("type"), TEMP, "resulting-activity"):
            if "valueReference" in part:
                r.refers("output:PerformedActivityReference", part["valueReference"], {"Procedure"})
            elif "valueCodeableConcept" in part:
                systems = {c.get("system") for c in _codings(part["valueCodeableConcept"])}
                if not systems & PROCEDURE_CODE_SYSTEMS:
                    r.problems.append("Task.output:PerformedActivityCode: not a procedure code")
            else:
                r.problems.append("Task.output:PerformedActivityReference: value required")


def _service_request(r: Report) -> None:
    s = r.resource
    r.required("status", "intent", "code", "subject")
    r.bound("status", s.get("status"), REQUEST_STATUS)
    r.bound("intent", s.get("intent"), REQUEST_INTENT)
    for concept in s.get("category") or []:
        for coding in _codings(concept):
            if coding.get("system") == TEMP:
                r.bound("category:SDOHCC", coding.get("code"), SDOH_CATEGORY)
    systems = {c.get("system") for c in _codings(s.get("code"))}
    if s.get("code") and not systems & PROCEDURE_CODE_SYSTEMS:
        r.problems.append("ServiceRequest.code: not from US Core procedure codes")
    for name in ("specimen", "bodySite"):
        if s.get(name):
            r.problems.append(f"ServiceRequest.{name}: not allowed (max 0)")
    r.refers("subject", s.get("subject"), {"Group", "Patient", "Location"})
    r.refers(
        "requester",
        s.get("requester"),
        {"RelatedPerson", "Device", "PractitionerRole", "Practitioner", "Patient", "Organization"},
    )
    r.refers(
        "performer",
        s.get("performer") or [],
        {
            *("HealthcareService", "Device", "RelatedPerson", "Patient", "Practitioner"),
            *("PractitionerRole", "Organization", "CareTeam"),
        },
    )


def _consent(r: Report) -> None:
    c = r.resource
    r.required("status", "scope", "category", "patient", "dateTime", "organization")
    if not (c.get("sourceAttachment") or c.get("sourceReference")):
        r.problems.append("Consent.source[x]: required")
    r.bound("status", c.get("status"), CONSENT_STATE)
    ids = [x for x in c.get("category") or [] if _has(x, f"{V3}ActCode", "IDSCL")]
    if len(ids) != 1:
        r.problems.append("Consent.category:IDSCL: exactly one required")
    if len(c.get("organization") or []) > 1:
        r.problems.append("Consent.organization: at most one")
    r.refers("patient", c.get("patient"), {"Patient"})
    r.refers("organization", c.get("organization") or [], {"Organization"})


V3 = "http://terminology.hl7.org/CodeSystem/v3-"
CHECKS: dict[str, Callable[[Report], None]] = {
    "Task": _task,
    "ServiceRequest": _service_request,
    "Consent": _consent,
}


def problems(resource: dict[str, Any]) -> list[str]:
    """Every way `resource` (FHIR JSON) breaks its SDOHCC profile's offline constraints."""
    report = Report(resource)
    CHECKS[report.kind](report)
    report.invariants()
    return report.problems

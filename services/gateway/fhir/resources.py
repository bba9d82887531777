"""The FHIR resources the gateway serves to a FHIR agency, built from its view of each offer
(`store.TaskRow`) with `fhir.resources`' R4B models, which check each one's structure."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from schemas.vocabulary import ReferralStatus
from services.gateway.fhir import codes
from services.gateway.fhir.store import TaskRow
from wegweiser.platform.db import as_utc

JOSE = "application/jose"
FHIR_JSON = "application/fhir+json"
GDPR = "https://eur-lex.europa.eu/eli/reg/2016/679/oj"
SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition"
PROFILES = {
    "Task": f"{SDOHCC}/SDOHCC-TaskForReferralManagement",
    "ServiceRequest": f"{SDOHCC}/SDOHCC-ServiceRequest",
    "Consent": f"{SDOHCC}/SDOHCC-Consent",
}
"""The SDOHCC profiles the resources follow (see the README for the one deviation)."""


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {
        "coding": [{"system": system, "code": code, **({"display": display} if display else {})}]
    }


def _org(system: str, value: str) -> dict[str, Any]:
    return {"type": "Organization", "identifier": {"system": system, "value": value}}


def _person(row: TaskRow) -> dict[str, Any]:
    return {"type": "Patient", "identifier": {"system": codes.PERSON_ID, "value": row.request_id}}


def _meta(row: TaskRow) -> dict[str, Any]:
    return {"versionId": str(row.version), "lastUpdated": as_utc(row.updated_at)}


def task(row: TaskRow) -> Task:
    """The referral as an SDOHCC referral-management Task owned by the agency."""
    body: dict[str, Any] = {
        "resourceType": "Task",
        "id": row.referral_id,
        "meta": _meta(row),
        "status": codes.TASK_STATUS[ReferralStatus(row.status)],
        "intent": "order",
        "code": _coding(codes.TASK_CODE, "fulfill", "Fulfill the focal request"),
        "focus": {"reference": f"ServiceRequest/{row.referral_id}"},
        "for": _person(row),
        "authoredOn": as_utc(row.authored_on),
        "lastModified": as_utc(row.updated_at),
        "requester": _org(codes.OFFICE_ID, row.office_id),
        "owner": _org(codes.AGENCY_ID, row.agency_id),
    }
    if row.reason is not None:
        body["statusReason"] = {**_coding(codes.REASON, row.reason), "text": row.reason}
    if row.sealed_case is not None:
        body["input"] = [
            {
                "type": _coding(codes.SDOHCC_CODES, "additional-content", "Additional Content"),
                "valueReference": {
                    "reference": f"Binary/{row.referral_id}",
                    "type": "Binary",
                    "display": "the case, sealed to the agency (JWE)",
                },
            }
        ]
    if row.outcome is not None:
        body["output"] = [
            {
                "type": _coding(codes.OUTPUT_TYPE, "outcome"),
                "valueCodeableConcept": _coding(codes.OUTCOME, row.outcome),
            }
        ]
    return Task.model_validate(body)


SERVICE_REQUEST_STATUS = {
    ReferralStatus.CANCELLED: "revoked",
    ReferralStatus.COMPLETED: "completed",
}
"""The office's order is active until the office withdraws it or it is done."""


def service_request(row: TaskRow) -> ServiceRequest:
    """The office's order behind the Task: what was asked stays in the sealed case (even a
    need can reveal a special category), so its code says only "referral"."""
    return ServiceRequest.model_validate(
        {
            "resourceType": "ServiceRequest",
            "id": row.referral_id,
            "meta": _meta(row),
            "status": SERVICE_REQUEST_STATUS.get(ReferralStatus(row.status), "active"),
            "intent": "order",
            "code": _coding(codes.SNOMED, "3457005", "Patient referral"),
            "subject": _person(row),
            "authoredOn": as_utc(row.authored_on),
            "requester": _org(codes.OFFICE_ID, row.office_id),
            "performer": [_org(codes.AGENCY_ID, row.agency_id)],
            "supportingInfo": [{"reference": f"Consent/{row.consent_id}"}],
        }
    )


def consent(row: TaskRow) -> Consent:
    """The person's consent the referral was sent under, as far as the agency may know it: its
    id, whether it still holds, and that it permits this agency to receive the case. The
    record itself (its text, method and time) stays with the office; `dateTime` is when the
    referral under it was offered."""
    return Consent.model_validate(
        {
            "resourceType": "Consent",
            "id": row.consent_id,
            "meta": _meta(row),
            "status": "active" if row.consent_active else "inactive",
            "scope": _coding(
                "http://terminology.hl7.org/CodeSystem/consentscope",
                "patient-privacy",
                "Privacy Consent",
            ),
            "category": [
                _coding(
                    "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "IDSCL",
                    "information disclosure",
                )
            ],
            "patient": _person(row),
            "dateTime": as_utc(row.authored_on),
            "organization": [_org(codes.OFFICE_ID, row.office_id)],
            "sourceAttachment": {"title": f"consent record {row.consent_id}, kept by the office"},
            "policy": [{"uri": GDPR}],
            "provision": {
                "type": "permit",
                "actor": [
                    {
                        "role": _coding(
                            "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "IRCP",
                            "information recipient",
                        ),
                        "reference": _org(codes.AGENCY_ID, row.agency_id),
                    }
                ],
            },
        }
    )


def binary(row: TaskRow, sealed: str) -> Binary:
    """The sealed case as the office made it for the agency: a JWE compact serialization."""
    return Binary.model_validate(
        {
            "resourceType": "Binary",
            "id": row.referral_id,
            "meta": _meta(row),
            "contentType": JOSE,
            "securityContext": {"reference": f"Task/{row.referral_id}"},
            "data": base64.b64encode(sealed.encode()).decode(),
        }
    )


def outcome(issue_type: str, code: str, message: str, expression: str | None = None) -> Any:
    """An OperationOutcome with one error: its FHIR issue type, Wegweiser's stable code."""
    issue: dict[str, Any] = {
        "severity": "error",
        "code": issue_type,
        "details": {**_coding(codes.ERROR, code), "text": message},
        "diagnostics": message,
    }
    if expression:
        issue["expression"] = [expression]
    return OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": [issue]})


def searchset(base: str, found: Sequence[Resource]) -> Bundle:
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "entry": [
                {
                    "fullUrl": f"{base}/{r.get_resource_type()}/{r.id}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in found
            ],
        }
    )


def capability_statement(now: datetime, search_params: Sequence[tuple[str, str]]) -> Any:
    """What this agency's FHIR endpoint does, and nothing more."""

    def read(kind: str, *more: str) -> dict[str, Any]:
        found: dict[str, Any] = {
            "type": kind,
            "interaction": [{"code": c} for c in ("read", *more)],
        }
        if kind in PROFILES:
            found["supportedProfile"] = [PROFILES[kind]]
        return found

    task_resource = read("Task", "search-type", "update")
    task_resource["updateCreate"] = False
    task_resource["searchParam"] = [{"name": n, "type": t} for n, t in search_params]
    return CapabilityStatement.model_validate(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": now,
            "kind": "instance",
            "implementation": {"description": "Wegweiser partner gateway, one agency's view"},
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "rest": [
                {
                    "mode": "server",
                    "security": {
                        "description": "Authorization: Bearer <the agency's FHIR access token>"
                    },
                    "resource": [
                        task_resource,
                        read("ServiceRequest"),
                        read("Consent"),
                        read("Binary"),
                        read("Subscription", "create", "delete"),
                    ],
                }
            ],
        }
    )


def to_json(resource: Resource) -> str:
    return resource.model_dump_json(exclude_none=True)

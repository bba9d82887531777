"""The codes and mappings of the FHIR adapter: Wegweiser's lifecycle as FHIR Task states (as
DOMAIN.md maps them), and the systems Wegweiser's own codes are published under."""

from __future__ import annotations

from schemas.vocabulary import AgencyAction, ReferralStatus

BASE = "https://wegweiser.example/fhir"
REASON = f"{BASE}/CodeSystem/reason"
"""schemas.vocabulary.ReasonCode: Task.statusReason."""
OUTCOME = f"{BASE}/CodeSystem/outcome"
"""schemas.vocabulary.Outcome: the value of Task.output on completion."""
OUTPUT_TYPE = f"{BASE}/CodeSystem/task-output"
"""What a Task.output says: `outcome` (a code of OUTCOME, on completion) or
`deletion-confirmed` (valueBoolean true: the agency deleted the case after a withdrawal)."""
DELETION_CONFIRMED = "deletion-confirmed"
DATA_CATEGORY = f"{BASE}/CodeSystem/data-category"
ERROR = f"{BASE}/CodeSystem/error"
"""Wegweiser's stable error codes (`referral.forbidden-transition`, …) in OperationOutcome."""
AGENCY_ID = f"{BASE}/NamingSystem/agency"
OFFICE_ID = f"{BASE}/NamingSystem/office"
PERSON_ID = f"{BASE}/NamingSystem/request"
"""The person only as the pseudonymous id of their request: nothing personal travels in clear."""
TOPIC = f"{BASE}/SubscriptionTopic/referral-task"
"""The one topic an agency can subscribe to: any change to one of its Tasks."""

SDOHCC_CODES = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
SNOMED = "http://snomed.info/sct"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"

S = ReferralStatus
TASK_STATUS: dict[ReferralStatus, str] = {s: s.value for s in S if s is not S.FORWARDED} | {
    S.FORWARDED: "completed"
}
"""Wegweiser's state -> Task.status: one to one, but `forwarded`, which FHIR lacks (the new
referral is another agency's Task, `partOf` this one)."""

ANSWER_FOR: dict[str, AgencyAction] = {
    "received": AgencyAction.ACKNOWLEDGE,
    "accepted": AgencyAction.ACCEPT,
    "rejected": AgencyAction.REJECT,
    "in-progress": AgencyAction.START,
    "on-hold": AgencyAction.HOLD,
    "completed": AgencyAction.COMPLETE,
    "failed": AgencyAction.FAIL,
}
"""The Task.status an agency may set -> its answer (`in-progress` after `on-hold` resumes)."""


def answer_for(task_status: str, current: ReferralStatus) -> AgencyAction | None:
    """The answer an agency gives by setting `task_status` on a Task that is `current`; None
    for a status no agency sets (draft, requested, cancelled, ready, entered-in-error)."""
    if task_status == "in-progress" and current is S.ON_HOLD:
        return AgencyAction.RESUME
    return ANSWER_FOR.get(task_status)

"""The FHIR adapter: for an agency whose software speaks HL7 FHIR R4, the gateway is a FHIR
server scoped to that agency, `/fhir/<agency>/…`, after the HL7 SDOH Clinical Care guide
(Gravity Project) for closed-loop referrals.

- Each offer is a `Task` (SDOHCCTaskForReferralManagement) whose `focus` is a
  `ServiceRequest` (SDOHCCServiceRequest) supported by a `Consent` (SDOHCCConsent); the
  sealed case is a `Binary` of type `application/jose` (the JWE the office sealed to the
  agency), referenced from `Task.input`. The gateway never opens it.
- The Task's status is the referral's, one to one (DOMAIN.md); `forwarded`, which FHIR lacks,
  shows as `completed`. The agency answers by updating `Task.status` (with `statusReason`,
  and `output` on completion): each allowed change is one `AgencyAnswer`, staged through the
  outbox exactly as a webhook callback's; a change the lifecycle forbids is refused with an
  OperationOutcome that carries the lifecycle's code.
- Status changes reach the agency by polling (search by `status` and `_lastUpdated`) or by an
  R4 backport Subscription (rest-hook, id-only payloads, signed like webhooks).

Resources are built and parsed with `fhir.resources`' R4B models: version 8 ships R5, R4B and
STU3 but no R4, and the resources used here are the same in R4 and R4B on the wire.
"""

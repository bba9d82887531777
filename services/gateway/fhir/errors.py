"""Why a FHIR request is refused: an HTTP status, the FHIR issue type and Wegweiser's stable
code, answered as an OperationOutcome (services.gateway.fhir.resources.outcome)."""

from __future__ import annotations


class FhirRefused(Exception):
    """A request the FHIR endpoint refuses, having changed nothing."""

    def __init__(
        self,
        status: int,
        issue_type: str,
        code: str,
        message: str,
        expression: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.issue_type, self.code, self.expression = (
            status,
            issue_type,
            code,
            expression,
        )


def not_found(kind: str, resource_id: str) -> FhirRefused:
    """Unknown, or another agency's: the two are not told apart."""
    return FhirRefused(404, "not-found", "fhir.not-found", f"no {kind}/{resource_id} here")


def invalid(code: str, message: str, expression: str | None = None) -> FhirRefused:
    return FhirRefused(422, "invalid", code, message, expression)

"""Composition root of the audit service: records every message, signs and announces heads."""

from __future__ import annotations

from schemas import subjects
from services.audit.access import ombudsperson_token
from services.audit.application import audit_log
from services.audit.http import create_app
from wegweiser import registry
from wegweiser.platform.runtime import ServiceRuntime
from wegweiser.settings import Settings


def build(settings: Settings) -> ServiceRuntime:
    """Wire the audit service: its own durable consumer on the whole stream."""
    runtime = ServiceRuntime(registry.service("audit"), settings)
    audit = audit_log(settings, runtime.db)
    runtime.consume_raw("audit-all", audit.record, audit.committed)

    runtime.answer_plainly(subjects.AUDIT_TREE_HEAD, audit.head_document)

    app = create_app(audit, ombudsperson_token(settings))
    runtime.serve_http(app, settings.audit_host, settings.audit_port)
    runtime.before_start(audit.load)
    runtime.every(settings.audit_head_every, audit.sign_if_grown)
    return runtime

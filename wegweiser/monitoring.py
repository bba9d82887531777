"""The county's monitoring report as `wegweiser report` makes it, reading two services' stores
as the administrator may: the figures from the audit log, the languages the directory's
agencies offer set beside those asked for, and, under differential privacy, the budget each
release spends kept in a ledger.

(The audit service's own report page makes it from the log alone: `services/audit/http.py`.)
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from services.audit import store as audit_store
from services.directory import store as directory_store
from services.report.figures import Period
from services.report.report import Report, make
from wegweiser.platform.db import Database


@dataclass(frozen=True)
class MonitoringReport:
    """The report's use cases over the audit's and the directory's stores."""

    audit: Database
    directory: Database
    ledger: Path
    """Where each differentially private release records what it spent (JSON lines)."""

    def languages_offered(self) -> dict[str, int]:
        """How many active agencies of the directory speak each language (public data)."""
        agencies = self.directory.read_sync(directory_store.all_agencies)
        spoken = Counter(
            language for a in agencies if a.status == "active" for language in a.languages
        )
        return dict(sorted(spoken.items()))

    def make(self, period: Period, county: str | None, k: int, epsilon: float | None) -> Report:
        """The report for `period` (and the one before), the log streamed from the store
        rather than held whole; with `epsilon`, released with differential privacy and the
        budget it spent recorded in the ledger."""
        offered = self.languages_offered()
        made = self.audit.read_sync(
            lambda s: make(audit_store.stream_entries(s), period, county, k, epsilon, offered)
        )
        if made.spent is not None:
            self.ledger.parent.mkdir(parents=True, exist_ok=True)
            entry = {"made_at": made.made_at.isoformat(), "period": str(period), "county": county}
            with self.ledger.open("a") as f:
                f.write(json.dumps({**entry, **made.protection()}, ensure_ascii=False) + "\n")
        return made

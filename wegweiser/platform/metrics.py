"""What every service process counts for the operator's monitoring (Prometheus): events
handled, failed and dead-lettered per consumer, how long a batch takes, the outbox's backlog
and the age of its oldest row, each consumer's pending and redelivered messages, the stream's
use of its byte limit, HTTP requests and their latency; the referral service adds referrals
by state and overdue acknowledgements and deletions.

The processes of one machine share a folder (`PROMETHEUS_MULTIPROC_DIR`, prometheus-client's
multiprocess mode): each writes its values there, and `collector` sums them for one scrape.
`wegweiser up` makes the folder, hands it to every service and serves the sum on
`metrics_host:metrics_port` (loopback by default: the figures are for the operator); on a host
whose services systemd runs, `wegweiser metrics` serves the sum of the folder their units name
(infra/systemd/).
Without the folder (a service run alone, the tests in one process) the values are kept in
the process, as plain prometheus-client does.

The metrics are made on first use, not at import: the zygote imports this module before it
forks the services, and only a forked service knows the folder it is to write in.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

FOLDER = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True)
class Metrics:
    handled: Counter
    failed: Counter
    dead_letters: Counter
    batch_seconds: Histogram
    published: Counter
    outbox_backlog: Gauge
    outbox_oldest_seconds: Gauge
    consumer_pending: Gauge
    consumer_redelivered: Gauge
    stream_bytes: Gauge
    stream_max_bytes: Gauge
    http_seconds: Histogram
    referrals: Gauge
    overdue: Gauge


@cache
def metrics() -> Metrics:
    """The process's metrics, made once, in the folder its environment names (if any)."""
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]  # now's env
    per_consumer = ["service", "consumer"]
    return Metrics(
        handled=Counter(
            "wegweiser_events_handled", "Events handled (committed or seen before)", per_consumer
        ),
        failed=Counter(
            "wegweiser_events_failed", "Attempts to handle an event that raised", per_consumer
        ),
        dead_letters=Counter(
            "wegweiser_dead_letters", "Events parked as dead letters", per_consumer
        ),
        batch_seconds=Histogram(
            "wegweiser_batch_seconds",
            "Time to handle one batch of a consumer, commit and acks included",
            per_consumer,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        ),
        published=Counter(
            "wegweiser_outbox_published", "Events the outbox relay published", ["service"]
        ),
        outbox_backlog=Gauge(
            "wegweiser_outbox_backlog",
            "Events staged and not yet published",
            ["service"],
            multiprocess_mode="livemax",  # the instances of a service share one outbox
        ),
        outbox_oldest_seconds=Gauge(
            "wegweiser_outbox_oldest_seconds",
            "Age of the oldest event staged and not yet published (0: none)",
            ["service"],
            multiprocess_mode="livemax",
        ),
        consumer_pending=Gauge(
            "wegweiser_consumer_pending",
            "Messages of a durable consumer not yet delivered",
            per_consumer,
            multiprocess_mode="livemax",
        ),
        consumer_redelivered=Gauge(
            "wegweiser_consumer_redelivered",
            "Messages of a durable consumer delivered more than once and not yet acked",
            per_consumer,
            multiprocess_mode="livemax",
        ),
        stream_bytes=Gauge(
            "wegweiser_stream_bytes", "Bytes the stream holds", multiprocess_mode="livemax"
        ),
        stream_max_bytes=Gauge(
            "wegweiser_stream_max_bytes", "The stream's byte limit", multiprocess_mode="livemax"
        ),
        http_seconds=Histogram(
            "wegweiser_http_request_seconds",
            "HTTP request latency by route",
            ["service", "method", "route", "status"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        ),
        referrals=Gauge(
            "wegweiser_referrals",
            "Referrals by state",
            ["state"],
            multiprocess_mode="livemax",
        ),
        overdue=Gauge(
            "wegweiser_overdue",
            "Acknowledgements (escalated, unanswered) and deletions (escalated) overdue",
            ["what"],
            multiprocess_mode="livemax",
        ),
    )


def prepare(folder: Path) -> Path:
    """An empty folder for the processes of one system to write their values in."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, mode=0o700)
    return folder


def collector(folder: Path) -> CollectorRegistry:
    """A registry that sums the values every process wrote in `folder`."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))  # type: ignore[no-untyped-call]
    return registry


def serve(folder: Path, host: str, port: int) -> Any:
    """Serve the sum of `folder` on http://host:port/metrics (a thread); the server."""
    from prometheus_client import start_http_server

    server, _ = start_http_server(port, host, collector(folder))
    return server


def folder_of_this_process() -> Path | None:
    """The folder this process writes its values in, if it was given one."""
    found = os.environ.get(FOLDER)
    return Path(found) if found else None


def process_ended(folder: Path, pid: int) -> None:
    """Drop a dead process's live gauges (counters and histograms keep what it counted)."""
    mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]

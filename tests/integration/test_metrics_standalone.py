"""A service that systemd runs on its own writes its metrics into the host's folder, and
`wegweiser metrics` serves their sum, as `up` does for its services: what it counted stays,
its live gauges end with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.waiting import blocking_until
from wegweiser.platform.nats_server import free_port


def scrape(url: str) -> dict[str, float]:
    text = httpx.get(url, timeout=5).text
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("wegweiser_")
    }


def test_a_service_run_alone_is_scraped_through_the_host_s_metrics_command(
    nats_server, tmp_path: Path
):
    folder = tmp_path / "run-wegweiser-metrics"
    folder.mkdir(mode=0o700)
    (tmp_path / "data").mkdir(mode=0o700)  # as the installation made it
    directory_port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "WEGWEISER_NATS_URL": nats_server.url,
        "WEGWEISER_DATA_DIR": str(tmp_path / "data"),
        "WEGWEISER_DIRECTORY_PORT": str(directory_port),
        "WEGWEISER_METRICS_PORT": str(metrics_port),
        "WEGWEISER_METRICS_EVERY": "0.5",
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    run = [sys.executable, "-m", "wegweiser"]
    logs = tmp_path / "logs"
    logs.mkdir()
    service = subprocess.Popen(
        [*run, "service", "directory"],
        env=env,
        stdout=(logs / "d.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    served = subprocess.Popen(
        [*run, "metrics"], env=env, stdout=(logs / "m.log").open("wb"), stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    backlog = 'wegweiser_outbox_backlog{service="directory"}'
    try:

        def answered() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{directory_port}/services").status_code == 200
            except httpx.HTTPError:
                return False

        blocking_until(answered, 60.0, "the directory answered")

        def counted() -> dict[str, float] | None:
            try:
                found = scrape(url)
            except httpx.HTTPError:
                return None
            routes = [k for k in found if k.startswith("wegweiser_http_request_seconds_count")]
            served_services = any(
                'route="/services"' in k and 'service="directory"' in k for k in routes
            )
            return found if served_services and backlog in found else None

        found = blocking_until(counted, 60.0, "the metrics counted its request")
        said = (logs / "m.log").read_text()
        assert f"http://127.0.0.1:{metrics_port}/metrics" in said  # the operator's loopback only
        assert found[backlog] == 0
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=30) == 0, (logs / "d.log").read_text()[-2000:]
        after = scrape(url)
        assert backlog not in after, "a stopped service's live gauge is still served"
        assert any(
            k.startswith("wegweiser_http_request_seconds_count") and 'service="directory"' in k
            for k in after
        ), "what it counted went with it"
    finally:
        for process in (service, served):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        assert served.wait(timeout=15) == 0, (logs / "m.log").read_text()[-2000:]
        service.wait(timeout=15)


def test_the_metrics_command_without_a_folder_says_so(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run(
        [sys.executable, "-m", "wegweiser", "metrics", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "PROMETHEUS_MULTIPROC_DIR" in done.stderr and "Traceback" not in done.stderr

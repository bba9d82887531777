"""One service in this process: `python -m wegweiser.serve NAME`, what `up` starts for each
(and `wegweiser service NAME`, for systemd). It imports the settings, the logging and the
service's own bootstrap, and nothing of the command line."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from pathlib import Path

from wegweiser import registry
from wegweiser.logging import configure_logging
from wegweiser.platform import metrics
from wegweiser.platform.files import private_umask
from wegweiser.settings import Settings


def serve(name: str) -> None:
    """Build the service called `name` from the environment's settings and run it until
    SIGINT or SIGTERM; KeyError for an unknown name."""
    service = registry.service(name)
    private_umask()
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json, name)
    if trace := os.environ.get("WEGWEISER_TRACE_KEY_READS"):
        from wegweiser.platform.keys import trace_reads

        trace_reads(settings.keys_path, Path(trace), name)
    runtime = importlib.import_module(service.bootstrap).build(settings)
    try:
        asyncio.run(runtime.serve())
    finally:
        if (folder := metrics.folder_of_this_process()) is not None:
            metrics.process_ended(folder, os.getpid())  # its live gauges end with it


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in registry.NAMES:
        sys.exit(f"usage: python -m wegweiser.serve {{{','.join(registry.NAMES)}}}")
    serve(sys.argv[1])

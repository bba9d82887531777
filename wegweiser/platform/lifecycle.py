"""How a service process tells the supervisor it serves, and hears that it should stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path


def ready_mark(data_dir: Path, name: str, instance: int = 1) -> Path:
    """The file a serving process writes its pid to (`<data_dir>/ready/<name>`, with
    `-<instance>` from the second instance of a service on)."""
    return data_dir / "ready" / (name if instance == 1 else f"{name}-{instance}")


def mark_ready(data_dir: Path, name: str, instance: int = 1) -> Callable[[], None]:
    """Tell a supervisor this process serves now (its ready mark holds the pid); returns what
    withdraws the mark."""
    mark = ready_mark(data_dir, name, instance)
    mark.parent.mkdir(parents=True, exist_ok=True)
    mark.write_text(str(os.getpid()))
    return lambda: mark.unlink(missing_ok=True)


def reusable_socket(host: str, port: int) -> socket.socket:
    """A listening socket that further instances of the service can bind as well
    (SO_REUSEPORT): the kernel spreads the connections over them."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # no Nagle: uvicorn writes headers and body apart, and the body would wait for the
    # client's delayed ACK (40 ms on every request that follows another on a connection)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop

"""The listening socket every service's HTTP server shares with its other instances."""

from __future__ import annotations

import socket

from wegweiser.platform.lifecycle import reusable_socket
from wegweiser.platform.nats_server import free_port


def test_a_connection_the_service_accepts_sends_without_waiting_for_acks():
    """TCP_NODELAY on every accepted connection: without it, a response written in two parts
    (headers, body) waits for the client's delayed ACK, and a request that follows another on
    a kept-alive connection took 40 ms more (the two HTTP calls of bench/pipeline.py at 2/s:
    p50 77 ms before, 32 ms after, 2026-12-05)."""
    port = free_port()
    server = reusable_socket("127.0.0.1", port)
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    try:
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert server.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
    finally:
        for s in (accepted, client, server):
            s.close()

"""An agency's HTTPS endpoint for webhook tests: a real TLS server with a local CA (trustme)."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme


@dataclass
class Endpoint:
    """An agency's HTTPS endpoint that fails its first `failures` requests (None: always)."""

    url: str
    ca: trustme.CA
    failures: int | None = 0
    requests: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def taken(self) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for h, b, status in self.requests if status == 200]


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    box: dict[str, Endpoint] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            me = box["endpoint"]
            with me.lock:
                failing = me.failures is None or me.failures > 0
                if me.failures:
                    me.failures -= 1
                status = 503 if failing else 200
                me.requests.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    box["endpoint"] = Endpoint(f"https://127.0.0.1:{server.server_port}/wegweiser", ca)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box["endpoint"]
    server.shutdown()

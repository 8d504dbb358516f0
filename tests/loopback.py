"""A real HTTP server on 127.0.0.1 for tests and benchmarks.

Routes are plain data (status, headers, body, delay); the server records
every request path, so tests can assert what was (not) fetched.
"""
from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # wait this long before answering
    declare_length: bool = True  # False: no Content-Length, the body ends when we close
    trickle_s: float = 0.0  # pause between body bytes: a server that never quite finishes
    etag: str | None = None  # answer 304 to a request that already has this version
    flaky: int = 0  # answer the first `flaky` requests with `flaky_status` and `flaky_headers`
    flaky_status: int = 503
    flaky_headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False  # drop the connection (TCP RST) instead of answering
    repeat: int = 1  # send the body this many times (a huge response without holding it)
    trickle_headers_s: float = 0.0  # pause between bytes of endless headers


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops connections when 16 fetch
    # threads connect at once; each dropped SYN then costs a 1 s retransmit.
    request_queue_size = 128

    def handle_error(self, request, client_address):
        """A client hanging up (timeouts under test) is expected, not an error."""
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class LoopbackSite:
    """Serves `routes` on an ephemeral port; use as a context manager."""

    def __init__(self, host: str = "127.0.0.1"):
        """`host`: any 127.x.y.z address (all are this machine on Linux), so a
        benchmark can stand for many sites, each with its own per-host limits."""
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.user_agents: set[str] = set()
        self.conditional: Counter[str] = Counter()  # requests that carried If-None-Match
        self.bytes_sent = 0
        self.started: list[tuple[str, float]] = []  # (path, time.monotonic()) of each request
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (http.server's naming)
                with site._lock:
                    site.hits[self.path] += 1
                    site.user_agents.add(self.headers.get("User-Agent", ""))
                    site.started.append((self.path, time.monotonic()))
                    site.in_flight += 1
                    site.max_in_flight = max(site.max_in_flight, site.in_flight)
                try:
                    self._answer()
                finally:
                    with site._lock:
                        site.in_flight -= 1

            def _answer(self):
                route = site.routes.get(self.path)
                if route is None:
                    route = Route(b"not found", 404, "text/plain")
                if route.delay_s:
                    time.sleep(route.delay_s)
                if route.trickle_headers_s:
                    self._trickle_headers(route.trickle_headers_s)
                    return
                if route.reset:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                if site.hits[self.path] <= route.flaky:
                    route = Route(b"try again", route.flaky_status, "text/plain", route.flaky_headers)
                if self.headers.get("If-None-Match"):
                    with site._lock:
                        site.conditional[self.path] += 1
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    self.send_response(304)
                    self.send_header("ETag", route.etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with site._lock:
                    site.bytes_sent += len(route.body) * route.repeat
                try:
                    self.send_response(route.status)
                    self.send_header("Content-Type", route.content_type)
                    if route.declare_length:
                        self.send_header("Content-Length", str(len(route.body) * route.repeat))
                    else:
                        self.send_header("Connection", "close")
                        self.close_connection = True
                    if route.etag:
                        self.send_header("ETag", route.etag)
                    for name, value in route.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if route.trickle_s:
                        for byte in route.body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(route.trickle_s)
                    else:
                        for _ in range(route.repeat):
                            self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to do

            def log_message(self, *args):
                pass

            def _trickle_headers(self, pause_s: float):
                """A status line, then header bytes one by one for a minute."""
                self.close_connection = True
                try:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    for byte in (b"X-Slow: " + b"z" * 50 + b"\r\n") * 100:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(pause_s)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should

        self.server = _QuietServer((host, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str = b"", **route) -> str:
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.routes[path] = Route(body, **route)
        return self.url(path)

    def __enter__(self) -> LoopbackSite:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def rss(items: list[dict], title: str = "Test feed") -> str:
    """An RSS 2.0 document; each item dict has link and optionally title/pubDate."""
    entries = "".join(
        "<item>"
        + (f"<title>{item['title']}</title>" if item.get("title") else "")
        + (f"<link>{item['link']}</link>" if item.get("link") else "")
        + (f"<pubDate>{item['pubDate']}</pubDate>" if item.get("pubDate") else "")
        + "</item>"
        for item in items)
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>{title}</title><link>http://example.org/</link>"
            f"<description>test</description>{entries}</channel></rss>")

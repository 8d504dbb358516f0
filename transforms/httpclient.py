"""The HTTP client: one URL at a time over http(s), or from a local file (no Beam).

`Fetcher` is the one place that talks to the network, for feeds, pages and
robots.txt alike. It refuses non-public addresses on every redirect hop
(netguard.py), keeps each host's politeness limits (politeness.py), bounds
time and size while streaming, and turns every failure into a `FetchError`.
"""
from __future__ import annotations

import contextlib
import mimetypes
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import requests
import urllib3

from schemas.settings import FetchSettings

from .failures import FetchError, is_temporary, retry_after_seconds
from .netguard import check_public_address, guarded_pools, request_deadline
from .politeness import HostGate
from .urls import url_problem

_CHUNK = 64 * 1024
# Content codings we ask for; urllib3 decodes them, with its output bounded per read.
_ENCODINGS = ("gzip", "deflate")
_DECODED = frozenset({*_ENCODINGS, "x-gzip", "identity", ""})


@dataclass(frozen=True)
class Response:
    url: str  # after redirects
    status: int  # 304: not modified since the validators sent (body empty)
    content_type: str
    body: bytes
    fetched_at: datetime
    etag: str | None = None
    last_modified: str | None = None
    # What was said on the wire, for the raw archive (transforms/warc.py):
    # the final answer's status line and headers, and the request's headers.
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    request_headers: tuple[tuple[str, str], ...] = ()


def _connection_failure(exc: BaseException, url: str) -> str:
    """What went wrong with a connection, in words (`cannot connect to
    a.example:443: Connection refused`), from the system error beneath the
    HTTP client's wrappers; the wrapper's own text when there is none."""
    cause, seen = exc, 0
    while cause is not None and seen < 20:
        if isinstance(cause, OSError) and cause.strerror:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            return f"cannot connect to {parts.hostname}:{port}: {cause.strerror}"
        cause, seen = cause.__cause__ or cause.__context__ or getattr(cause, "reason", None), seen + 1
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _refusal(exc: BaseException) -> FetchError | None:
    """The address refusal behind an HTTP client error, if that is what it was."""
    while exc is not None:
        if isinstance(exc, FetchError):
            return exc
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "reason", None)
    return None


def link_error(url: str, allow_file: bool) -> FetchError | None:
    """Why `url` may not be followed (transforms/urls.py), as a FetchError, or None."""
    problem = url_problem(url, allow_file)
    return FetchError(*problem) if problem else None


def local_path(url: str) -> Path:
    """The file a file: URL names: file:///p, file:/p and file://localhost/p
    alike. Another machine's file raises: its path read here would be some
    other file."""
    parts = urlsplit(url)
    if parts.netloc.lower() not in ("", "localhost"):
        raise FetchError("invalid-url", f"{url[:200]} names a file on {parts.netloc[:100]}, "
                                        "not on this machine")
    return Path(url2pathname(parts.path))


# Response headers kept for the archive, in bytes: real servers send a few
# kB; a hostile one up to 100 lines of 64 kB each (what http.client allows).
_KEPT_HEADER_BYTES = 32 * 1024


def kept_headers(headers) -> tuple[tuple[str, str], ...]:
    """The response's headers as sent, up to `_KEPT_HEADER_BYTES`; the rest
    are counted in `X-Archive-Headers-Dropped`."""
    kept, size, dropped = [], 0, 0
    for name, value in headers:
        line = len(name) + len(value) + 4
        if size + line > _KEPT_HEADER_BYTES:
            dropped += 1
        else:
            kept.append((name, value))
            size += line
    return (*kept, ("X-Archive-Headers-Dropped", str(dropped))) if dropped else tuple(kept)


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


class Fetcher:
    """Downloads one URL at a time; safe to share between threads."""

    def __init__(self, settings: FetchSettings):
        self.settings = settings
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=settings.concurrency, pool_maxsize=settings.concurrency)
        adapter.poolmanager.pool_classes_by_scheme = guarded_pools(pinned=not settings.allow_private_network)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({
            "User-Agent": settings.user_agent,
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "Accept-Encoding": ", ".join(_ENCODINGS),
        })
        self.gate = HostGate(settings.per_host_concurrency, settings.host_delay_s,
                             settings.host_failures_to_pause)
        self._spent = threading.local()

    def close(self) -> None:
        self.session.close()

    def reset_server_time(self) -> None:
        self._spent.seconds = 0.0

    def server_time(self) -> float:
        """Seconds this thread's requests spent with servers since
        `reset_server_time`: not waiting for a host slot or between retries,
        so slow sites are told apart from our own politeness."""
        return getattr(self._spent, "seconds", 0.0)

    def _spend(self, seconds: float) -> None:
        self._spent.seconds = self.server_time() + seconds

    def get(self, url: str, *, max_bytes: int, allow_file: bool,
            etag: str | None = None, last_modified: str | None = None) -> Response:
        """The resource at `url`; with validators from an earlier fetch, a
        conditional request (a 304 answer costs no body)."""
        error = link_error(url, allow_file)
        if error:
            raise error
        if urlsplit(url).scheme.lower() == "file":
            started = time.monotonic()
            try:
                return self._read_file(url, max_bytes)
            finally:
                self._spend(time.monotonic() - started)
        conditions = {}
        if etag:
            conditions["If-None-Match"] = etag
        if last_modified:
            conditions["If-Modified-Since"] = last_modified
        return self._get_http(url, max_bytes, conditions)

    def _read_file(self, url: str, max_bytes: int) -> Response:
        path = local_path(url)
        try:
            with path.open("rb") as handle:
                body = handle.read(max_bytes + 1)
        except FileNotFoundError as exc:
            raise FetchError("not-found", f"no such file: {path}", 404) from exc
        except OSError as exc:
            raise FetchError("io", f"{path}: {exc.strerror}") from exc
        if len(body) > max_bytes:
            raise FetchError("too-large", f"larger than {max_bytes} bytes")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return Response(url, 200, content_type, body, datetime.now(UTC))

    def _get_http(self, url: str, max_bytes: int, conditions: dict[str, str]) -> Response:
        """Follow redirects by hand, checking each hop; the total deadline
        counts time spent talking to servers, not waiting for a host slot."""
        settings = self.settings
        budget = settings.total_timeout_s
        for _hop in range(settings.max_redirects + 1):
            error = link_error(url, allow_file=False)  # again on every redirect hop
            if error:
                raise error
            if budget <= 0:
                raise FetchError("timeout", "redirects took longer than the total deadline")
            parts = urlsplit(url)
            host = parts.hostname or ""
            if not settings.allow_private_network:
                check_public_address(host, parts.port or (443 if parts.scheme == "https" else 80))
            try:
                with self.gate.request(host):
                    if failures := self.gate.paused(host):  # checked once a slot is ours
                        raise FetchError("host-unavailable", f"{host} failed {failures} requests in a "
                                                             "row; its pages wait for the next poll")
                    started = time.monotonic()
                    deadline = started + budget
                    try:
                        response = self._request(url, conditions, min(settings.read_timeout_s, budget),
                                                 deadline)
                        with response:
                            if not response.is_redirect:
                                answer = self._answer(url, response, max_bytes, deadline)
                                self.gate.record(host, failed=False)
                                return answer
                            try:
                                url = urljoin(url, response.headers["Location"])
                            except ValueError as exc:
                                raise FetchError("invalid-url", "unusable redirect Location",
                                                 response.status_code) from exc
                    finally:
                        self._spend(time.monotonic() - started)
                    budget -= time.monotonic() - started
            except FetchError as error:
                self.gate.record(host, failed=is_temporary(error.error_type, error.http_status))
                raise
        raise FetchError("too-many-redirects", f"more than {settings.max_redirects} redirects")

    def _request(self, url: str, conditions: dict[str, str], read_timeout_s: float,
                 deadline: float) -> requests.Response:
        try:
            with request_deadline(deadline):
                return self.session.get(url, stream=True, allow_redirects=False, headers=conditions,
                                        timeout=(self.settings.connect_timeout_s, read_timeout_s))
        except requests.Timeout as exc:
            raise FetchError("timeout", f"no answer within limits: {type(exc).__name__}") from exc
        except requests.RequestException as exc:
            if time.monotonic() >= deadline:
                raise FetchError("timeout", "headers not complete within the total deadline") from exc
            refused = _refusal(exc)
            raise refused or FetchError("connection", _connection_failure(exc, url)) from exc
        except ValueError as exc:  # requests' URL handling rejects it
            raise FetchError("invalid-url", f"{type(exc).__name__}: {str(exc)[:200]}") from exc

    def _answer(self, url: str, response: requests.Response, max_bytes: int, deadline: float) -> Response:
        """A final (non-redirect) answer as a Response, or the FetchError it amounts to."""
        now, status = datetime.now(UTC), response.status_code
        if status >= 400:
            raise FetchError("http-status", f"HTTP {status} {response.reason}", status,
                             retry_after_seconds(response.headers.get("Retry-After"), now))
        codings = response.headers.get("Content-Encoding", "").lower().split(",")
        unknown = [token.strip() for token in codings if token.strip() not in _DECODED]
        if unknown:  # never asked for, and left encoded by urllib3: bytes no parser should see
            raise FetchError("content-encoding", f"unsupported Content-Encoding {unknown[0][:40]!r}", status)
        body = b"" if status == 304 else self._read_body(response, max_bytes, deadline)
        return Response(url, status, _media_type(response.headers.get("Content-Type")), body, now,
                        response.headers.get("ETag"), response.headers.get("Last-Modified"),
                        response.reason or "", kept_headers(response.raw.headers.items()),
                        tuple(response.request.headers.items()))

    @staticmethod
    def _read_body(response: requests.Response, max_bytes: int, deadline: float) -> bytes:
        """The decoded body, stopped at `max_bytes` or at the deadline.

        A watchdog shuts the socket at the deadline, so neither a server
        trickling bytes nor a compressed stream that never yields output
        (which keeps urllib3 reading inside one call) can hold a worker.
        """
        status = response.status_code
        declared = response.headers.get("Content-Length", "")
        if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > max_bytes):
            raise FetchError("too-large", f"declares {declared} bytes, limit {max_bytes}", status)
        expired = threading.Event()

        def cut_off():
            expired.set()
            with contextlib.suppress(Exception):  # already finished or released
                response.raw.shutdown()

        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), cut_off)
        watchdog.daemon = True
        watchdog.start()
        chunks, size = [], 0
        try:
            while chunk := response.raw.read1(_CHUNK, decode_content=True):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError("too-large", f"larger than {max_bytes} bytes", status)
                chunks.append(chunk)
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
            raise FetchError("timeout", "server went silent while sending the body", status) from exc
        except urllib3.exceptions.DecodeError as exc:  # a coding it declared but did not use
            raise FetchError("content-encoding", f"body does not decode: {str(exc)[:150]}", status) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if not expired.is_set():
                raise FetchError("connection", f"{type(exc).__name__} while reading the body",
                                 status) from exc
        finally:
            watchdog.cancel()
        if expired.is_set():
            raise FetchError("timeout", "response not complete within the total deadline", status)
        return b"".join(chunks)

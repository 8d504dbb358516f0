"""Fetch stage: download article pages over http(s) or from local files.

`Fetcher` is the one place that talks to the network, for feeds and pages
alike. It refuses non-public addresses (checked on every redirect hop),
bounds time and size while streaming, and turns every failure into a
`FetchError` carrying a short `error_type` for the rejects table.
`FetchPages` runs it concurrently: network waits, not CPU, dominate.
"""
from __future__ import annotations

import contextlib
import ipaddress
import itertools
import logging
import mimetypes
import socket
import threading
import time
from collections import Counter, deque
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import apache_beam as beam
import requests
import urllib3
from apache_beam.utils.windowed_value import WindowedValue

from schemas.records import FeedItem, Page, rejects_for
from schemas.settings import FetchSettings

from .metrics import counter, distribution
from .politeness import HostGate, RobotsRules
from .urls import url_problem

HTML_TYPES = ("text/html", "application/xhtml+xml")
_CHUNK = 64 * 1024
_LOG = logging.getLogger(__name__)


class FetchError(Exception):
    """A download that failed, classified for the rejects table."""

    def __init__(self, error_type: str, message: str, http_status: int | None = None,
                 retry_after_s: float | None = None):
        super().__init__(message)
        self.error_type = error_type
        self.http_status = http_status
        self.retry_after_s = retry_after_s  # the server's Retry-After, when it sent one


def failure_label(error: FetchError) -> str:
    """A failure's short name for summaries: `http-503`, `timeout`, `parse`, ..."""
    if error.error_type == "http-status" and error.http_status:
        return f"http-{error.http_status}"
    return error.error_type


# Failures that say nothing about the page itself: worth another try later.
_TEMPORARY_TYPES = frozenset({"timeout", "connection", "dns", "io", "internal-error", "robots-unreachable",
                              "host-unavailable"})
_TEMPORARY_STATUSES = frozenset({408, 425, 429})
# Content codings we ask for; urllib3 decodes them, with its output bounded per read.
_ENCODINGS = ("gzip", "deflate")
_DECODED = frozenset({*_ENCODINGS, "x-gzip", "identity", ""})


def retry_wait(error: FetchError, attempt: int, settings: FetchSettings) -> float | None:
    """Seconds to wait before trying again in this run, or None: not worth it
    now (a page's own fault, or a server asking for longer than we wait)."""
    if attempt >= settings.retries:
        return None
    if error.error_type == "connection" or (
            error.error_type == "http-status" and error.http_status in settings.retry_statuses):
        wait = error.retry_after_s
        if wait is None:
            wait = settings.retry_wait_s * 2 ** attempt
        return wait if wait <= settings.max_retry_wait_s else None
    return None


def is_temporary(error_type: str, http_status: int | None) -> bool:
    if error_type == "http-status":
        return http_status is not None and (http_status in _TEMPORARY_STATUSES or http_status >= 500)
    return error_type in _TEMPORARY_TYPES


@dataclass(frozen=True)
class Response:
    url: str  # after redirects
    status: int  # 304: not modified since the validators sent (body empty)
    content_type: str
    body: bytes
    fetched_at: datetime
    etag: str | None = None
    last_modified: str | None = None


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²": str.isdigit takes any Unicode digit
        return float(value) if len(value) <= 12 else float("inf")  # longer: "never", whatever the digits
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, RFC 6052/8215).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable, and so is any IPv4 address it carries inside."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        inner = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
        if any(address in prefix for prefix in _NAT64):
            inner.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return all(_is_public(embedded) for embedded in inner if embedded is not None)
    return True


def check_public_address(host: str, port: int) -> str:
    """The first address `host` resolves to; raises unless every one of them
    is publicly routable."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError("dns", f"cannot resolve {host}: {exc.strerror}") from exc
    except (UnicodeError, ValueError) as exc:  # e.g. a label longer than 63 characters
        raise FetchError("invalid-url", f"not a valid host name: {host[:100]}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not _is_public(address):
            raise FetchError(
                "blocked-address",
                f"{host} resolves to non-public address {address}; "
                "use --allow-private-network to allow it")
    return infos[0][4][0]


class _PinnedAddress:
    """Connections that go to the address the check approved: the host name
    is resolved and checked once, at connect time, so a DNS server cannot
    answer a public address to the check and a private one to the connect
    (DNS rebinding). TLS still verifies the certificate for the host name."""

    def _new_conn(self):
        name = self._dns_host
        self._dns_host = check_public_address(name, self.port)
        try:
            return super()._new_conn()
        finally:
            self._dns_host = name


# The total deadline of the request this thread is making (see _HeaderDeadline).
_REQUEST = threading.local()


class _HeaderDeadline:
    """Status line and headers bounded by the request's total deadline: the
    read timeout alone restarts with every byte, so a server trickling its
    headers could hold a thread for hours. At the deadline the socket is shut,
    as for a trickled body."""

    def getresponse(self):
        deadline = getattr(_REQUEST, "deadline", None)
        if deadline is None:
            return super().getresponse()
        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), self._cut_off)
        watchdog.daemon = True
        watchdog.start()
        try:
            return super().getresponse()
        finally:
            watchdog.cancel()

    def _cut_off(self):
        with contextlib.suppress(Exception):  # already closed
            self.sock.shutdown(socket.SHUT_RDWR)


def _pools(pinned: bool) -> dict[str, type]:
    """Connection pools for the HTTP client: header deadline always, pinned
    addresses unless private networks are allowed."""
    mixins = (_HeaderDeadline, _PinnedAddress) if pinned else (_HeaderDeadline,)
    pools = {}
    for scheme, pool, connection in (("http", urllib3.HTTPConnectionPool, urllib3.connection.HTTPConnection),
                                     ("https", urllib3.HTTPSConnectionPool,
                                      urllib3.connection.HTTPSConnection)):
        bounded = type(f"Bounded{connection.__name__}", (*mixins, connection), {})
        pools[scheme] = type(f"Bounded{pool.__name__}", (pool,), {"ConnectionCls": bounded})
    return pools


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


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


class Fetcher:
    """Downloads one URL at a time; safe to share between threads."""

    def __init__(self, settings: FetchSettings):
        self.settings = settings
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=settings.concurrency, pool_maxsize=settings.concurrency)
        adapter.poolmanager.pool_classes_by_scheme = _pools(pinned=not settings.allow_private_network)
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
        _REQUEST.deadline = deadline
        try:
            return self.session.get(url, stream=True, allow_redirects=False, headers=conditions,
                                    timeout=(self.settings.connect_timeout_s, read_timeout_s))
        except requests.Timeout as exc:
            raise FetchError("timeout", f"no answer within limits: {type(exc).__name__}") from exc
        except requests.RequestException as exc:
            if time.monotonic() >= deadline:
                raise FetchError("timeout", "headers not complete within the total deadline") from exc
            refused = _refusal(exc)
            raise refused or FetchError("connection", f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        except ValueError as exc:  # requests' URL handling rejects it
            raise FetchError("invalid-url", f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        finally:
            _REQUEST.deadline = None

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
                        response.headers.get("ETag"), response.headers.get("Last-Modified"))

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


def host_of(url: str) -> str:
    """The URL's host, lower-cased; "" when it has none or cannot be parsed
    (fetching it then fails as that element's reject, not the bundle's)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:  # "http://[::1/feed.xml"
        return ""


class HostTurns:
    """Elements waiting to be fetched, a queue per host. Hosts are served in
    turn and never given more downloads at once than `per_host`, so the pool's
    threads are not all queued on one site's politeness limit while other
    sites wait."""

    def __init__(self, per_host: int):
        self.per_host = per_host
        self._waiting: dict[str, deque] = {}  # insertion order is the turn order
        self._running: Counter[str] = Counter()

    def add(self, host: str, element) -> None:
        self._waiting.setdefault(host, deque()).append(element)

    def __len__(self) -> int:
        return sum(map(len, self._waiting.values()))

    def take(self) -> tuple[str, object] | None:
        """(host, element) of the first host in turn under its limit, which
        then goes to the back of the turn; None when every waiting host is busy."""
        host = next((host for host in self._waiting if self._running[host] < self.per_host), None)
        if host is None:
            return None
        queue = self._waiting.pop(host)
        element = queue.popleft()
        if queue:
            self._waiting[host] = queue
        self._running[host] += 1
        return host, element

    def done(self, host: str) -> None:
        self._running[host] -= 1


class ConcurrentFetchFn(beam.DoFn):
    """Base DoFn: fetches its elements on a thread pool, as a stream.

    Each element joins its host's queue (HostTurns) and downloads are kept
    under way up to `concurrency x in_flight_per_thread` at a time; each is
    emitted, in its own window, as soon as it arrives, so the stages after
    this one work while later downloads run, and nothing waits for the
    slowest of a batch. What is left is finished in `finish_bundle`.

    Subclasses say what to fetch (`fetch_one`), what to emit (`emit`) and
    under which name the time each element took is kept per feed
    (`timing_name`), for the summary's slowest feeds: time with servers,
    robots.txt and retries included, host-slot queues and retry waits not.
    The Fetcher and pool are built once per worker in `setup`.
    """

    def __init__(self, settings: FetchSettings):
        self.settings = settings

    def setup(self):
        self.fetcher = Fetcher(self.settings)
        self.pool = ThreadPoolExecutor(self.settings.concurrency)

    def teardown(self):
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.fetcher.close()

    def start_bundle(self):
        self._turns = HostTurns(self.settings.per_host_concurrency)
        self._running: dict = {}  # future -> (host, element as a WindowedValue)

    def process(self, element, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam,
                pane=beam.DoFn.PaneInfoParam):
        self._turns.add(host_of(self.url_of(element)), WindowedValue(element, timestamp, (window,), pane))
        yield from self._arrived(wait=False)

    def finish_bundle(self):
        while self._running or len(self._turns):
            yield from self._arrived(wait=True)

    def _arrived(self, wait: bool):
        """Start what may start; emit what has arrived (waiting for at least one if `wait`)."""
        limit = self.settings.concurrency * self.settings.in_flight_per_thread
        while len(self._running) < limit and (turn := self._turns.take()) is not None:
            host, windowed = turn
            self._running[self.pool.submit(self._timed_attempt, windowed.value)] = (host, windowed)
        arrived = (futures.wait(self._running, return_when=futures.FIRST_COMPLETED).done if wait
                   else [future for future in self._running if future.done()])
        for future in arrived:
            host, windowed = self._running.pop(future)
            self._turns.done(host)
            outcome, seconds = future.result()
            if seconds:  # nothing asked (a feed not due, a refused link): nothing to time
                distribution(self.timing_name(windowed.value)).update(round(seconds * 1000))
            for output in self.emit(windowed.value, outcome):
                if isinstance(output, beam.pvalue.TaggedOutput):
                    yield beam.pvalue.TaggedOutput(output.tag, windowed.with_value(output.value))
                else:
                    yield windowed.with_value(output)

    def _timed_attempt(self, element):
        """The outcome, and the seconds its requests spent with servers."""
        self.fetcher.reset_server_time()
        outcome = self._attempt(element)
        return outcome, self.fetcher.server_time()

    def _attempt(self, element):
        try:
            previous = None
            for attempt in itertools.count():
                try:
                    return self.fetch_one(element)
                except FetchError as error:
                    if error.error_type == "host-unavailable" and previous is not None:
                        return previous  # what the host said is the better record
                    previous, wait = error, retry_wait(error, attempt, self.settings)
                    if wait is None:
                        return error
                    counter("fetch/retried").inc()
                    time.sleep(wait)
        except Exception as error:  # one odd input must not stop the run: record it
            _LOG.info("unexpected error on %r", element, exc_info=True)  # shown with -v
            return FetchError("internal-error", f"{type(error).__name__}: {str(error)[:200]}")

    def fetch_one(self, element):
        raise NotImplementedError

    def emit(self, element, outcome):
        raise NotImplementedError

    def timing_name(self, element) -> str:
        raise NotImplementedError

    def url_of(self, element) -> str:
        raise NotImplementedError


class _FetchPageFn(ConcurrentFetchFn):
    def __init__(self, settings: FetchSettings):
        super().__init__(settings)
        self.fetched = counter("fetch/ok")

    def setup(self):
        super().setup()
        self.robots = RobotsRules(self.settings.user_agent, self.settings.max_robots_hosts)

    def fetch_one(self, item: FeedItem) -> Response:
        error = link_error(item.url, item.from_local_feed)
        if error:
            raise error
        remote = urlsplit(item.url).scheme.lower() != "file"
        if remote and not self.robots.allowed(item.url, self._robots_file):
            raise FetchError("robots", "disallowed by the site's robots.txt")
        response = self.fetcher.get(item.url, max_bytes=self.settings.max_page_bytes,
                                    allow_file=item.from_local_feed)
        if response.content_type and response.content_type not in HTML_TYPES:
            raise FetchError("content-type", f"not an HTML page: {response.content_type}",
                             response.status)
        return response

    def _robots_file(self, robots_url: str) -> tuple[int, bytes]:
        """(status, body) of a robots.txt; a 4xx is an answer (no rules),
        other failures make the site's pages wait for the next poll."""
        try:
            response = self.fetcher.get(robots_url, max_bytes=self.settings.max_robots_bytes,
                                        allow_file=False)
        except FetchError as error:
            if error.error_type == "http-status" and 400 <= (error.http_status or 0) < 500:
                return error.http_status, b""
            if error.error_type == "too-large":  # no crawler reads such a file whole: no rules we can use
                return 404, b""
            if error.error_type in ("blocked-address", "invalid-url", "unsupported-scheme"):
                raise  # the page's own address is the problem: report that
            raise FetchError("robots-unreachable", f"robots.txt: {error}", error.http_status) from error
        return response.status, response.body

    def timing_name(self, item: FeedItem) -> str:
        return f"fetch/ms/{item.feed_url}"

    def url_of(self, item: FeedItem) -> str:
        return item.url

    def emit(self, item: FeedItem, outcome):
        if isinstance(outcome, FetchError):
            counter(f"fetch/rejected/{outcome.error_type}").inc()
            for reject in rejects_for(item, "fetch", outcome.error_type, str(outcome),
                                      outcome.http_status, datetime.now(UTC)):
                yield beam.pvalue.TaggedOutput(FetchPages.REJECTS, reject)
            return
        self.fetched.inc()
        yield Page(item=item, final_url=outcome.url, status=outcome.status,
                   content_type=outcome.content_type, body=outcome.body,
                   fetched_at=outcome.fetched_at)


class FetchPages(beam.PTransform):
    """FeedItem -> Page, with failures on the `rejects` output."""

    REJECTS = "rejects"

    def __init__(self, settings: FetchSettings):
        super().__init__()
        self.settings = settings

    def expand(self, items):
        return items | "Fetch" >> beam.ParDo(_FetchPageFn(self.settings)).with_outputs(
            self.REJECTS, main="pages")

"""Concurrent fetching inside a Beam worker, fair between hosts.

HostTurns queues waiting elements per host and serves hosts in turn;
ConcurrentFetchFn is the base DoFn of every fetching stage (feeds, pages):
it runs an HTTP client on a thread pool, retries as `failures.retry_wait`
says, and emits each outcome as it arrives.
"""
from __future__ import annotations

import itertools
import logging
import time
from collections import Counter, deque
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from schemas.settings import FetchSettings

from .failures import FetchError, retry_wait
from .httpclient import Fetcher
from .metrics import counter, distribution

_LOG = logging.getLogger(__name__)


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

"""Politeness towards the sites we read: how often and how hard we knock.

HostGate limits requests to one host: at most `per_host_concurrency` at a
time and starts at least `host_delay_s` apart, whatever the thread pool's
size. RobotsRules reads each host's robots.txt once per worker (RFC 9309
through the stdlib's `urllib.robotparser`, the reference parser) and answers
whether an article may be fetched. Both are shared by a worker's threads.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

# Robots answers that mean "no rules": the site has none (RFC 9309 2.3.1.3).
_NO_RULES = range(400, 500)


class HostGate:
    """Per-host concurrency slots, a minimum gap between request starts, and
    a breaker: a host that failed `pause_after` requests in a row gets no
    more in this run (its pages wait for the next poll), so one sick or
    hostile host cannot hold a run for hours."""

    def __init__(self, per_host_concurrency: int, host_delay_s: float, pause_after: int):
        self.delay_s, self.pause_after = host_delay_s, pause_after
        self._guard = threading.Lock()
        self._slots = defaultdict(lambda: threading.BoundedSemaphore(per_host_concurrency))
        self._next_start: dict[str, float] = defaultdict(float)
        self._failures_in_a_row: dict[str, int] = defaultdict(int)

    def paused(self, host: str) -> int:
        """How many requests in a row the host failed, if that many pause it; else 0."""
        failures = self._failures_in_a_row.get(host, 0)
        return failures if failures >= self.pause_after else 0

    def record(self, host: str, failed: bool) -> None:
        with self._guard:
            self._failures_in_a_row[host] = self._failures_in_a_row[host] + 1 if failed else 0

    @contextmanager
    def request(self, host: str):
        with self._guard:
            slots = self._slots[host]
        with slots:
            with self._guard:  # reserve the next start time for this host
                start = max(time.monotonic(), self._next_start[host])
                self._next_start[host] = start + self.delay_s
            time.sleep(max(0.0, start - time.monotonic()))
            yield


class RobotsRules:
    """robots.txt per host, fetched once with `fetch(url)`; thread-safe."""

    def __init__(self, user_agent: str):
        self.agent = user_agent.split("/", 1)[0]  # the product token, e.g. "news-ingest"
        self._guard = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._parsers: dict[str, RobotFileParser | Exception] = {}

    def allowed(self, url: str, fetch) -> bool:
        """May `url` be fetched? `fetch(robots_url)` returns (status, body)
        and raises the fetcher's error when the file cannot be had; a 4xx
        means no rules, other failures are the caller's to report."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        with self._guard:
            host_lock = self._host_locks[origin]
        with host_lock:  # one download per host, the other threads wait for it
            if origin not in self._parsers:
                try:
                    self._parsers[origin] = self._load(origin, fetch)
                except Exception as error:  # remembered: a hanging host costs one wait, not one per page
                    self._parsers[origin] = error
            parser = self._parsers[origin]
        if isinstance(parser, Exception):
            raise parser
        return parser.can_fetch(self.agent, url)

    def _load(self, origin: str, fetch) -> RobotFileParser:
        robots_url = urlunsplit((*urlsplit(origin)[:2], "/robots.txt", "", ""))
        parser = RobotFileParser(robots_url)
        status, body = fetch(robots_url)
        if status in _NO_RULES:
            parser.allow_all = True
        else:
            parser.parse(body.decode("utf-8", "replace").splitlines())
        return parser

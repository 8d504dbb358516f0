"""Politeness towards the sites we read: how often and how hard we knock.

HostGate limits requests to one host: at most `per_host_concurrency` at a
time and starts at least `host_delay_s` apart, whatever the thread pool's
size, and pauses a host that keeps failing. It is shared by a worker's
threads. What we may fetch at all is robots.py's question.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from contextlib import contextmanager


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

"""Politeness towards the sites we read: how often and how hard we knock.

HostGate limits requests to one host: at most `per_host_concurrency` at a
time and starts at least `host_delay_s` apart, whatever the thread pool's
size. RobotsRules reads each host's robots.txt once per worker and answers
whether an article may be fetched (RFC 9309, through Protego). Both are
shared by a worker's threads.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from protego import Protego

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
    """robots.txt per host, fetched once with `fetch(url)`; thread-safe.

    Rules are read with Protego (Scrapy's RFC 9309 parser: wildcards, `$`,
    longest match wins), keeping only the groups that name us or `*`, for at
    most `max_hosts` hosts at a time (least recently used go first): a site
    cannot make us hold megabytes of other crawlers' rules, nor many sites
    all of theirs. A host whose robots.txt could not be had is remembered as
    such for as long as it is cached, so its pages fail fast."""

    def __init__(self, user_agent: str, max_hosts: int):
        self.agent = user_agent.split("/", 1)[0]  # the product token, e.g. "news-ingest"
        self.max_hosts = max_hosts
        self._guard = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._rules: OrderedDict[str, Protego | Exception] = OrderedDict()

    def allowed(self, url: str, fetch) -> bool:
        """May `url` be fetched? `fetch(robots_url)` returns (status, body)
        and raises the fetcher's error when the file cannot be had; a 4xx
        means no rules, other failures are the caller's to report."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        with self._guard:
            host_lock = self._host_locks[origin]
        with host_lock:  # one download per host, the other threads wait for it
            with self._guard:
                rules = self._rules.get(origin)
                if rules is not None:
                    self._rules.move_to_end(origin)
            if rules is None:
                try:
                    rules = self._load(origin, fetch)
                except Exception as error:  # remembered: a hanging host costs one wait, not one per page
                    rules = error
                with self._guard:
                    self._rules[origin] = rules
                    while len(self._rules) > self.max_hosts:
                        forgotten, _ = self._rules.popitem(last=False)
                        self._host_locks.pop(forgotten, None)
        if isinstance(rules, Exception):
            raise rules
        return rules.can_fetch(url, self.agent)

    def _load(self, origin: str, fetch) -> Protego:
        status, body = fetch(urlunsplit((*urlsplit(origin)[:2], "/robots.txt", "", "")))
        if status in _NO_RULES:
            return Protego.parse("")
        return Protego.parse(_groups_for(body.decode("utf-8", "replace").lstrip("\ufeff"), self.agent))


def _groups_for(text: str, agent: str) -> str:
    """The rules that apply to `agent`, as one `User-agent: *` group.

    A group is one or more `User-agent` lines and the rules after them. As
    RFC 9309 says, the groups naming our product token apply if there are
    any, else those for `*`; the rest (other crawlers' rules) are dropped."""
    groups: list[tuple[list[str], list[str]]] = []
    for line in text.splitlines():
        name, colon, value = line.split("#", 1)[0].partition(":")
        name, value = name.strip().lower(), value.strip()
        if not colon:
            continue
        if name == "user-agent":
            if not groups or groups[-1][1]:  # rules seen: a new group starts
                groups.append(([], []))
            groups[-1][0].append(value.lower())
        elif name in ("allow", "disallow") and groups:
            groups[-1][1].append(f"{name}: {value}")
    ours = [rules for agents, rules in groups if agent.lower() in agents]
    chosen = ours or [rules for agents, rules in groups if "*" in agents]
    return "\n".join(["User-agent: *", *(rule for rules in chosen for rule in rules)])

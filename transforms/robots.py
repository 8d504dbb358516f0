"""robots.txt: may an article page be fetched (RFC 9309, through Protego).

RobotsRules reads each host's robots.txt once per worker, shared by the
worker's threads; `robots_file` fetches one with the run's HTTP client and
says which failures mean "no rules" and which make the site's pages wait.
"""
from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from urllib.parse import urlsplit, urlunsplit

from protego import Protego

from schemas.settings import FetchSettings

from .failures import FetchError
from .httpclient import Fetcher

# Robots answers that mean "no rules": the site has none (RFC 9309 2.3.1.3).
_NO_RULES = range(400, 500)


def robots_file(fetcher: Fetcher, settings: FetchSettings, robots_url: str) -> tuple[int, bytes]:
    """(status, body) of a robots.txt; a 4xx is an answer (no rules),
    other failures make the site's pages wait for the next poll."""
    try:
        response = fetcher.get(robots_url, max_bytes=settings.max_robots_bytes, allow_file=False)
    except FetchError as error:
        if error.error_type == "http-status" and 400 <= (error.http_status or 0) < 500:
            return error.http_status, b""
        if error.error_type == "too-large":  # no crawler reads such a file whole: no rules we can use
            return 404, b""
        if error.error_type in ("blocked-address", "invalid-url", "unsupported-scheme"):
            raise  # the page's own address is the problem: report that
        raise FetchError("robots-unreachable", f"robots.txt: {error}", error.http_status) from error
    return response.status, response.body


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

"""Feed discovery: the feeds of a site, found and checked (`news-ingest discover`).

From one page of a site (its home page or any other) the candidates are the
feeds the page declares (<link rel="alternate">), the `Sitemap:` lines of
the site's robots.txt, and the usual feed paths of schemas/data/discovery.yaml.
Each is fetched with the run's guarded client and read as a run would read
it (feeds.parse_feed), so only documents that really are feeds are offered,
with how many items they list and how fresh they are. Robots.txt is obeyed
for the page and the guessed paths; what the site itself offers (declared
feeds, its Sitemap: lines) is a subscription and is read, as feeds are.
"""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import NamedTuple
from urllib.parse import urljoin, urlsplit, urlunsplit

from protego import Protego

from schemas.settings import FeedSettings, FetchSettings

from .failures import FetchError
from .feedformats import declared_feeds, discovery_rules, is_json_feed, is_sitemap, unzipped
from .feeds import parse_feed
from .feedstate import body_hash
from .httpclient import Fetcher
from .robots import RobotsRules, robots_file

_FEEDS = FeedSettings()
# Counting what a sitemap lists, whatever its age (a run keeps the recent ones).
_EVERY_ENTRY = replace(_FEEDS, sitemap_max_age_days=365_000)
_ATOM_ROOT = re.compile(rb"<(?:[A-Za-z][\w.-]*:)?feed[\s>]")


class Candidate(NamedTuple):
    url: str
    found_by: str  # how it was found, in words
    title: str | None = None


class CheckedFeed(NamedTuple):
    url: str  # as found (the feed list keeps the URL the site gave)
    found_by: str
    kind: str  # RSS | Atom | JSON Feed | sitemap | news sitemap | sitemap index
    items: int  # entries, or sitemaps of an index
    newest: datetime | None
    title: str | None


class Discovery(NamedTuple):
    page_url: str
    feeds: list[CheckedFeed]
    # Candidates that are no feed: (url, why), for -v.
    refused: list[tuple[str, str]]
    # Why the page itself could not be read, or None.
    error: str | None = None


def discover(fetcher: Fetcher, settings: FetchSettings, page_url: str, now: datetime) -> Discovery:
    """The feeds found from `page_url`, each checked, once each (by final URL and body)."""
    robots_url = urlunsplit((*urlsplit(page_url)[:2], "/robots.txt", "", ""))
    try:
        robots = robots_file(fetcher, settings, robots_url)
    except FetchError as failure:
        if failure.error_type != "robots-unreachable":  # the address itself is refused
            return Discovery(page_url, [], [], f"{failure.error_type}: {failure}")
        robots = None  # unreachable: the page and usual paths wait, as RFC 9309 asks
        error = f"{failure.error_type}: {failure}"
    else:
        error = "robots.txt disallows this page"
    allowed = _robots_allows(robots, settings.user_agent)
    sitemaps = list(Protego.parse(robots[1].decode("utf-8", "replace")).sitemaps) if robots else []
    found, refused = [], []
    if allowed(page_url):
        error = None
        try:
            page = fetcher.get(page_url, max_bytes=settings.max_page_bytes, allow_file=False)
            declared = declared_feeds(page.body, page.url)
            most = _FEEDS.max_declared_feeds
            found += [Candidate(feed.url, "linked from the page", feed.title) for feed in declared[:most]]
            refused += [(feed.url, f"not checked: the page declares {len(declared)} feeds, the first "
                                   f"{most} are") for feed in declared[most:]]
        except FetchError as failure:
            error = f"{failure.error_type}: {failure}"
    found += [Candidate(urljoin(robots_url, url), "named in robots.txt") for url in sitemaps]
    found += [Candidate(urljoin(page_url, path), "a usual path") for path in discovery_rules()["feed_paths"]
              if allowed(urljoin(page_url, path))]
    feeds, seen = [], set()
    for candidate in _once_each(found):
        try:
            checked, final_url, digest = _check(fetcher, settings, candidate, now)
        except FetchError as failure:
            refused.append((candidate.url, f"{failure.error_type}: {failure}"))
            continue
        except Exception as failure:  # noqa: BLE001 -- one odd document must not end the discovery
            refused.append((candidate.url, f"unreadable: {type(failure).__name__}: {failure}"))
            continue
        if final_url in seen or digest in seen:  # /feed and /rss answering with one document
            continue
        seen |= {final_url, digest}
        feeds.append(checked)
    return Discovery(page_url, feeds, refused, error)


def _robots_allows(robots: tuple[int, bytes] | None, user_agent: str):
    """url -> may it be fetched, by the site's robots.txt (None: it could not be had: no)."""
    if robots is None:
        return lambda url: False
    rules = RobotsRules(user_agent, max_hosts=1)
    return lambda url: rules.allowed(url, lambda _robots_url: robots)


def _once_each(candidates: list[Candidate]) -> list[Candidate]:
    first = {}
    for candidate in candidates:
        first.setdefault(candidate.url, candidate)
    return list(first.values())


def _check(fetcher: Fetcher, settings: FetchSettings, candidate: Candidate,
           now: datetime) -> tuple[CheckedFeed, str, str]:
    """The candidate read as a feed: (what it is, its final URL, its body's hash);
    FetchError when it cannot be had or is no feed."""
    response = fetcher.get(candidate.url, max_bytes=settings.max_feed_bytes, allow_file=False)
    parsed = parse_feed(response.body, response.url, 0, now, _EVERY_ENTRY)
    body = unzipped(response.body, _EVERY_ENTRY.max_sitemap_bytes)
    dates = [item.published_at for item in parsed.items if item.published_at]
    if parsed.children:
        kind, items = "sitemap index", len(parsed.children)
    elif is_sitemap(body):
        kind, items = "news sitemap" if dates else "sitemap", len(parsed.items)
    else:
        kind = "JSON Feed" if is_json_feed(body) else "Atom" if _ATOM_ROOT.search(body[:4096]) else "RSS"
        items = len(parsed.items)
    checked = CheckedFeed(candidate.url, candidate.found_by, kind, items, max(dates, default=None),
                          candidate.title)
    return checked, response.url, body_hash(response.body)

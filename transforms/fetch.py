"""Fetch stage: FeedItem -> Page, over http(s) or from local files.

The page's link is checked, robots.txt asked (robots.py), the page
downloaded by the HTTP client (httpclient.py) on the worker's thread pool
(scheduler.py), and anything but HTML refused. Every failure becomes a
reject with its `error_type`; nothing is dropped.
"""
from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import apache_beam as beam

from schemas.records import FeedItem, Page, rejects_for
from schemas.settings import FetchSettings

from .failures import FetchError
from .httpclient import Response, link_error
from .metrics import counter
from .robots import RobotsRules, robots_file
from .scheduler import ConcurrentFetchFn

HTML_TYPES = ("text/html", "application/xhtml+xml")


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
        return robots_file(self.fetcher, self.settings, robots_url)

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
                   fetched_at=outcome.fetched_at, reason=outcome.reason, headers=outcome.headers,
                   request_headers=outcome.request_headers)


class FetchPages(beam.PTransform):
    """FeedItem -> Page, with failures on the `rejects` output."""

    REJECTS = "rejects"

    def __init__(self, settings: FetchSettings):
        super().__init__()
        self.settings = settings

    def expand(self, items):
        return items | "Fetch" >> beam.ParDo(_FetchPageFn(self.settings)).with_outputs(
            self.REJECTS, main="pages")

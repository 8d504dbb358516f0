"""Feeds stage: poll every feed of the list (feedlist.py), emit one FeedItem per entry.

A feed that cannot be loaded or parsed becomes a `feed` reject; an
entry that cannot be followed (no link, javascript:, file:// from a remote
feed) an `item` reject. Nothing here raises into the pipeline.
"""
from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from urllib.parse import urljoin, urlsplit, urlunsplit
from xml.sax import SAXParseException

import apache_beam as beam
import feedparser

from schemas.records import FeedItem, FeedState, Page, Reject
from schemas.settings import FeedSettings, FetchSettings

from .failures import FetchError, failure_label, is_temporary
from .feedformats import (
    ChildSitemap,
    FeedEntry,
    declared_feeds,
    is_gzipped,
    is_json_feed,
    is_sitemap,
    may_be_sitemap_index,
    newest_first,
    read_json_feed,
    read_sitemap,
    unzipped,
)
from .feedstate import (
    after_failure,
    after_success,
    body_hash,
    interval_bucket,
    is_due,
    load_states,
    next_interval,
    publisher_interval,
    save_states,
)
from .httpclient import link_error, local_path
from .metrics import counter
from .scheduler import ConcurrentFetchFn

# A character reference to a UTF-16 surrogate (D800-DFFF), hex or decimal:
# how some CMSs write emoji (&#55357;&#56832;). feedparser fails the whole
# feed on one, so pairs are joined into the real character first.
_SURROGATE_REF = (rb"&#(?:[xX]([dD][89a-fA-F][0-9a-fA-F]{2})|"
                  rb"(5(?:529[6-9]|53\d\d|5[4-9]\d\d|6\d{3}|7[0-2]\d\d|73[0-3]\d|734[0-3])));")
_SURROGATE_REFS = re.compile(_SURROGATE_REF + b"(?:" + _SURROGATE_REF + b")?")


def _join_surrogates(match: re.Match) -> bytes:
    high, low = (int(match[1], 16) if match[1] else int(match[2]),
                 (int(match[3], 16) if match[3] else int(match[4])) if match[3] or match[4] else None)
    if low is not None and high <= 0xDBFF < low:
        return b"&#%d;" % (0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    return b"&#xFFFD;" * (2 if low is not None else 1)


def repair_character_references(body: bytes) -> bytes:
    """Surrogate-pair references joined into one character, strays replaced."""
    return _SURROGATE_REFS.sub(_join_surrogates, body) if b"&#" in body else body


def _entry_time(entry) -> datetime | None:
    # .keys(): feedparser's `in` and get() map a missing updated_parsed onto
    # published_parsed, with a DeprecationWarning.
    parsed = entry.get("published_parsed") or (
        entry["updated_parsed"] if "updated_parsed" in entry.keys() else None)  # noqa: SIM118
    try:
        return datetime(*parsed[:6], tzinfo=UTC) if parsed else None
    except (TypeError, ValueError):  # "0000-00-00" placeholders of broken CMSs
        return None


class ParsedFeed(NamedTuple):
    items: list[FeedItem]
    rejects: list[Reject]
    # How long the publisher asks readers to wait between polls (<ttl>, sy:).
    wait: timedelta | None
    # A sitemap index's sitemaps, to be fetched and read in turn.
    children: tuple[ChildSitemap, ...] = ()


def _cut_short(error) -> bool:
    """Did the XML parser hit the end of the document with elements open?"""
    return isinstance(error, SAXParseException) and any(
        sign in str(error) for sign in ("no element found", "unclosed token"))


_ENTRY_TAG = re.compile(rb"<(?:[A-Za-z][\w.-]*:)?(?:item|entry)[\s>/]")


def _file_link(url: str) -> str:
    """A file: link in one form, file:///abs/path, with the slashes feedparser took.

    feedparser drops every slash after `scheme://` in the links it reads:
    file:///srv/a.html arrives as file://srv/a.html, its first folder taken
    for a host, so that "host" goes back in front of the path. A link that
    really names another machine cannot be told apart; it is looked for on
    this one.
    """
    parts = urlsplit(url)
    if parts.netloc.lower() not in ("", "localhost"):
        url = urlunsplit(("file", "", f"/{parts.netloc}{parts.path}", "", ""))
    path = local_path(url)
    return path.as_uri() if path.is_absolute() else url


# A web page: optional BOM, XML declaration, comments and doctype, then <html>.
_HTML_START = re.compile(rb"^(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*"
                         rb"(?:<!doctype\s+html[\s>]|<html[\s>])", re.I | re.S)


def _not_a_feed(body: bytes, page_url: str) -> str:
    """Why a web page given as a feed is none, naming the feeds it links to
    (`<link rel="alternate" type="application/rss+xml" href=…>`), if any."""
    links = [feed.url for feed in declared_feeds(body, page_url)]
    if links:
        shown = [url[:200] for url in list(links)[:5]]
        return (f"an HTML page, not a feed; it links to {len(links)} feed{'s' if len(links) > 1 else ''}: "
                f"{', '.join(shown)}{', …' if len(links) > 5 else ''} (give one of them)")
    return "an HTML page, not a feed: give the site's RSS or Atom feed URL"


_DEFAULT_FEEDS = FeedSettings()


def parse_feed(body: bytes, feed_url: str, feed_index: int, now: datetime,
               settings: FeedSettings = _DEFAULT_FEEDS) -> ParsedFeed:
    """Items of one feed document -- RSS, Atom, JSON Feed or a sitemap -- and
    rejects for entries that cannot be followed.

    Raises FetchError("parse") when the document is not a feed at all. A
    malformed feed is read as far as the tolerant parsers get; when the
    document stops short, its last, unfinished entry is a `truncated`
    reject. A sitemap index gives its child sitemaps to fetch next.
    """
    if is_gzipped(body):  # a .xml.gz sent as a file (application/gzip), not as a coding
        body = unzipped(body, settings.max_sitemap_bytes)
    if is_json_feed(body):
        return _follow(read_json_feed(body, settings.max_entries), feed_url, feed_index, now)
    if is_sitemap(body):
        return _sitemap_items(body, feed_url, feed_index, now, settings)
    listed = sum(1 for _ in _ENTRY_TAG.finditer(body))
    if listed > settings.max_entries:  # counted before parsing, which would hold them all
        raise FetchError("too-many-entries", f"{listed} entries, more than {settings.max_entries}")
    # A stream, never bytes: feedparser opens bytes that look like a path as a file.
    parsed = feedparser.parse(io.BytesIO(repair_character_references(body)), sanitize_html=False,
                              resolve_relative_uris=False)
    if not parsed.entries and _HTML_START.match(body[:2048]):
        raise FetchError("parse", _not_a_feed(body, feed_url))
    if parsed.bozo and not parsed.entries:
        reason = str(parsed.get("bozo_exception") or "not a feed")
        raise FetchError("parse", f"not a readable RSS/Atom feed: {reason[:200]}")
    if not parsed.entries and not parsed.get("version"):
        raise FetchError("parse", "not an RSS/Atom feed")
    entries = list(parsed.entries)
    cut = None
    if parsed.bozo and _cut_short(parsed.get("bozo_exception")):
        # The document ends inside its last entry, whose link may be cut too.
        cut = entries.pop()
    followed = _follow([FeedEntry(link=(entry.get("link") or "").strip(), title=entry.get("title"),
                                  author=entry.get("author"), published_at=_entry_time(entry))
                        for entry in entries], feed_url, feed_index, now)
    if cut is not None:
        followed.rejects.insert(0, Reject("item", (cut.get("link") or feed_url)[:2000], feed_url,
                                          "truncated", "the feed ends inside this entry", None, now))
    channel = parsed.get("feed", {})
    wait = publisher_interval(channel.get("ttl"), channel.get("sy_updateperiod"),
                              channel.get("sy_updatefrequency"))
    return followed._replace(wait=wait)


def _follow(entries: list[FeedEntry], feed_url: str, feed_index: int, now: datetime) -> ParsedFeed:
    """A FeedItem for each entry whose link can be followed; a reject for the others."""
    local = urlsplit(feed_url).scheme == "file"
    items, rejects = [], []
    for position, entry in enumerate(entries):
        link = entry.link.strip()
        if not link:
            rejects.append(Reject("item", feed_url, feed_url, "no-link",
                                  f"entry {position} has no link", None, now))
            continue
        try:
            url = urljoin(feed_url, link)
            if urlsplit(url).scheme.lower() == "file":
                url = _file_link(url)
        except ValueError:
            url = link
        error = link_error(url, allow_file=local)
        if error:
            rejects.append(Reject("item", url[:2000], feed_url, error.error_type,
                                  str(error), None, now))
            continue
        items.append(FeedItem(url=url, feed_url=feed_url, title=entry.title, author=entry.author,
                              published_at=entry.published_at, first_seen=(feed_index, position),
                              from_local_feed=local))
    return ParsedFeed(items, rejects, None)


def _sitemap_items(body: bytes, feed_url: str, feed_index: int, now: datetime,
                   settings: FeedSettings) -> ParsedFeed:
    """A sitemap's recent pages as items, the newest `max_entries` of them
    (a `too-many-entries` reject counts the rest), and its child sitemaps."""
    sitemap = read_sitemap(body, now - timedelta(days=settings.sitemap_max_age_days))
    counter("sitemaps/entries_too_old").inc(sitemap.too_old)
    entries = newest_first(sitemap.entries, lambda entry: entry.published_at or entry.modified_at)
    followed = _follow(entries[:settings.max_entries], feed_url, feed_index, now)
    if len(entries) > settings.max_entries:
        followed.rejects.append(Reject(
            "item", feed_url, feed_url, "too-many-entries",
            f"{len(entries) - settings.max_entries} more recent entries left out (more than "
            f"{settings.max_entries})", None, now))
    if sitemap.cut_short:
        followed.rejects.append(Reject("item", feed_url, feed_url, "truncated",
                                       f"the sitemap ends inside an entry: {sitemap.cut_short}", None, now))
    return followed._replace(children=tuple(sitemap.children))


def _modified(child: ChildSitemap) -> datetime | None:
    return child.modified_at


class _ListFeedsFn(beam.DoFn):
    """On each trigger (once per run, or per tick when streaming): every feed
    of the list with its remembered state."""

    def __init__(self, feed_urls: list[str], out_dir: str):
        self.feed_urls, self.out_dir = feed_urls, out_dir

    def process(self, _tick):
        states = load_states(self.out_dir)
        for index, url in enumerate(self.feed_urls):
            yield index, url, states.get(url, FeedState(url))


class ListFeeds(beam.PTransform):
    """trigger (once per run, or per tick) -> (feed index, feed URL, FeedState
    remembered in `out_dir`)."""

    def __init__(self, feed_urls: list[str], out_dir: str):
        super().__init__()
        self.feed_urls, self.out_dir = feed_urls, out_dir

    def expand(self, trigger):
        return trigger | "WithState" >> beam.ParDo(_ListFeedsFn(self.feed_urls, self.out_dir))


class _Skipped(NamedTuple):
    status: str  # not-due | not-modified | unchanged
    etag: str | None = None
    last_modified: str | None = None


class _PollFeedFn(ConcurrentFetchFn):
    def __init__(self, settings: FetchSettings, feed_settings: FeedSettings, keep_bodies: bool):
        super().__init__(settings)
        self.feed_settings, self.keep_bodies = feed_settings, keep_bodies
        self.polled = counter("feeds/polled")
        self.failed = counter("feeds/rejected")
        self.seen = counter("items/seen")

    def fetch_one(self, element: tuple[int, str, FeedState]):
        index, feed_url, state = element
        if not self.feed_settings.force and not is_due(state, datetime.now(UTC)):
            return _Skipped("not-due")
        response = self.fetcher.get(feed_url, max_bytes=self.settings.max_feed_bytes, allow_file=True,
                                    etag=state.etag, last_modified=state.last_modified)
        if response.status == 304:
            return _Skipped("not-modified", response.etag, response.last_modified), response, (), None
        digest = body_hash(response.body)
        # An index's sitemaps change under an unchanged index: it is read down on every poll.
        if digest == state.body_hash and not may_be_sitemap_index(response.body):
            return _Skipped("unchanged", response.etag, response.last_modified), response, (), None
        parsed = parse_feed(response.body, feed_url, index, response.fetched_at, self.feed_settings)
        sitemaps = ()
        if parsed.children:
            parsed, sitemaps = self._read_children(parsed, feed_url, index, response.fetched_at)
            # An index is as new as its sitemaps: unchanged when none of them changed.
            digest = body_hash(b"\0".join([response.body, *(sitemap.body for sitemap in sitemaps)]))
        if digest == state.body_hash:
            return _Skipped("unchanged"), response, (), None
        return parsed, response, tuple(sitemaps), digest

    def _read_children(self, index_parsed: ParsedFeed, feed_url: str, index: int, now: datetime):
        """A sitemap index read down: its sitemaps fetched in turn, the newest
        first, to `sitemap_max_depth` levels and `max_child_sitemaps` sitemaps;
        one seen before (a loop) is not fetched again. -> (ParsedFeed of all
        their items, as of `feed_url`, the index's response, the sitemaps' responses)."""
        settings = self.feed_settings
        newer_than = now - timedelta(days=settings.sitemap_max_age_days)
        local = urlsplit(feed_url).scheme == "file"
        items, rejects, responses, seen, tried = [], list(index_parsed.rejects), [], {feed_url}, 0
        pending = [(child, 1) for child in newest_first(index_parsed.children, _modified)]
        while pending:
            child, depth = pending.pop(0)
            url = urljoin(feed_url, child.url)
            problem = None
            if url in seen:
                problem = ("sitemap-loop", "listed again by a sitemap index (a loop or a repeat)")
            elif depth > settings.sitemap_max_depth:
                problem = ("sitemap-too-deep", f"more than {settings.sitemap_max_depth} sitemap indexes deep")
            elif tried >= settings.max_child_sitemaps:
                problem = ("too-many-sitemaps", f"{len(pending) + 1} more sitemaps left out (more than "
                                                f"{settings.max_child_sitemaps} a poll)")
                pending = []
            elif child.modified_at is not None and child.modified_at < newer_than:
                counter("sitemaps/too_old").inc()
                continue
            if problem:
                rejects.append(Reject("feed", url[:2000], feed_url, *problem, None, now))
                continue
            seen.add(url)
            tried += 1
            try:
                response = self.fetcher.get(url, max_bytes=self.settings.max_feed_bytes, allow_file=local)
                parsed = parse_feed(response.body, url, index, response.fetched_at, settings)
            except FetchError as error:
                rejects.append(Reject("feed", url[:2000], feed_url, error.error_type, str(error),
                                      error.http_status, now))
                continue
            responses.append(response)
            counter("sitemaps/read").inc()
            items += parsed.items
            rejects += [replace(reject, feed_url=feed_url) for reject in parsed.rejects]
            pending += [(grandchild, depth + 1) for grandchild in newest_first(parsed.children, _modified)]
        kept = [replace(item, feed_url=feed_url, first_seen=(index, position))
                for position, item in enumerate(items[:settings.max_entries])]
        if len(items) > settings.max_entries:
            rejects.append(Reject("item", feed_url, feed_url, "too-many-entries",
                                  f"{len(items) - settings.max_entries} more recent entries of its sitemaps "
                                  f"left out (more than {settings.max_entries})", None, now))
        return ParsedFeed(kept, rejects, None, index_parsed.children), responses

    def timing_name(self, element) -> str:
        return f"feeds/ms/{element[1]}"

    def url_of(self, element) -> str:
        return element[1]

    def emit(self, element, outcome):
        _, feed_url, state = element
        now = datetime.now(UTC)
        if isinstance(outcome, _Skipped):  # not due: the state stays as it is
            counter("feeds/not_due").inc()
            if state.disabled:  # reported on every run, not only when it is retried
                counter(f"feeds/disabled/{feed_url}").inc()
            yield beam.pvalue.TaggedOutput(PollFeeds.STATES, state)
            return
        self.polled.inc()
        if isinstance(outcome, FetchError):
            self.failed.inc()
            counter(f"feeds/failed/{failure_label(outcome)}/{feed_url}").inc()
            new_state = after_failure(state, outcome.error_type, str(outcome), now, self.feed_settings,
                                      outcome.retry_after_s)
            if new_state.disabled:
                counter(f"feeds/disabled/{feed_url}").inc()
            yield beam.pvalue.TaggedOutput(PollFeeds.STATES, new_state)
            yield beam.pvalue.TaggedOutput(PollFeeds.REJECTS, Reject(
                "feed", feed_url, feed_url, outcome.error_type, str(outcome),
                outcome.http_status, now))
            return
        result, response, sitemaps, digest = outcome
        if isinstance(result, _Skipped):  # 304 or the same body: nothing to parse
            counter(f"feeds/{result.status.replace('-', '_')}").inc()
            yield beam.pvalue.TaggedOutput(PollFeeds.STATES, _counted(after_success(
                state, result.status, now, self.feed_settings, result.etag, result.last_modified,
                wait=None, interval=next_interval(state, False, [], now, self.feed_settings))))
            return
        self.seen.inc(len(result.items) + sum(reject.stage != "feed" for reject in result.rejects))
        yield from result.items
        if self.keep_bodies:
            for asked, read in ((feed_url, response), *((sitemap.url, sitemap) for sitemap in sitemaps)):
                yield beam.pvalue.TaggedOutput(PollFeeds.BODIES, Page(
                    item=FeedItem(url=asked, feed_url=feed_url), final_url=read.url,
                    status=read.status, content_type=read.content_type, body=read.body,
                    fetched_at=read.fetched_at, reason=read.reason, headers=read.headers,
                    request_headers=read.request_headers))
        for reject in result.rejects:
            yield beam.pvalue.TaggedOutput(PollFeeds.REJECTS, reject)
        dates = [item.published_at for item in result.items if item.published_at]
        interval = next_interval(state, True, dates, now, self.feed_settings)
        new_state = after_success(state, "ok", now, self.feed_settings, response.etag, response.last_modified,
                                  digest, result.wait, interval)
        if result.children:  # an index is never asked conditionally: a 304 would hide its sitemaps
            new_state = replace(new_state, etag=None, last_modified=None)
        yield beam.pvalue.TaggedOutput(PollFeeds.STATES, _counted(new_state))


def _counted(state: FeedState) -> FeedState:
    """The state, its next wait counted in the summary's buckets of feeds by interval."""
    counter(f"feeds/interval/{interval_bucket(state)}").inc()
    return state


class PollFeeds(beam.PTransform):
    """(index, URL, FeedState) -> FeedItem; failed feeds and entries on
    `rejects`; every feed's new state on `states`; with `keep_bodies`, each
    feed read anew as a Page on `bodies` (for the raw archive)."""

    REJECTS = "rejects"
    STATES = "states"
    BODIES = "bodies"

    def __init__(self, settings: FetchSettings, feed_settings: FeedSettings, keep_bodies: bool = False):
        super().__init__()
        self.settings, self.feed_settings, self.keep_bodies = settings, feed_settings, keep_bodies

    def expand(self, feeds):
        return feeds | "Poll" >> beam.ParDo(_PollFeedFn(self.settings, self.feed_settings,
                                                        self.keep_bodies)).with_outputs(
            self.REJECTS, self.STATES, self.BODIES, main="items")


def forget_contents(state: FeedState) -> FeedState:
    """The state with no memory of the feed's last body: polled and parsed in full next time."""
    return replace(state, etag=None, last_modified=None, body_hash=None)


class _SaveStatesFn(beam.DoFn):
    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def process(self, states: list[FeedState], written_paths=(), retry_feeds=()):
        retry = set(retry_feeds)
        yield save_states(self.out_dir, [forget_contents(state) if state.url in retry else state
                                         for state in states])


class WriteFeedStates(beam.PTransform):
    """Every feed's state -> DIR/_state/feeds.json, replaced atomically.

    `after` (the dataset's written paths) is taken as a side input so the
    state is saved only once the items it vouches for are written: a run
    that dies before, re-polls those feeds unconditionally next time.
    A feed whose articles failed for a temporary reason (`rejects`: timeouts,
    429, 5xx) forgets its validators, so the next poll lists those articles
    again even if the feed has not changed; the ones already stored are
    dropped as seen, the failed ones are retried.
    """

    def __init__(self, out_dir: str, after=None, rejects=None):
        super().__init__()
        self.out_dir, self.after, self.rejects = out_dir, after, rejects

    def expand(self, states):
        every = states | "All" >> beam.combiners.ToList().without_defaults()
        pipeline = states.pipeline
        after = self.after if self.after is not None else pipeline | "NothingWritten" >> beam.Create([])
        rejects = self.rejects if self.rejects is not None else pipeline | "NoRejects" >> beam.Create([])
        retry = (rejects
                 | "TemporaryFailures" >> beam.Filter(
                     lambda reject: reject.stage == "fetch" and is_temporary(reject.error_type,
                                                                             reject.http_status))
                 | "TheirFeeds" >> beam.Map(lambda reject: reject.feed_url))
        return every | "Save" >> beam.ParDo(_SaveStatesFn(self.out_dir), beam.pvalue.AsList(after),
                                           beam.pvalue.AsList(retry))

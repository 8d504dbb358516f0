"""The typed records that flow between stages.

Feed item -> fetched page -> article; anything that fails becomes a Reject,
anything dropped as a copy a Duplicate. Every record has a fixed schema.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class FeedItem:
    """One entry of one feed: a link to an article, with what the feed says about it."""

    url: str
    feed_url: str
    title: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    # (feed index in the feed list, entry index in the feed): decides "first seen".
    first_seen: tuple[int, int] = (0, 0)
    # The feed was read from a local file, so file:// links in it may be followed.
    from_local_feed: bool = False
    # Other entries (other feeds, same feed twice) that link to the same URL;
    # they are fetched once and end as `url` duplicates of this article.
    also_listed: tuple[FeedItem, ...] = ()


@dataclass(frozen=True)
class Page:
    """A downloaded article page."""

    item: FeedItem
    final_url: str
    status: int
    content_type: str
    body: bytes
    fetched_at: datetime
    # As the server said them (the raw archive keeps them with the body).
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    request_headers: tuple[tuple[str, str], ...] = ()
    # Where the raw archive keeps this page: a WARC file below DIR, and the
    # offset of its response record (transforms/archive.py).
    warc_file: str | None = None
    warc_offset: int | None = None


@dataclass(frozen=True)
class Mention:
    actor: str
    count: int
    in_title: bool


@dataclass(frozen=True)
class Article:
    """A clean, classified article: one row of the `articles` table."""

    article_id: str
    url: str
    canonical_url: str
    source: str
    feed_url: str
    title: str
    text: str
    published_at: datetime
    date_source: str
    fetched_at: datetime
    content_hash: str
    word_count: int
    authors: tuple[str, ...] = ()
    section: str | None = None
    clutter_removed: tuple[str, ...] = ()
    language: str = "und"
    language_confidence: float = 0.0
    actors: tuple[str, ...] = ()
    primary_actor: str = "none"
    mentions: tuple[Mention, ...] = ()
    event_types: tuple[str, ...] = ()
    item: FeedItem | None = field(default=None, compare=False)
    # Copies this article absorbed in dedup; they point at it once it is kept.
    copies: tuple[Duplicate, ...] = field(default=(), compare=False)
    # MinHash of the text as uint32 bytes (near-duplicate detection; stored
    # for later runs).
    signature: bytes = field(default=b"", compare=False)
    # The figures the text states (neardup.figures), taken with the signature:
    # dedup compares them, the write stage and the memory store them.
    numbers: frozenset[str] = field(default=frozenset(), compare=False)
    # The lines the site-template step removed, "<kind> <line hash>": what
    # `reprocess --what text` removes again.
    template_lines: tuple[str, ...] = ()
    # The page as fetched, in the raw archive (None: not archived).
    warc_file: str | None = None
    warc_offset: int | None = None
    # What produced the row's values: the version and the rules' fingerprint
    # (tagging.py), and when `reprocess` last changed it (None: never).
    code_version: str | None = None
    reprocessed_at: datetime | None = None
    # Where the outlet is based (ISO 3166-1 alpha-2; schemas/data/outlets.yaml), or None.
    source_country: str | None = None
    # What the page's schema.org markup says (isAccessibleForFree), or None.
    is_accessible_for_free: bool | None = None


@dataclass(frozen=True)
class Duplicate:
    """A feed item dropped because another article already carries its story."""

    article_id: str
    url: str
    source: str
    feed_url: str
    published_at: datetime | None
    duplicate_of: str
    method: str  # url | exact | near
    similarity: float
    detected_at: datetime


@dataclass(frozen=True)
class Reject:
    """A feed or feed item that failed, where and why."""

    stage: str  # feed | item | fetch | clean
    url: str
    feed_url: str
    error_type: str
    message: str
    http_status: int | None
    rejected_at: datetime


@dataclass(frozen=True)
class FeedState:
    """What is remembered of one feed between polls (DIR/_state/feeds.json)."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    # ok | not-modified | unchanged | an error type of the last poll
    last_status: str = ""
    last_polled_at: datetime | None = None
    failures: int = 0  # consecutive
    next_poll_at: datetime | None = None
    disabled: bool = False
    last_error: str | None = None
    # The interval the feed itself asks for (<ttl>, sy:updatePeriod), kept
    # across 304s, which do not repeat it.
    min_interval_s: float | None = None
    # The wait its own pace calls for (adaptive polling), and why, in words.
    interval_s: float | None = None
    interval_reason: str | None = None
    # The pace it was learned from: this many entries published since then.
    paced_entries: int | None = None
    paced_since: datetime | None = None


@dataclass(frozen=True)
class BoilerplateLine:
    """A line that is the template of some source, as the cross-source
    memory remembers it: its hash, the hashes of the sources it was a
    template line of (a bounded number) and when it was last seen."""

    line: str
    sources: tuple[str, ...]
    last_seen: datetime


@dataclass(frozen=True)
class SourceHistory:
    """One recent article of a source, as template learning remembers it:
    the hashed template keys of its lines."""

    source: str
    article_id: str
    seen_at: datetime
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Fingerprint:
    """What an earlier run stored, as far as deduplication needs it."""

    kind: str  # url | id | hash
    key: str
    article_id: str


def rejects_for(item: FeedItem, stage: str, error_type: str, message: str,
                http_status: int | None, at: datetime) -> list[Reject]:
    """One reject per feed entry behind `item`: itself and its other listings."""
    return [
        Reject(stage=stage, url=entry.url, feed_url=entry.feed_url,
               error_type=error_type, message=message,
               http_status=http_status, rejected_at=at)
        for entry in (item, *item.also_listed)
    ]

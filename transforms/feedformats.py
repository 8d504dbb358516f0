"""The feed formats feedparser does not read: JSON Feed and sitemaps.

A JSON Feed (jsonfeed.org, 1.0 and 1.1) is read with the standard json
module. A sitemap (sitemaps.org: a `urlset` of pages or a `sitemapindex`
of sitemaps, plain or gzipped, with Google News' `<news:news>` entries) is
read with lxml's incremental parser, elements dropped as they are read, so
a 50,000-URL sitemap costs little memory; entities are not expanded and
nothing is fetched by the parser (our guarded client fetches every child
sitemap). We read sitemaps ourselves rather than through
ultimate-sitemap-parser: it is GPL-3.0, drops an index's <lastmod>, and
logs parse errors instead of raising them.

Each reader gives FeedEntry tuples; feeds.py follows them as it follows
RSS and Atom entries. `declared_feeds` reads the feeds a web page links to
(<link rel="alternate" type=...>, the types in schemas/data/discovery.yaml).
"""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import re
import zlib
from datetime import UTC, datetime
from functools import cache
from typing import NamedTuple
from urllib.parse import urljoin

import lxml.html
from lxml import etree

from schemas import load_data

from .failures import FetchError


class FeedEntry(NamedTuple):
    link: str
    title: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    # A sitemap's <lastmod>: how recent the page is, not when it was published.
    modified_at: datetime | None = None


class ChildSitemap(NamedTuple):
    url: str
    modified_at: datetime | None


class Sitemap(NamedTuple):
    entries: list[FeedEntry]
    children: list[ChildSitemap]
    # Entries left out for being older than the window asked for.
    too_old: int
    # Why the document stops short (entries read before that are kept), or None.
    cut_short: str | None = None


_JSON_START = re.compile(rb"^(?:\xef\xbb\xbf)?\s*\{")
_JSON_FEED_VERSION = "https://jsonfeed.org/version/1"
_GZIP_MAGIC = b"\x1f\x8b"
# The root element of a sitemap, after an XML declaration and comments.
_SITEMAP_ROOT = re.compile(rb"^(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?"
                           rb"(?:<!--.*?-->\s*|<\?[^>]*>\s*|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>\s*)*"
                           rb"<(?:[A-Za-z][\w.-]*:)?(urlset|sitemapindex)[\s>/]", re.S)


def is_json_feed(body: bytes) -> bool:
    return bool(_JSON_START.match(body[:1024]))


def is_sitemap(body: bytes) -> bool:
    return bool(_SITEMAP_ROOT.match(body[:4096]))


def is_gzipped(body: bytes) -> bool:
    return body[:2] == _GZIP_MAGIC


def may_be_sitemap_index(body: bytes) -> bool:
    """A sitemap index, or gzipped (which may be one)."""
    found = _SITEMAP_ROOT.match(body[:4096])
    return body[:2] == _GZIP_MAGIC or bool(found and found[1] == b"sitemapindex")


def newest_first(dated: list, when) -> list:
    """`dated` by `when(one)`, the newest first, the undated after them in their order."""
    return sorted(dated, key=lambda one: (when(one) is None, -(when(one).timestamp() if when(one) else 0)))


def read_json_feed(body: bytes, max_entries: int) -> list[FeedEntry]:
    """The entries of a JSON Feed; FetchError("parse") for any other JSON."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise FetchError("parse", f"not a readable JSON Feed: {str(error)[:200]}") from None
    if not (isinstance(document, dict) and str(document.get("version", "")).startswith(_JSON_FEED_VERSION)):
        raise FetchError("parse", f"JSON, but not a JSON Feed (no \"version\": \"{_JSON_FEED_VERSION}.1\")")
    items = document.get("items")
    if not isinstance(items, list):
        raise FetchError("parse", "a JSON Feed without an \"items\" list")
    if len(items) > max_entries:
        raise FetchError("too-many-entries", f"{len(items)} entries, more than {max_entries}")
    feed_author = _author_names(document)
    return [FeedEntry(link=_text(item.get("url")) or _text(item.get("external_url")) or "",
                      title=_text(item.get("title")),
                      author=_author_names(item) or feed_author,
                      published_at=w3c_time(item.get("date_published") or item.get("date_modified")))
            for item in items if isinstance(item, dict)]


def _author_names(holder: dict) -> str | None:
    """1.1's `authors` list, or 1.0's `author` object: the names, comma-joined."""
    authors = holder.get("authors")
    if not isinstance(authors, list):
        authors = [holder.get("author")]
    names = [_text(author.get("name")) for author in authors if isinstance(author, dict)]
    return ", ".join(name for name in names if name) or None


def _text(value) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def w3c_time(value) -> datetime | None:
    """A W3C / RFC 3339 date or time (2024-05-01, 2024-05-01T10:00Z, ...) in
    UTC; a time without a zone is taken as UTC; anything else is None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # 9999-12-31T23:00-05:00 is past what a datetime holds
        return None


def unzipped(body: bytes, max_bytes: int) -> bytes:
    """A gzipped body unzipped, refusing more than `max_bytes` (a gzip bomb
    unzips a few kB into gigabytes)."""
    if body[:2] != _GZIP_MAGIC:
        return body
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as stream:
            plain = stream.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise FetchError("parse", f"a damaged gzip file: {error}") from None
    if len(plain) > max_bytes:
        raise FetchError("too-large", f"larger than {max_bytes} bytes unzipped")
    return plain


def read_sitemap(plain: bytes, newer_than: datetime | None) -> Sitemap:
    """The pages (a `urlset`) or child sitemaps (a `sitemapindex`) of one
    sitemap (unzipped). An entry dated before `newer_than` (its news
    publication date, else its <lastmod>) is left out and counted; an
    undated one is kept."""
    if not _SITEMAP_ROOT.match(plain[:4096]):
        raise FetchError("parse", "not a sitemap (no <urlset> or <sitemapindex>)")
    entries, children, too_old = [], [], 0
    events = etree.iterparse(io.BytesIO(plain), events=("end",), resolve_entities=False, no_network=True,
                             huge_tree=False, load_dtd=False, recover=False)
    try:
        for _, element in events:
            kind = etree.QName(element).localname if isinstance(element.tag, str) else ""
            if kind not in ("url", "sitemap"):
                continue
            fields = _fields(element)
            element.clear(keep_tail=True)
            while element.getprevious() is not None:
                del element.getparent()[0]
            modified = w3c_time(fields.get("lastmod"))
            if kind == "sitemap":
                if fields.get("loc"):
                    children.append(ChildSitemap(fields["loc"], modified))
                continue
            published = w3c_time(fields.get("publication_date"))
            if newer_than is not None and (published or modified or newer_than) < newer_than:
                too_old += 1
                continue
            entries.append(FeedEntry(link=fields.get("loc", ""), title=fields.get("title") or None,
                                     published_at=published, modified_at=modified))
    except etree.XMLSyntaxError as error:
        if not entries and not children:
            raise FetchError("parse", f"not a readable sitemap: {str(error)[:200]}") from None
        return Sitemap(entries, children, too_old, str(error)[:200])
    return Sitemap(entries, children, too_old)


def _fields(element) -> dict[str, str]:
    """An entry's <loc> and <lastmod>, and its Google News <news:title> and
    <news:publication_date> (not an image's or video's title)."""
    fields = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        if name == "news":
            fields.update({etree.QName(part).localname: (part.text or "").strip()
                           for part in child.iter() if isinstance(part.tag, str)})
        elif name in ("loc", "lastmod"):
            fields[name] = (child.text or "").strip()
    return fields


class DeclaredFeed(NamedTuple):
    url: str
    title: str | None


@cache
def discovery_rules() -> dict:
    """schemas/data/discovery.yaml: feed link types and the usual feed paths."""
    rules = load_data("discovery.yaml")
    return {"feed_paths": tuple(rules["feed_paths"]), "feed_types": frozenset(rules["feed_types"])}


def declared_feeds(body: bytes, page_url: str) -> list[DeclaredFeed]:
    """The feeds a web page declares (`<link rel="alternate" type="application/rss+xml"
    href=...>` and the other feed types), resolved against its <base href>, in order, once each."""
    try:
        tree = lxml.html.fromstring(body)
    except (etree.ParserError, ValueError):
        return []
    base = page_url
    for element in tree.iter("base"):
        if element.get("href"):
            with contextlib.suppress(ValueError):
                base = urljoin(page_url, element.get("href").strip())
            break
    types, found = discovery_rules()["feed_types"], {}
    for link in tree.iter("link"):
        rels = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").lower().split(";")[0].strip()
        if "alternate" in rels and kind in types and (link.get("href") or "").strip():
            try:
                url = urljoin(base, link.get("href").strip())
            except ValueError:  # an href no URL parser reads: not one to offer
                continue
            found.setdefault(url, DeclaredFeed(url, (link.get("title") or "").strip() or None))
    return list(found.values())

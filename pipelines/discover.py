"""`news-ingest discover`: find and check the feeds of sites, print them, write OPML.

Sites are looked at concurrently (the client's per-host limits and delay
still hold); what each found is printed in the order the sites were given.
The OPML is written aside and renamed into place, and `run --feeds FILE`
reads it as it is.
"""
from __future__ import annotations

import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

from schemas.settings import FetchSettings
from transforms.discovery import Discovery, discover
from transforms.httpclient import Fetcher, link_error

from .arguments import UsageError


def check_pages(urls: list[str]) -> None:
    """Every URL one discover can start from: http(s), nothing a parser reads two ways."""
    for url in urls:
        error = link_error(url, allow_file=False)
        if error:
            raise UsageError(f"{url}: {error}")


def discover_sites(urls: list[str], settings: FetchSettings) -> list[Discovery]:
    """Each page's discovery, in the order given; a feed found from an earlier
    page (two pages of one site) is offered there only."""
    fetcher = Fetcher(settings)
    now = datetime.now(UTC)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(settings.concurrency, len(urls)))) as pool:
            found = list(pool.map(lambda url: discover(fetcher, settings, url, now), urls))
    finally:
        fetcher.close()
    offered, once = set(), []
    for site in found:
        once.append(site._replace(feeds=[feed for feed in site.feeds if feed.url not in offered]))
        offered |= {feed.url for feed in site.feeds}
    return once


def render(found: list[Discovery], verbose: bool) -> str:
    """What a person reads: each site, its feeds (kind, entries, freshness, how found)."""
    lines = []
    for site in found:
        lines.append(site.page_url + (f"  ({site.error})" if site.error else ""))
        for feed in site.feeds:
            newest = f", newest {feed.newest:%Y-%m-%d %H:%M} UTC" if feed.newest else ""
            one, many = ("sitemap", "sitemaps") if feed.kind == "sitemap index" else ("entry", "entries")
            counted = f"{feed.items:,} {one if feed.items == 1 else many}"
            lines.append(f"  {feed.kind:<14} {counted}{newest}  {feed.url}  ({feed.found_by})")
        if not site.feeds:
            lines.append("  no feed found")
        if verbose:
            lines += [f"  not a feed: {url}  {why}" for url, why in site.refused]
    feeds = sum(len(site.feeds) for site in found)
    with_feeds = sum(1 for site in found if site.feeds)
    lines.append(f"{feeds:,} feed{'' if feeds == 1 else 's'} on {with_feeds:,} of {len(found):,} "
                 f"site{'' if len(found) == 1 else 's'}")
    return "\n".join(lines)


# Characters XML 1.0 cannot hold (a page's <link title> may carry them).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("", text)


def write_opml(found: list[Discovery], path: str) -> int:
    """The feeds found as an OPML 2.0 feed list, one outline per site; how many feeds."""
    opml = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(opml, "head")
    ElementTree.SubElement(head, "title").text = "Feeds found by news-ingest discover"
    ElementTree.SubElement(head, "dateCreated").text = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    body = ElementTree.SubElement(opml, "body")
    count = 0
    for site in found:
        if not site.feeds:
            continue
        group = ElementTree.SubElement(body, "outline", text=site.page_url)
        for feed in site.feeds:
            ElementTree.SubElement(group, "outline", type="rss", text=_xml_text(feed.title or feed.url),
                                   xmlUrl=_xml_text(feed.url), description=f"{feed.kind}, {feed.found_by}")
            count += 1
    target = Path(path)
    handle, aside = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            ElementTree.ElementTree(opml).write(stream, encoding="utf-8", xml_declaration=True)
        os.replace(aside, target)
    except BaseException:
        Path(aside).unlink(missing_ok=True)
        raise
    return count

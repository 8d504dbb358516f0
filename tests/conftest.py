"""Shared fixtures: the repository's demo pages, seed ground truth, a loopback site."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from .loopback import LoopbackSite

ROOT = Path(__file__).resolve().parent.parent
DEMO_PAGES = ROOT / "seeds" / "demo" / "pages"
SEED_TEXTS = Path(__file__).resolve().parent / "data" / "seeds"
DEMO_FEEDS = ROOT / "seeds" / "demo.opml"

# Seed text file -> the demo page built from it.
SEED_PAGES = {
    "000_d9df6ba20024fa5b.txt": "grasswire-coalition-ex-partner-weapons.html",
    "001_967cd6e8aa18a310.txt": "defensepost-shq-relocating-aleppo.html",
    "002_cbc5fa8c468d4c15.txt": "levantmonitor-us-strikes-tanf-militia.html",
    "003_b0149e79d6ed8d6d.txt": "syriahr-factions-advance-rif-dimashq.html",
    "004_101b7afe40c93a6a.txt": "arabtimes-rebels-probe-defection.html",
}


def normalise(text: str) -> str:
    """Whitespace (including no-break spaces) folded to single spaces."""
    return re.sub(r"\s+", " ", text).strip()


def seed_truth(name: str) -> tuple[str, list[str], list[str]]:
    """(headline, body lines, clutter lines) of one seed text."""
    clutter = json.loads((SEED_TEXTS / "clutter.json").read_text())[name]
    headline = json.loads((SEED_TEXTS / "headlines.json").read_text())[name]
    lines = [normalise(line) for line in (SEED_TEXTS / name).read_text().splitlines()]
    body = [line for line in lines
            if line and line not in clutter and line != normalise(headline)]
    return normalise(headline), body, [normalise(line) for line in clutter]


@pytest.fixture
def site():
    with LoopbackSite() as running:
        yield running


def stored_dataset(out: Path, records, days_ago: float = 1.0, lookback_days: int = 30):
    """A dataset folder holding `records` (articles, duplicates) as a run
    `days_ago` wrote them, with its memory built from the tables; returns
    the DatasetMemory a run over it looks up."""
    from collections import defaultdict
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    from pipelines.rebuild import rebuild_memory
    from schemas.settings import DedupSettings, MemorySettings
    from transforms.memory import DatasetMemory
    from transforms.write import partition_rows, write_partition

    run_id = (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y%m%dT%H%M%SZ") + "-abc123"
    partitions = defaultdict(list)
    for record in records:
        for partition, row in partition_rows(record, run_id, 64):
            partitions[partition].append(row)
    for partition, rows in partitions.items():
        write_partition(str(out), partition, rows, run_id, 1000)
    dedup = replace(DedupSettings(), lookback_days=lookback_days)
    rebuild_memory(str(out), MemorySettings(), dedup)
    return DatasetMemory(str(out), MemorySettings(), dedup)


def article_urls(out: Path) -> list[str]:
    """The dataset's article URLs, read file by file (no glob over `out`)."""
    return sorted(url for path in (out / "articles").rglob("*.parquet")
                  for url in pq.read_table(path, columns=["url"]).column("url").to_pylist())


# Local story pages that all name one section page as their canonical URL.
WORDS = ("convoy", "ceasefire", "province", "talks", "shelling", "council", "border", "aid",
         "delegation", "checkpoint", "brigade", "residents")


def story_page(number: int) -> str:
    text = " ".join(WORDS[(number + k) % len(WORDS)] for k in range(60))
    return (f"<html><head><title>Story {number}</title>"
            "<link rel='canonical' href='https://news.example/world/'></head><body><article>"
            f"<h1>Story {number}</h1><p>Report {number}: {text}.</p><p>Officials said story {number} "
            f"was the {number}th report of the week from the northern province.</p></article></body></html>")


def write_feed(folder: Path, numbers: range) -> Path:
    items = ""
    for number in numbers:
        (folder / f"story-{number}.html").write_text(story_page(number))
        items += (f"<item><title>Story {number}</title><link>story-{number}.html</link>"
                  f"<pubDate>Mon, 0{number % 9 + 1} Jun 2026 10:00:00 +0000</pubDate></item>")
    feed = folder / "feed.xml"
    feed.write_text(f"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>{items}"
                    "</channel></rss>")
    return feed


def assert_sound(out: Path, repair: bool = False) -> None:
    """`news-ingest verify` (with `repair`, `--repair`) ends finding nothing wrong."""
    from pipelines.verify import verify

    printed: list[str] = []
    assert verify(str(out), repair, printed.append) == 0, "\n".join(printed)


def page_of(path: Path, url: str | None = None, feed_time=None):
    """A fetched Page of a page on disk, as if served at `url`."""
    from datetime import UTC, datetime

    from schemas.records import FeedItem, Page

    url = url or path.resolve().as_uri()
    return Page(item=FeedItem(url=url, feed_url="file:///feed.xml", published_at=feed_time),
                final_url=url, status=200, content_type="text/html",
                body=path.read_bytes(), fetched_at=datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def cleaner():
    from schemas.settings import CleanSettings
    from transforms.clean import Cleaner

    return Cleaner(CleanSettings())

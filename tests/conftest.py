"""Shared fixtures and helpers: the repository's demo pages, seed ground truth,
a loopback site and the news site on it, `news-ingest run` with its summary,
the dataset read back. Test modules import helpers from here (fixtures need
no import), never from one another."""
from __future__ import annotations

import io
import json
import re
import tempfile
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import duckdb
import pyarrow.parquet as pq
import pytest

from .loopback import LoopbackSite, rss

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

    from pipelines.rebuild import rebuild_memory
    from schemas.layout import new_run_id
    from schemas.settings import DedupSettings, MemorySettings
    from transforms.memory import DatasetMemory
    from transforms.write import partition_rows, write_partition

    run_id = new_run_id(datetime.now(UTC) - timedelta(days=days_ago))
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
    from schemas.records import FeedItem, Page

    url = url or path.resolve().as_uri()
    return Page(item=FeedItem(url=url, feed_url="file:///feed.xml", published_at=feed_time),
                final_url=url, status=200, content_type="text/html",
                body=path.read_bytes(), fetched_at=datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def cleaner():
    from schemas.settings import CleanSettings
    from transforms.cleaner import Cleaner

    return Cleaner(CleanSettings())


# The demo pages as the news site serves them.
PAGES = {  # served path -> demo page
    "/p/grasswire": "grasswire-coalition-ex-partner-weapons.html",
    "/p/defensepost": "defensepost-shq-relocating-aleppo.html",
    "/p/levant": "levantmonitor-us-strikes-tanf-militia.html",
    "/p/sohr": "syriahr-factions-advance-rif-dimashq.html",
    "/p/arabtimes": "arabtimes-rebels-probe-defection.html",
    "/p/gulfwire": "gulfwire-rebels-probe-defection.html",
}


@pytest.fixture
def news_site(site, tmp_path):
    """Four feeds: a good one with a 404 and a slow article, one repeating a
    link and carrying a syndicated copy and a linkless entry, a broken one and
    a missing one. Returns the feed list file."""
    for path, name in PAGES.items():
        site.add(path, (DEMO_PAGES / name).read_bytes())
    site.add("/p/slow", "<html><body><p>late</p></body></html>", delay_s=2.5)
    site.add("/feeds/main.xml", rss([
        {"link": "/p/grasswire", "pubDate": "Thu, 03 Aug 2017 09:30:00 +0000"},
        {"link": "/p/defensepost", "pubDate": "Tue, 18 Sep 2018 14:12:00 +0000"},
        {"link": "/p/levant"}, {"link": "/p/missing"}, {"link": "/p/slow"}, {"link": "/p/sohr"},
    ]), content_type="application/rss+xml")
    site.add("/feeds/second.xml", rss([
        {"link": "/p/defensepost?utm_source=rss"},
        {"link": "/p/arabtimes", "pubDate": "Wed, 23 Sep 2015 08:00:00 +0000"},
        {"link": "/p/gulfwire", "pubDate": "Wed, 23 Sep 2015 11:00:00 +0000"},
        {"title": "an entry without a link"},
    ]), content_type="application/rss+xml")
    site.add("/feeds/broken.xml", '<?xml version="1.0"?><rss version="2.0"><channel><title>cut',
             content_type="application/rss+xml")
    listing = tmp_path / "feeds.txt"
    listing.write_text("\n".join(site.url(f"/feeds/{name}.xml")
                                 for name in ("main", "second", "broken", "gone")))
    return listing


class CliRun(NamedTuple):
    """What `news-ingest run` ended with: its exit status, what it printed,
    and its summary as `--summary-json` writes it (None when it wrote none)."""
    code: int
    printed: str
    summary: dict | None


def run_cli(*args: str) -> CliRun:
    """`news-ingest run ARGS` in this process. The summary is also written as
    JSON (to a file of its own unless ARGS name one with --summary-json) and
    read back: assert on its figures, not on the printed columns. Feeds are
    polled on every run (`--max-interval 0`) unless ARGS set the adaptive
    polling bounds: tests run twice in seconds what users run every 15 minutes.
    One process (`--workers 1`) unless ARGS say otherwise: this process serves
    the test's sites on threads, so workers would start as fresh processes,
    a second a run (tests/test_workers.py tests them)."""
    from pipelines.cli import main

    named = [arg.split("=", 1)[1] for arg in args if arg.startswith("--summary-json=")]
    named += [args[at + 1] for at, arg in enumerate(args[:-1]) if arg == "--summary-json"]
    with tempfile.TemporaryDirectory(prefix="news-ingest-summary-") as folder:
        summary_file = Path(named[-1]) if named else Path(folder) / "summary.json"
        extra = () if named else ("--summary-json", str(summary_file))
        if not any(arg.split("=")[0] in ("--max-interval", "--min-interval") for arg in args):
            extra += ("--max-interval", "0")
        if not any(arg.split("=")[0] == "--workers" for arg in args):
            extra += ("--workers", "1")
        captured = io.StringIO()
        with redirect_stdout(captured):
            code = main(["run", *args, *extra])
        summary = json.loads(summary_file.read_text()) if summary_file.exists() else None
    return CliRun(code, captured.getvalue(), summary)


def dataset_files(out: Path, *tables: str) -> set[Path]:
    """Parquet files of the dataset's tables (not of its _state)."""
    tables = tables or ("articles", "mentions", "duplicates", "rejects")
    return {path for table in tables for path in (out / table).rglob("*.parquet")}


def query(out: Path, table: str, sql: str = "select count(*) from t") -> list[tuple]:
    con = duckdb.connect()
    con.execute(f"create view t as select * from read_parquet('{out}/{table}/**/*.parquet', "
                "hive_partitioning=true)")
    return con.execute(sql).fetchall()


def memory_keys(out: Path) -> set[tuple[str, str, str]]:
    return set(duckdb.sql(f"select kind, key, article_id from read_parquet("
                          f"'{out}/_state/memory/keys/*/*.parquet')").fetchall())


def keys_of_tables(out: Path, lookback_days: int = 30) -> set[tuple[str, str, str]]:
    """The keys the memory must hold: what the tables say -- text hashes of
    the articles ingested in the look-back window only."""
    from schemas.layout import run_time
    from transforms.memory import article_keys, duplicate_keys

    since = datetime.now(UTC) - timedelta(days=lookback_days)
    keys = {(kind, key, article_id)
            for url, canonical, article_id, text_hash, run_id in query(
                out, "articles", "select url, canonical_url, article_id, content_hash, run_id from t")
            for kind, key in article_keys(url, canonical, article_id, text_hash)
            if kind != "hash" or run_time(run_id) >= since}
    if (out / "duplicates").exists():
        keys |= {(kind, key, kept) for url, article_id, kept in query(
                     out, "duplicates", "select url, article_id, duplicate_of from t")
                 for kind, key in duplicate_keys(url, article_id)}
    return keys


def query_examples() -> list[str]:
    """The Python examples of the README's "Query the data" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Query the data\n"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


# `news-ingest report`: its tables' headings, the demo dataset it reads.
HEADINGS = ["Top actors", "Actors named together", "Sources", "Sources by actor", "Languages",
            "Duplicates by method", "Largest syndication clusters", "Rejects by stage and error type",
            "Feeds failing or disabled", "Feeds by polling interval"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The bundled demo (`make run`) ingested once."""
    out = tmp_path_factory.mktemp("demo") / "data"
    code, printed, _ = run_cli("--feeds", str(ROOT / "seeds" / "demo.opml"), "--out", str(out))
    assert code == 0, printed
    return out


def report_cli(capsys, *args: str) -> tuple[int, str, str]:
    from pipelines.cli import main

    code = main(["report", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# Articles of the site-template tests (test_templates, test_boilerplate).
TEMPLATE_NOW = datetime(2026, 1, 10, tzinfo=UTC)
PLACES = ["Tanf", "Rukban", "Deir ez-Zor", "Palmyra", "Raqqa", "Idlib", "Daraa", "Homs", "Hama",
          "Aleppo", "Manbij", "Kobani"]


def story(number: int) -> str:
    """A sentence of its own for every story (numbers alone do not make lines differ in kind)."""
    place, other = PLACES[number % len(PLACES)], PLACES[(number * 5 + 1) % len(PLACES)]
    return (f"Fighters moved from {place} towards {other} at dawn on day {number}, "
            f"a spokesperson for the {place} council told reporters.")


def article(source: str, number: int, *extra: str, day: int = 1):
    """An Article of `source` published at TEMPLATE_NOW: two story lines around `extra`."""
    from schemas.records import Article, FeedItem
    from transforms.textnorm import content_hash

    text = "\n\n".join([story(number), *extra, story(number + 100)])
    item = FeedItem(url=f"https://{source}/{number}", feed_url=f"https://{source}/rss")
    return Article(article_id=f"{source}-{number}", url=item.url, canonical_url=item.url,
                   source=source, feed_url=item.feed_url, title=f"Story {number}", text=text,
                   published_at=TEMPLATE_NOW, date_source="feed",
                   fetched_at=TEMPLATE_NOW + timedelta(minutes=day),
                   content_hash=content_hash(text), word_count=len(text.split()), item=item)


def pipeline():
    from apache_beam.testing.test_pipeline import TestPipeline

    return TestPipeline(runner="FnApiRunner")


# `news-ingest ARGS` (run with `python -c`, then `when where ARGS`) that SIGKILLs itself
# `before` or `after` the first rename (FileSystems.rename: how files are made visible)
# whose destination holds `where`.
SELF_KILLING_CLI = """
import os, signal, sys
from apache_beam.io.filesystems import FileSystems
when, where = sys.argv[1], sys.argv[2]
real_rename = FileSystems.rename

def rename(sources, destinations):
    for source, destination in zip(sources, destinations):
        if when == "before" and where in destination:
            os.kill(os.getpid(), signal.SIGKILL)
        real_rename([source], [destination])
        if when == "after" and where in destination:
            os.kill(os.getpid(), signal.SIGKILL)

FileSystems.rename = staticmethod(rename)
from pipelines.cli import main
sys.exit(main(sys.argv[3:]))
"""

"""The dataset memory: a run reads only what its new items need, and still
never ingests anything twice, however old."""
from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stderr
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.cli import main
from schemas.layout import TABLES
from schemas.records import Article, Duplicate
from schemas.settings import DedupSettings, MemorySettings
from transforms.dedup import signed
from transforms.memory import (
    bucket_of,
    expired_texts,
    memory_path,
    stored_keys,
)
from transforms.neardup import Signer
from transforms.textnorm import content_hash
from transforms.urls import url_id

from .conftest import DEMO_PAGES, PAGES, keys_of_tables, memory_keys, query, run_cli, stored_dataset
from .loopback import rss

STORY = (DEMO_PAGES / PAGES["/p/levant"]).read_bytes()


def stored_article(url: str, text: str = "a story stored long ago, about Syria and its war") -> Article:
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    return signed(Article(article_id=url_id(url), url=url, canonical_url=url, source="127.0.0.1",
                          feed_url="https://feeds.example/f.xml", title="Stored", text=text,
                          published_at=moment, date_source="feed", fetched_at=moment,
                          content_hash=content_hash(text), word_count=len(text.split())),
                  Signer(DedupSettings()))


def args(listing: Path | str, out: Path, *more: str) -> tuple[str, ...]:
    return ("--feeds", str(listing), "--out", str(out), "--allow-private-network", "--host-delay", "0",
            *more)


def run_items(*arguments: str) -> dict:
    """`news-ingest run`; its summary's item counts (the run must succeed)."""
    code, printed, summary = run_cli(*arguments)
    assert code == 0, printed
    return summary["items"]


@pytest.mark.e2e
def test_a_url_stored_a_year_ago_is_never_fetched_again(site, tmp_path):
    out = tmp_path / "out"
    stored_dataset(out, [stored_article(site.url("/old/story"))], days_ago=400)
    site.add("/old/story", STORY)
    site.add("/new/story", STORY.replace(b"</p>", b" A new paragraph of reporting.</p>", 1))
    site.add("/feed.xml", rss([{"link": "/old/story"}, {"link": "/new/story"}]),
             content_type="application/rss+xml")
    items = run_items(*args(site.url("/feed.xml"), out))
    assert (items["already_ingested"], items["articles"]) == (1, 1)
    assert site.hits.get("/old/story", 0) == 0, "a URL stored past the look-back window was fetched"
    assert site.hits["/new/story"] == 1
    assert memory_keys(out) == keys_of_tables(out)


@pytest.mark.e2e
def test_a_run_never_opens_the_stored_tables(site, tmp_path):
    """Dedup answers from the memory: with every stored table file unreadable,
    a run still finds the copy of a stored story and ingests the new one."""
    out = tmp_path / "out"
    stored = stored_article(site.url("/old/story"))
    copy = Duplicate(article_id=url_id(site.url("/copy")), url=site.url("/copy"), source="127.0.0.1",
                     feed_url=stored.feed_url, published_at=stored.published_at,
                     duplicate_of=stored.article_id, method="exact", similarity=1.0,
                     detected_at=stored.published_at)
    stored_dataset(out, [stored, copy], days_ago=2)
    tables = [path for table in TABLES for path in (out / table).rglob("*.parquet")]
    assert {path.relative_to(out).parts[0] for path in tables} >= {"articles", "duplicates"}
    for path in tables:
        path.write_bytes(b"not parquet any more")
    site.add("/old/story?utm_source=feed", STORY)
    site.add("/new/story", STORY)
    site.add("/feed.xml", rss([{"link": "/old/story?utm_source=feed"}, {"link": "/new/story"}]),
             content_type="application/rss+xml")
    items = run_items(*args(site.url("/feed.xml"), out, "--compact-every", "0"))
    assert (items["already_ingested"], items["articles"]) == (1, 1)
    site.add("/feed.xml", rss([{"link": "/copy?utm_source=feed"}]), content_type="application/rss+xml")
    assert run_items(*args(site.url("/feed.xml"), out, "--compact-every", "0"))["already_ingested"] == 1, \
        "a stored duplicate's URL is known from the memory alone"


@pytest.mark.e2e
def test_a_dataset_without_memory_gets_one_built_once_and_loses_nothing(site, tmp_path):
    """An older version's dataset: the first run builds the memory from the
    tables, says so, and fetches nothing it already holds."""
    out = tmp_path / "out"
    for path in PAGES:
        site.add(path, (DEMO_PAGES / PAGES[path]).read_bytes())
    site.add("/feed.xml", rss([{"link": path} for path in PAGES]), content_type="application/rss+xml")
    feed = site.url("/feed.xml")
    assert run_cli(*args(feed, out))[0] == 0
    written = query(out, "articles") + query(out, "duplicates")
    shutil.rmtree(out / "_state" / "memory")
    (out / "_state" / "feeds.json").unlink()
    fetched = dict(site.hits)
    notes = io.StringIO()
    with redirect_stderr(notes):
        items = run_items(*args(feed, out))
    assert "built the dataset memory from" in notes.getvalue()
    assert items["already_ingested"] == len(PAGES)
    assert {path: count for path, count in site.hits.items() if path.startswith("/p/")} == \
        {path: count for path, count in fetched.items() if path.startswith("/p/")}
    assert query(out, "articles") + query(out, "duplicates") == written
    assert memory_keys(out) == keys_of_tables(out)


@pytest.mark.e2e
def test_a_truncated_memory_file_is_set_aside_and_the_memory_rebuilt(site, tmp_path):
    out = tmp_path / "out"
    site.add("/p/levant", STORY)
    site.add("/feed.xml", rss([{"link": "/p/levant"}]), content_type="application/rss+xml")
    assert run_cli(*args(site.url("/feed.xml"), out))[0] == 0
    folder = bucket_of(url_id(site.url("/p/levant")), MemorySettings().buckets)  # what the run looks up
    bucket = next((out / "_state" / "memory" / "keys" / f"bucket={folder}").glob("*.parquet"))
    bucket.write_bytes(bucket.read_bytes()[:40])
    (out / "_state" / "feeds.json").unlink()
    errors = io.StringIO()
    with redirect_stderr(errors):
        assert run_items(*args(site.url("/feed.xml"), out))["already_ingested"] == 1
    assert str(bucket) in errors.getvalue() and "rebuilt from the tables" in errors.getvalue()


@pytest.mark.e2e
def test_damage_inside_a_memory_file_stops_the_run_with_the_way_out(site, tmp_path):
    out = tmp_path / "out"
    site.add("/p/levant", STORY)
    site.add("/feed.xml", rss([{"link": "/p/levant"}]), content_type="application/rss+xml")
    assert run_cli(*args(site.url("/feed.xml"), out))[0] == 0
    folder = bucket_of(url_id(site.url("/p/levant")), MemorySettings().buckets)
    bucket = next((out / "_state" / "memory" / "keys" / f"bucket={folder}").glob("*.parquet"))
    data = bytearray(bucket.read_bytes())
    start = pq.ParquetFile(bucket).metadata.row_group(0).column(0).data_page_offset + 10
    data[start:start + 30] = b"\xff" * 30  # the footer still reads: only a read of the rows fails
    bucket.write_bytes(bytes(data))
    (out / "_state" / "feeds.json").unlink()
    errors = io.StringIO()
    with redirect_stderr(errors):
        code, _, _ = run_cli(*args(site.url("/feed.xml"), out))
    assert code == 1
    assert str(bucket) in errors.getvalue() and "memory --rebuild" in errors.getvalue()
    assert main(["memory", "--rebuild", "--out", str(out)]) == 0
    assert run_items(*args(site.url("/feed.xml"), out))["already_ingested"] == 1


def test_a_lookup_reads_the_one_bucket_of_its_key(tmp_path):
    url = "https://news.example/a"
    stored_dataset(tmp_path, [stored_article(url), stored_article("https://news.example/b")], days_ago=3)
    key, buckets = url_id(url), MemorySettings().buckets
    found = stored_keys(str(tmp_path), bucket_of(key, buckets), {key}, None)
    assert {(fp.kind, fp.key, fp.article_id) for fp in found} == {("url", key, key), ("id", key, key)}
    other = next(f"{n:03x}" for n in range(buckets) if f"{n:03x}" != bucket_of(key, buckets))
    assert stored_keys(str(tmp_path), other, {key}, None) == [], "a key is only in its own bucket"


def test_signatures_past_the_look_back_window_are_deleted_by_whole_days(tmp_path):
    now = datetime(2026, 6, 30, 12, tzinfo=UTC)
    for days_ago in (0, 29, 31, 90):
        day = (now - timedelta(days=days_ago)).date().isoformat()
        folder = Path(memory_path(str(tmp_path), "texts", f"day={day}"))
        folder.mkdir(parents=True)
        (folder / "texts-x.parquet").write_bytes(b"")
    expired = sorted(Path(path).parent.name for path in expired_texts(str(tmp_path), 30, now))
    assert expired == ["day=2026-04-01"]  # 31 days back is inside the day of margin
    assert expired_texts(str(tmp_path), 0, now) == [], "0 days: signatures are kept for good"


@pytest.mark.e2e
def test_memory_command_reports_and_rebuilds(tmp_path, capsys):
    out = tmp_path / "out"
    stored_dataset(out, [stored_article("https://news.example/a")], days_ago=1)
    assert main(["memory", "--out", str(out)]) == 0
    assert "keys: 3 rows in 2 buckets" in capsys.readouterr().out  # url and id share a key
    manifest = Path(memory_path(str(out), "manifest.json"))
    manifest.write_text(json.dumps({"format": 0}))
    assert main(["memory", "--out", str(out)]) == 1
    assert "--rebuild" in capsys.readouterr().err
    assert main(["memory", "--out", str(out), "--rebuild"]) == 0
    assert "from 1 files (1 articles, 0 duplicates): 3 keys, 1 signatures" in capsys.readouterr().out
    assert json.loads(manifest.read_text())["texts_days"] == 30
    assert main(["memory", "--out", str(tmp_path / "nowhere")]) == 1

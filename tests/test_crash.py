"""Crash safety of `news-ingest run`: `kill -9` a run anywhere, then run again.

Whichever moment the kill lands, the next run must start (the kernel drops
the killed run's flock), no half-written or uncommitted file may be left and
every visible file must be whole, every item the feeds list must end in
`articles` or `duplicates` exactly once (an article with all its mentions),
the feed state must parse, the dataset memory must hold exactly what the
tables do, a further run must write nothing new, and `verify` must find
the dataset sound (and `verify --repair` mend what the kill left).

Two kinds of kill: a real SIGKILL from outside at moments picked by what the
run has visibly done (pages being fetched, first file on disk), and a run
that SIGKILLs itself at an exact point of its commit (transforms/write.py:
hidden files, then the commit list, then the renames; then the feed state,
written aside and renamed), so the narrow windows are hit on every run and
not only when the timing happens to land in them.
"""
from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from transforms.warc import read_page

from .conftest import (
    DEMO_PAGES,
    PAGES,
    ROOT,
    SELF_KILLING_CLI,
    assert_sound,
    dataset_files,
    keys_of_tables,
    memory_keys,
    query,
    run_cli,
)
from .loopback import rss

pytestmark = pytest.mark.e2e  # whole runs through the command line: `make test-fast` skips them

TABLES = ("articles", "mentions", "duplicates")
FEEDS = 3
GENERATED = 18  # generated stories
PAGE_COUNT = GENERATED + 2 * len(PAGES)  # and each demo page twice
PAGE_DELAY_S = 0.15  # per page, with --concurrency 8: a run fetches for about 0.6 s

ACTORS = ("US-led Coalition", "Operation Inherent Resolve", "Pentagon", "CENTCOM",
          "State Department", "American forces")
PLACES = ("Aleppo", "Idlib", "Raqqa", "Homs", "Hama", "Daraa", "Palmyra", "Tanf", "Manbij", "Deir ez-Zor")
SYLLABLES = ("ka", "lo", "mi", "ran", "tes", "vu", "dor", "pel", "qi", "sa", "nor", "bet",
             "fu", "gim", "hal", "jo", "wen", "zir", "ost", "ul", "ya", "cre", "dan", "ep")


def story(number: int) -> str:
    """An article page of its own: ~170 words, no run of them shared with another story."""
    rng = random.Random(number)
    words = ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(140)]
    sentences = [" ".join(words[i:i + 10]).capitalize() + "." for i in range(0, len(words), 10)]
    place = PLACES[number % len(PLACES)]
    lead = (f"Officials of the {ACTORS[number % len(ACTORS)]} said on Monday that report "
            f"{number} concerns events near {place} in Syria.")
    paragraphs = "".join(f"<p>{' '.join(sentences[i:i + 3])}</p>" for i in range(0, len(sentences), 3))
    return (f"<html><head><title>Report {number}</title></head><body><article>"
            f"<h1>Report {number} from {place}</h1><p>{lead}</p>{paragraphs}</article></body></html>")


def served_pages() -> dict[str, bytes]:
    """Path -> page: the generated stories, and each demo page twice, the
    second time with a sentence of its own (a copy: one of the two lands in
    `duplicates`), so that table is written too."""
    pages = {f"/story/{number}": story(number).encode() for number in range(GENERATED)}
    for path, name in PAGES.items():
        html = (DEMO_PAGES / name).read_bytes()
        pages["/demo" + path] = html
        pages["/again" + path] = html.replace(
            b"</p>", f" The account was repeated by {path[3:]} editors.</p>".encode(), 1)
    return pages


@pytest.fixture
def crash_site(site, tmp_path):
    """Three feeds sharing out the pages, each page a little slow; returns
    (feed list file, every article URL the feeds list)."""
    pages = served_pages()
    for path, body in pages.items():
        site.add(path, body, delay_s=PAGE_DELAY_S)
    paths = sorted(pages)
    for feed in range(FEEDS):
        site.add(f"/feeds/{feed}.xml", rss([{"link": path} for path in paths[feed::FEEDS]]),
                 content_type="application/rss+xml")
    listing = tmp_path / "feeds.txt"
    listing.write_text("\n".join(site.url(f"/feeds/{feed}.xml") for feed in range(FEEDS)))
    return listing, {site.url(path) for path in paths}


def run_args(listing: Path, out: Path) -> list[str]:
    # Politeness spacing would make every run wait seconds on the one loopback host.
    return ["--feeds", str(listing), "--out", str(out), "--allow-private-network",
            "--concurrency", "8", "--per-host", "8", "--host-delay", "0"]


def start_run(listing: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", *run_args(listing, out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def start_self_killing_run(listing: Path, out: Path, when: str, where: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SELF_KILLING_CLI, when, where, "run",
                             *run_args(listing, out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def kill_when(process: subprocess.Popen, condition, timeout: float = 60) -> None:
    """SIGKILL `process` as soon as `condition()` holds (unless it has ended by itself)."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and not condition():
        assert time.monotonic() < deadline, "the run never reached the kill point"
        time.sleep(0.002)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def any_file(out: Path, pattern: str, tables=("articles", "mentions", "duplicates", "rejects")) -> bool:
    return any(next((out / table).rglob(pattern), None) for table in tables if (out / table).exists())


def commit_lists(out: Path) -> list[Path]:
    return list((out / "_state" / "commits").glob("*.json"))


def assert_consistent(out: Path, served: set[str]) -> None:
    """What readers of DIR may rely on once a run has completed after a crash."""
    assert not list(out.rglob("*.inprogress")), "a hidden file is left behind"
    assert not commit_lists(out), "a commit is left unfinished"
    for path in out.rglob("*.parquet"):
        pq.read_table(path)  # every visible file is whole

    articles = query(out, "articles", "select article_id, url from t")
    duplicates = query(out, "duplicates", "select article_id, url, duplicate_of from t")
    ids = [article_id for article_id, _ in articles]
    assert len(ids) == len(set(ids)), "an article written twice"
    landed = [url for _, url in articles] + [url for _, url, _ in duplicates]
    assert sorted(landed) == sorted(served), (
        f"lost: {sorted(served - set(landed))}; "
        f"twice: {sorted({url for url in landed if landed.count(url) > 1})}")
    assert {kept for _, _, kept in duplicates} <= set(ids), "a duplicate names an article not stored"
    for url, warc_file, offset in query(out, "articles", "select url, warc_file, warc_offset from t"):
        with open(out / warc_file, "rb") as handle:  # the archive file its row points into is published
            handle.seek(offset)
            assert read_page(handle, warc_file).item.url == url

    stated = set(query(out, "articles", "select article_id, unnest(actors) from t"))
    mentioned = query(out, "mentions", "select article_id, actor from t")
    assert len(mentioned) == len(set(mentioned)), "a mention written twice"
    assert set(mentioned) == stated, f"mentions lost: {sorted(stated - set(mentioned))[:5]}"

    state = out / "_state" / "feeds.json"
    if state.exists():
        assert isinstance(json.loads(state.read_text())["feeds"], dict)
    assert memory_keys(out) == keys_of_tables(out), "the dataset memory is ahead of or behind the tables"


def assert_recovers(listing: Path, out: Path, served: set[str]) -> None:
    """Run again to completion and check DIR; a third run then writes nothing."""
    code, printed, _ = run_cli(*run_args(listing, out))
    assert code == 0, printed  # the killed run's lock went with it
    assert_consistent(out, served)
    files = dataset_files(out, *TABLES)
    code, printed, _ = run_cli(*run_args(listing, out))
    assert code == 0, printed
    assert dataset_files(out, *TABLES) == files, "the run after recovery wrote again"
    assert_consistent(out, served)
    assert_sound(out)


def pages_requested(site) -> int:
    return sum(count for path, count in site.hits.items()
               if path.startswith(("/story/", "/demo/", "/again/")))


KILL_POINTS = {
    # a third of the pages requested: the run is fetching, nothing written
    "fetching": lambda site, out: pages_requested(site) >= PAGE_COUNT // 3,
    # the first dataset file, hidden or visible, is on disk: the run is writing
    "writing": lambda site, out: any_file(out, "*.inprogress") or any_file(out, "*.parquet"),
}


@pytest.mark.parametrize("moment", KILL_POINTS)
def test_kill_9_then_run_again_loses_nothing_and_writes_nothing_twice(crash_site, site, tmp_path, moment):
    listing, served = crash_site
    out = tmp_path / "out"
    process = start_run(listing, out)
    kill_when(process, lambda: KILL_POINTS[moment](site, out))
    # Killed, or on a machine slower than this loop finished first: either way
    # the next run must leave DIR as readers may rely on.
    assert process.returncode in (-signal.SIGKILL, 0), process.stderr.read()
    for path in out.rglob("*.parquet"):
        pq.read_table(path)  # even before the next run: nothing visible is half-written
    assert_recovers(listing, out, served)


def left_uncommitted(out: Path) -> bool:
    """Every file written hidden, no commit list yet (the next start drops them)."""
    return any_file(out, "*.inprogress") and not any_file(out, "*.parquet") and not commit_lists(out)


def left_mid_commit(out: Path) -> bool:
    """The commit list in place, an article visible, other files still hidden
    (its mentions among them: the next start rolls the commit forward)."""
    return (bool(commit_lists(out)) and any_file(out, "*.inprogress")
            and any_file(out, "*.parquet", ("articles",)))


def left_feed_state_aside(out: Path) -> bool:
    """All published, the new feed state written aside and not yet renamed."""
    return (not (out / "_state" / "feeds.json").exists()
            and bool(list((out / "_state").glob(".feeds-*.json.inprogress"))))


def left_memory_ahead(out: Path) -> bool:
    """The commit list in place, a memory file renamed, no article visible
    yet: the memory says more than the tables until the next start rolls
    the commit forward."""
    return (bool(commit_lists(out)) and bool(list((out / "_state" / "memory").rglob("*.parquet")))
            and not any_file(out, "*.parquet", ("articles",)))


# Exact kill points: (before/after the first rename onto a path holding..., what DIR then holds).
COMMIT_POINTS = {
    "memory-ahead": ("after", "/_state/memory/keys/", left_memory_ahead),
    "uncommitted": ("before", "/_state/commits/", left_uncommitted),
    "mid-commit": ("after", "/articles/", left_mid_commit),
    "feed-state": ("before", "/_state/feeds.json", left_feed_state_aside),
}


@pytest.mark.parametrize("points", [
    ["mid-commit"],
    ["memory-ahead"],
    # killed twice in a row: the second run, itself killed, first cleans up after the first
    ["uncommitted", "feed-state"],
], ids="-then-".join)
def test_a_run_killed_at_an_exact_point_of_its_commit_recovers(crash_site, site, tmp_path, points):
    listing, served = crash_site
    for route in site.routes.values():
        route.delay_s = 0  # the kill points are exact: no need for slow pages
    out = tmp_path / "out"
    for point in points:
        when, where, left = COMMIT_POINTS[point]
        process = start_self_killing_run(listing, out, when, where)
        process.wait(timeout=60)
        assert process.returncode == -signal.SIGKILL, process.stderr.read()
        assert left(out), point
        for path in out.rglob("*.parquet"):
            pq.read_table(path)
    # `verify --repair` mends what the kill left as the next run's start would.
    shutil.copytree(out, tmp_path / "repaired", symlinks=True)
    assert_sound(tmp_path / "repaired", repair=True)
    assert_recovers(listing, out, served)

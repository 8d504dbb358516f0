"""`news-ingest compact`: few files per partition, the same rows, crash- and reader-safe."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main
from pipelines.compact import compact, compact_if_due

from .conftest import DEMO_PAGES, PAGES, ROOT, dataset_files, keys_of_tables, memory_keys, query, run_cli
from .loopback import LoopbackSite, rss

pytestmark = pytest.mark.e2e  # whole runs through the command line: `make test-fast` skips them

TABLES = ("articles", "mentions", "duplicates", "rejects")
RUNS = 4


def rows(out: Path) -> dict[str, list[tuple]]:
    """Every row of every table, hive columns included, in one order."""
    return {table: sorted(map(repr, query(out, table, "select * from t"))) for table in TABLES}


def story(number: int) -> bytes:
    page = (DEMO_PAGES / PAGES["/p/levant"]).read_bytes()
    return page.replace(b"</p>", f" Update {number}: a further paragraph of reporting.</p>".encode(), 1)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A dataset written by RUNS runs, each bringing new articles, copies and
    a failure into the same partitions: several files per partition; and
    the site its feed is on. Written once for the module."""
    out = tmp_path_factory.mktemp("history") / "out"
    items = []
    with LoopbackSite() as site:
        for run in range(RUNS):
            for number in range(3):
                path = f"/s/{run}-{number}"
                copy = (DEMO_PAGES / PAGES["/p/sohr"]).read_bytes()  # the same story every run
                site.add(path, story(10 * run + number) if number else copy)
                items.append({"link": path, "pubDate": "Thu, 03 Aug 2017 09:30:00 +0000"})
            items.append({"link": f"/missing/{run}"})
            site.add("/feed.xml", rss(list(items)), content_type="application/rss+xml")
            code, printed, _ = run_cli("--feeds", site.url("/feed.xml"), "--out", str(out),
                                       "--allow-private-network", "--host-delay", "0", "--compact-every", "0")
            assert code == 0, printed
        yield out, site


@pytest.fixture
def many_runs(history, tmp_path):
    """A copy of the module's dataset of several runs, for one test to change."""
    out = tmp_path / "out"
    shutil.copytree(history[0], out)
    return out


def files_per_partition(out: Path, *tables: str) -> int:
    folders = {path.parent for path in dataset_files(out, *tables)}
    return max(len(list(folder.glob("*.parquet"))) for folder in folders)


def test_compact_leaves_one_file_per_partition_and_the_same_rows(many_runs, capsys):
    out = many_runs
    before, memory = rows(out), memory_keys(out)
    assert files_per_partition(out) == RUNS
    assert main(["compact", "--out", str(out)]) == 0
    assert "files ->" in capsys.readouterr().out
    assert files_per_partition(out) == 1
    assert rows(out) == before
    assert memory_keys(out) == memory == keys_of_tables(out)
    assert not (out / "_state" / "compact").exists() or not any((out / "_state" / "compact").iterdir())
    # Nothing is left to do, and a later run still knows every URL.
    assert compact(str(out)).partitions == 0


def test_compact_before_a_day_leaves_later_partitions_alone(many_runs):
    out = many_runs
    today = datetime.now(UTC).date()
    compact(str(out), before=today)
    for folder in {path.parent for path in dataset_files(out)}:
        files = len(list(folder.glob("*.parquet")))
        assert files == (RUNS if f"date={today}" in str(folder) else 1), folder


def test_readers_never_see_rows_twice_or_missing_while_compacting(many_runs):
    out = many_runs
    expected = query(out, "mentions")[0][0]
    counts, failures, done = [], [], threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                counts.append(query(out, "mentions")[0][0])
            except duckdb.Error as error:  # a file listed before the swap, gone at open: run again
                failures.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert compact(str(out)).swapped_atomically
    finally:
        done.set()
        reader.join()
    assert counts and set(counts) == {expected}


# `news-ingest compact` that SIGKILLs itself right before or after its first folder swap.
SELF_KILLING_COMPACT = """
import os, signal, sys
import pipelines.compact as compact
when, real = sys.argv[1], compact._exchange

def exchange(first, second):
    if when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    swapped = real(first, second)
    os.kill(os.getpid(), signal.SIGKILL)

compact._exchange = exchange
from pipelines.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_compaction_killed_at_its_swap_loses_nothing(many_runs, when):
    out = many_runs
    before = rows(out)
    killed = subprocess.run([sys.executable, "-c", SELF_KILLING_COMPACT, when, "compact", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert rows(out) == before  # one partition swapped whole, or none
    assert main(["compact", "--out", str(out)]) == 0  # cleans up what the killed one set aside
    assert rows(out) == before and files_per_partition(out) == 1
    assert not any((out / "_state" / "compact").iterdir())


def test_runs_compact_once_a_day_by_default(tmp_path):
    out = tmp_path / "out"
    listing = ROOT / "seeds" / "demo.opml"
    assert run_cli("--feeds", str(listing), "--out", str(out))[0] == 0
    assert (out / "_state" / "compaction.json").exists()
    now = datetime.now(UTC)
    assert compact_if_due(str(out), 86400, now=now + timedelta(hours=1)) is None
    assert compact_if_due(str(out), 86400, now=now + timedelta(days=2)) is not None


def test_a_damaged_file_costs_its_partition_compaction_and_never_a_run(many_runs, history, capsys):
    site = history[1]
    out = many_runs
    damaged = sorted((out / "rejects").rglob("*.parquet"))[0]
    damaged.write_bytes(b"PAR1 and then nothing")
    assert main(["compact", "--out", str(out)]) == 1
    assert str(damaged.parent) in capsys.readouterr().err
    assert damaged.exists() and len(list(damaged.parent.glob("*.parquet"))) == RUNS
    assert files_per_partition(out, "articles") == 1, "the other partitions are compacted"
    (out / "_state" / "compaction.json").unlink()  # due again, in the next run
    code, printed, _ = run_cli("--feeds", site.url("/feed.xml"), "--out", str(out),
                               "--allow-private-network", "--host-delay", "0")
    assert code == 0, printed
    assert "left as it was" in capsys.readouterr().err

"""Worker processes (transforms/workers.py): `run`, `stream` and `extract`
clean and classify on every core by default, with the same output as one
process; counts are made as results arrive; a dying worker loses nothing;
a killed command leaves no worker behind."""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.cli import main
from pipelines.extract import POOL_MIN_PAGES, extract_pages
from pipelines.jobs import RunJobs, StageJobs
from schemas.records import FeedItem, Page
from schemas.settings import Settings
from transforms import archive, dedup, workers
from transforms.archive import ArchivePages
from transforms.clean import CleaningFn, CleanPages
from transforms.metrics import live_counts
from transforms.warc import read_page
from transforms.workers import WorkerPool, cores, open_pool

from .conftest import DEMO_PAGES, ROOT, run_cli
from .loopback import rss

PAGES = sorted(DEMO_PAGES.glob("*.html"))


def _many_pages(folder: Path, count: int) -> list[str]:
    """`count` saved pages (the demo pages, repeated under new names)."""
    names = []
    for number in range(count):
        path = folder / f"{number:03d}-{PAGES[number % len(PAGES)].name}"
        path.write_bytes(PAGES[number % len(PAGES)].read_bytes())
        names.append(str(path))
    return names


def _extract(names: list[str], workers: int) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = extract_pages(names, "https://www.example.com/story.html", io.BytesIO(), out, err,
                         workers=workers)
    return code, out.getvalue(), err.getvalue()


def test_extract_with_workers_prints_what_one_process_prints(tmp_path):
    names = _many_pages(tmp_path, POOL_MIN_PAGES + 4)
    (tmp_path / "broken.html").write_bytes(b"<html><body><p>too short</p></body></html>")
    names.insert(3, str(tmp_path / "broken.html"))
    names.insert(7, str(tmp_path / "missing.html"))
    alone = _extract(names, workers=1)
    pooled = _extract(names, workers=2)
    assert pooled == alone
    assert alone[0] == 1  # the broken and the missing page are said, the others printed in order
    assert len(alone[1].splitlines()) == len(names) - 2
    assert "broken.html" in alone[2] and "missing.html" in alone[2]


def test_a_dying_worker_loses_nothing(tmp_path, capfd):
    """A worker killed mid-work (out of memory, a crash in a C library): its
    pages are done in this process, with one warning line."""
    names = _many_pages(tmp_path, 12)
    settings = Settings()
    expected = _extract(names, workers=1)[1]
    with WorkerPool(2, settings, StageJobs) as pool:
        victim = next(iter(pool._executor._processes))
        os.kill(victim, signal.SIGKILL)
        out = io.StringIO()
        from pipelines.extract import _as_page, _files, _show  # the command's own steps

        saved = _files(names, "https://www.example.com/story.html", io.BytesIO())
        results = pool.ordered("extract", ((page, _as_page(page)) for page in saved))
        failed = sum(_show(page, result, out, io.StringIO()) for page, result in results)
        assert pool.broken and open_pool() is None
    assert failed == 0 and out.getvalue() == expected
    assert capfd.readouterr().err.count("the worker processes stopped") == 1


def test_the_clean_stage_counts_in_this_process_as_pages_come_back():
    """With a pool, CleanPages gives the articles one process gives, and its
    counts are this process's (what progress shows while the run works)."""
    settings = Settings()
    pages = [Page(item=FeedItem(url=f"https://site{n}.example/{path.stem}", feed_url=""),
                  final_url=f"https://site{n}.example/{path.stem}", status=200, content_type="text/html",
                  body=path.read_bytes(), fetched_at=datetime(2026, 1, 1, tzinfo=UTC))
             for n, path in enumerate(PAGES)]

    def cleaned_count(workers: int) -> int:
        before = live_counts().get("clean/ok", 0)
        with (WorkerPool(workers, settings, StageJobs) if workers > 1 else _no_pool(),
              TestPipeline(runner="FnApiRunner") as pipeline):
            cleaned = (pipeline | beam.Create(pages) | CleanPages(settings.clean))["articles"]
            assert_that(cleaned | beam.Map(lambda article: article.title), equal_to(expected))
        return live_counts().get("clean/ok", 0) - before

    from transforms.cleaner import Cleaner
    expected = [Cleaner(settings.clean).clean(page).title for page in pages]
    assert cleaned_count(1) == len(pages)
    assert cleaned_count(2) == len(pages)


class _no_pool:  # noqa: N801 - a stand-in context manager
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def _article_rows(out: Path) -> list[tuple]:
    columns = ["article_id", "title", "text", "actors", "language", "event_types", "minhash", "numbers"]
    rows = pq.read_table(out / "articles").select(columns).to_pylist()
    return sorted(tuple(tuple(value) if isinstance(value, list) else value for value in row.values())
                  for row in rows)


def _news_site(site):
    items = []
    for number in range(3):
        for path in PAGES:
            items.append({"link": site.add(f"/{number}/{path.name}", path.read_bytes())})
    return site.add("/feed.xml", rss(items), content_type="application/rss+xml")


def test_a_run_with_workers_writes_what_one_process_writes(site, tmp_path, monkeypatch):
    feed = _news_site(site)
    alone = run_cli("--feeds", feed, "--out", str(tmp_path / "alone"), "--allow-private-network",
                    "--workers", "1")
    with monkeypatch.context() as patched:  # with workers, the main process cleans, signs and gzips nothing
        for module, name in ((CleaningFn, "inline"), (dedup, "signed"), (archive, "records_or_reason")):
            patched.setattr(module, name, lambda *_, name=name: pytest.fail(f"{name} in the main process"))
        pooled = run_cli("--feeds", feed, "--out", str(tmp_path / "pooled"), "--allow-private-network",
                         "--workers", "2")
    assert alone.code == pooled.code == 0
    assert pooled.summary["workers"]["processes"] == 2 and len(pooled.summary["workers"]["peak_rss_mib"]) == 2
    assert alone.summary["workers"] == {"processes": 1, "peak_rss_mib": []}
    assert pooled.summary["items"] == alone.summary["items"] and pooled.summary["adds_up"]
    assert _article_rows(tmp_path / "pooled") == _article_rows(tmp_path / "alone")
    archived = _archived_bodies(tmp_path / "pooled")  # the workers made the records: they read back
    assert archived == _archived_bodies(tmp_path / "alone")
    assert len(archived) == pooled.summary["items"]["articles"] > 0


def _archived_bodies(out: Path) -> dict[str, bytes]:
    """Each article's page body as read back from where its row points in the raw archive."""
    bodies = {}
    for row in pq.read_table(out / "articles", columns=["url", "warc_file", "warc_offset"]).to_pylist():
        with open(out / row["warc_file"], "rb") as handle:
            handle.seek(row["warc_offset"])
            bodies[row["url"].split("/", 3)[3]] = read_page(handle, row["warc_file"]).body
    return bodies


@pytest.mark.parametrize("processes", [1, 2])
def test_the_archive_stage_loses_only_a_body_it_cannot_archive(processes, tmp_path, monkeypatch):
    """A body that cannot be archived (a header value no text encoding
    holds) is counted, and the other pages are archived -- in this process,
    and with a pool, where the records are made in the workers alone."""
    def page(number: int, headers=()) -> Page:
        url = f"https://site.example/{number}.html"
        return Page(item=FeedItem(url=url, feed_url=""), final_url=url, status=200, content_type="text/html",
                    body=PAGES[0].read_bytes(), fetched_at=datetime(2026, 1, 1, tzinfo=UTC), headers=headers)

    pages = [page(1), page(2, (("X-Odd", "\ud800"),)), page(3)]
    before = live_counts().get("archive/failed", 0)
    if processes > 1:
        monkeypatch.setattr(archive, "records_or_reason", lambda *_: pytest.fail("archived here"))
    with (WorkerPool(processes, Settings(), RunJobs) if processes > 1 else _no_pool(),
          TestPipeline(runner="FnApiRunner") as pipeline):
        placed, _ = {"pages": pipeline | beam.Create(pages)} | ArchivePages(str(tmp_path), "run-1", 2)
        assert_that(placed | beam.Map(lambda place: place[0]),
                    equal_to(["https://site.example/1.html", "https://site.example/3.html"]))
    assert live_counts().get("archive/failed", 0) - before == 1


def test_a_stream_with_workers_polls_and_writes(site, tmp_path, capsys):
    feed = _news_site(site)
    code = main(["stream", "--feeds", feed, "--out", str(tmp_path / "out"), "--allow-private-network",
                 "--interval", "1s", "--polls", "2", "--workers", "2", "--max-interval", "0"])
    polls = [line for line in capsys.readouterr().out.splitlines() if "feeds polled" in line]
    assert code == 0 and len(polls) == 2
    assert _article_rows(tmp_path / "out")
    assert open_pool() is None  # closed with the stream


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers must be 1 or more"),
    (["--workers", "2", "--runner", "DataflowRunner"], "--workers is for work on this machine"),
    (["--workers", "2", "--direct_running_mode", "multi_processing"],
     "--workers is for work on this machine"),
])
def test_bad_worker_counts_are_one_line(args, message, tmp_path, capsys):
    code = main(["run", "--feeds", "https://example.com/feed.xml", "--out", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers must be 1 or more"),
    (["--workers", "2", "--direct_running_mode", "multi_processing"],
     "--workers is for work on this machine"),
])
def test_reprocess_says_bad_worker_counts_in_one_line(args, message, tmp_path, capsys):
    code = main(["reprocess", "--out", str(tmp_path), "--what", "text", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_beams_own_worker_processes_get_no_pool(site, tmp_path, capsys):
    """With Beam's multi_processing mode its worker processes run the DoFns: no pool of ours."""
    summary = tmp_path / "summary.json"
    code = main(["run", "--feeds", _news_site(site), "--out", str(tmp_path / "out"),
                 "--allow-private-network",
                 "--direct_num_workers", "2", "--direct_running_mode", "multi_processing",
                 "--summary-json", str(summary)])
    figures = json.loads(summary.read_text())
    assert code == 0 and figures["workers"]["processes"] == 1 and figures["items"]["articles"] > 0


def test_extract_uses_every_core_by_default(tmp_path):
    names = _many_pages(tmp_path, POOL_MIN_PAGES)
    code = subprocess.run([sys.executable, "-c", _COUNT_CHILDREN, *names], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert code.returncode == 0, code.stderr
    assert json.loads(code.stdout.splitlines()[-1]) == {"children": cores() if cores() > 1 else 0}


# `news-ingest extract PAGES` in a process that counts the worker processes it starts.
_COUNT_CHILDREN = """
import json, sys, io, multiprocessing
import transforms.workers as workers
seen = set()
real = workers.WorkerPool.__init__
def counting(self, *args, **kwargs):
    real(self, *args, **kwargs)
    seen.update(self._executor._processes)
workers.WorkerPool.__init__ = counting
from pipelines.cli import main
code = main(["extract", *sys.argv[1:]])
print(json.dumps({"children": len(seen)}))
"""


def test_a_killed_extract_leaves_no_worker_behind(tmp_path):
    names = _many_pages(tmp_path, 400)
    command = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "extract", "--workers", "2", *names],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        command.stdout.readline()  # a page printed: the workers are at work
        children = _children(command.pid)
        assert len(children) == 2
        os.kill(command.pid, signal.SIGKILL)
        command.wait(60)
        assert _all_gone(children)
    finally:
        if command.poll() is None:
            command.kill()
        command.stdout.close()


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = Path(f"/proc/{pid}/task/{task.name}/children")
        if children.exists():
            found += [int(child) for child in children.read_text().split()]
    return found


def _all_gone(pids: list[int], within_s: float = 60) -> bool:
    """Whether every process of `pids` has ended, waiting up to `within_s`
    (a bound for a loaded machine, not a timing under test)."""
    deadline = time.monotonic() + within_s
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_workers_that_cannot_start_leave_the_work_here(tmp_path):
    """The system refuses the second fork (a process limit): the pages are
    extracted in this process, after one warning line, and nothing waits."""
    names = _many_pages(tmp_path, POOL_MIN_PAGES)
    done = subprocess.run([sys.executable, "-c", _SECOND_FORK_REFUSED, *names], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == len(names)
    assert done.stderr.count("this process does the rest of the work alone") == 1


_SECOND_FORK_REFUSED = """
import errno, os, sys
forks = []
real_fork = os.fork
def fork():
    forks.append(1)
    if len(forks) >= 2:
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
    return real_fork()
os.fork = fork
from pipelines.cli import main
sys.exit(main(["extract", "--workers", "2", *sys.argv[1:]]))
"""


def test_the_default_follows_a_containers_cpu_quota(tmp_path, monkeypatch):
    """`docker --cpus 1.5` or a Kubernetes CPU limit: as many workers as the
    quota allows (rounded up), not one per core of the machine."""
    quota = tmp_path / "cpu.max"
    monkeypatch.setattr(workers, "_QUOTA_FILES", ((str(quota),),))
    machine = len(os.sched_getaffinity(0))
    quota.write_text("50000 100000\n")
    assert cores() == 1
    quota.write_text("150000 100000\n")
    assert cores() == min(machine, 2)
    quota.write_text("max 100000\n")
    assert cores() == machine


class _Failing(StageJobs):
    def classify(self, article):
        raise _TwoPartError("gazetteer", "broken")


class _TwoPartError(Exception):
    def __init__(self, part, what):  # pickled by its args, it cannot be rebuilt
        super().__init__(f"{part} is {what}")


def test_a_failure_that_cannot_travel_back_is_said_in_words():
    with WorkerPool(2, Settings(), _Failing) as pool:
        with pytest.raises(workers.WorkerFailed, match="_TwoPartError: gazetteer is broken"):
            pool.submit("classify", None).result()
        assert not pool.broken  # the workers are fine: only that element failed


def test_broken_workers_are_renewed_for_the_next_poll():
    with WorkerPool(2, Settings(), StageJobs) as pool:
        os.kill(next(iter(pool._executor._processes)), signal.SIGKILL)
        with contextlib.suppress(BrokenProcessPool):
            pool._executor.submit(os.getpid).result()
        pool.mark_broken(BrokenProcessPool("killed"))
        assert open_pool() is None
        pool.renew()
        assert open_pool() is pool
        assert pool.submit("extract", "not a page").result() == "not a page"  # done by a new worker
        assert pool._executor.submit(os.getpid).result() != os.getpid()


def test_workers_started_beside_other_threads_end_with_their_owner():
    """Workers from the fork server (another thread ran) are not the owner's
    children: killed with -9, the owner still leaves none behind."""
    owner = subprocess.Popen([sys.executable, "-c", _OWNER_WITH_A_THREAD], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
    try:
        pids = json.loads(owner.stdout.readline())
        assert len(pids) == 2 and owner.pid not in pids
        owner.kill()
        owner.wait(60)
        assert _all_gone(pids)
    finally:
        if owner.poll() is None:
            owner.kill()
        owner.stdout.close()


_OWNER_WITH_A_THREAD = """
import json, os, threading, time
from schemas.settings import Settings
from pipelines.jobs import StageJobs
from transforms.workers import WorkerPool
if __name__ == "__main__":
    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
    pool = WorkerPool(2, Settings(), StageJobs)
    list(pool._executor.map(time.sleep, [1, 1]))  # fresh processes start as work comes: both now
    print(json.dumps(sorted(pool._executor._processes)), flush=True)
    time.sleep(600)
"""


def test_ctrl_c_twice_stops_extract_and_its_workers(tmp_path):
    names = _many_pages(tmp_path, 400)
    command = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "extract", "--workers", "2", *names],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        command.stdout.readline()
        children = _children(command.pid)
        os.killpg(command.pid, signal.SIGINT)
        time.sleep(0.3)
        os.killpg(command.pid, signal.SIGINT)
        assert command.wait(60) == 130
        assert _all_gone(children)
    finally:
        if command.poll() is None:
            command.kill()
        command.stdout.close()

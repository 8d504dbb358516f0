"""Streaming: the windowed graph under TestStream, and `news-ingest stream` stopped with SIGINT."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import apache_beam as beam
import duckdb
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.window import TimestampedValue

from pipelines.lock import LockedError, RunLock
from pipelines.stream import Stopper, build_stream_pipeline, stream_ingest
from schemas.records import FeedItem
from schemas.settings import FeedSettings, FetchSettings, Settings

from .conftest import DEMO_PAGES, PAGES, ROOT, assert_sound
from .loopback import rss

pytestmark = pytest.mark.e2e  # whole runs through the command line: `make test-fast` skips them

INTERVAL = 10  # seconds of event time per window


def streaming_pipeline() -> TestPipeline:
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    return TestPipeline(runner="BundleBasedDirectRunner", options=options)


def test_items_arriving_over_time_land_once_in_files_per_window(site, tmp_path):
    for path, name in PAGES.items():
        site.add(path, (DEMO_PAGES / name).read_bytes())

    def item(path: str) -> FeedItem:
        return FeedItem(url=site.url(path), feed_url=site.url("/rss"))

    polls = (TestStream()
             .advance_watermark_to(0)
             .add_elements([TimestampedValue(item("/p/grasswire"), 1),
                            TimestampedValue(item("/p/sohr"), 2)])
             .advance_watermark_to(INTERVAL)
             # The next poll lists the same stories again, and a new one.
             .add_elements([TimestampedValue(item("/p/grasswire"), 11),
                            TimestampedValue(item("/p/sohr"), 12),
                            TimestampedValue(item("/p/defensepost"), 13)])
             .advance_watermark_to(2 * INTERVAL)
             .advance_watermark_to_infinity())
    settings = Settings(fetch=FetchSettings(allow_private_network=True))
    out = tmp_path / "out"
    with streaming_pipeline() as p:
        items = p | polls
        none = p | "NoFeedEvents" >> beam.Create([])
        stream_ingest(items, none, p | "NoStates" >> beam.Create([]), str(out),
                      "20260101T000000Z-abc123", settings, INTERVAL)

    rows = duckdb.sql(f"select url, filename from read_parquet('{out}/articles/**/*.parquet', "
                      "filename=true, hive_partitioning=true)").fetchall()
    assert sorted(url for url, _ in rows) == sorted(
        site.url(path) for path in ("/p/grasswire", "/p/sohr", "/p/defensepost"))
    window_of = {url: filename.rsplit("/", 1)[1].split("-")[1] for url, filename in rows}
    assert window_of[site.url("/p/grasswire")] == window_of[site.url("/p/sohr")] == "19700101T000000Z"
    assert window_of[site.url("/p/defensepost")] == "19700101T000010Z", "the second poll's new file"
    assert site.hits["/p/grasswire"] == 1, "an item a poll already carried is not fetched again"


STORY = "<html><body><article><h1>{title}</h1><p>" + "{title} was reported near Idlib today. " * 20 \
    + "</p></article></body></html>"


class StreamProcess:
    """`news-ingest stream` in a child process, its output lines read as they come."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "stream", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        self.lines: queue.Queue[str] = queue.Queue()
        self.errors: list[str] = []  # drained as it comes: a full pipe would block the child
        threading.Thread(target=self._read, daemon=True).start()
        self.errors_read = threading.Thread(target=self.errors.extend, args=(self.process.stderr,),
                                            daemon=True)
        self.errors_read.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_poll(self, timeout: float = 60) -> str:
        """The summary line of the next poll that finishes."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if "feeds polled" in line:
                return line

    def interrupt(self, signum: int = signal.SIGINT) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 60) -> tuple[int, str]:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()  # never left running after the test
            raise
        self.errors_read.join(timeout)
        return self.process.returncode, "".join(self.errors)


def urls_in(out: Path) -> list[str]:
    return [url for (url,) in duckdb.sql(
        f"select url from read_parquet('{out}/articles/**/*.parquet', hive_partitioning=true)").fetchall()]


def wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def feed(site):
    """A feed serving the given story paths (call again to change it)."""
    def serve(*paths: str) -> str:
        for path in paths:
            site.add(path, STORY.format(title=f"Story {path}"))
        return site.add("/rss", rss([{"link": path} for path in paths]), content_type="application/rss+xml")
    return serve


def no_leftovers(out: Path) -> bool:
    """No half-written file, and the folder free for the next run."""
    if list(out.rglob("*.inprogress")):
        return False
    try:
        with RunLock(str(out)):
            return True
    except LockedError:
        return False


def test_stream_lands_items_a_feed_gains_while_it_runs_and_stops_on_ctrl_c(site, feed, tmp_path):
    feed("/a")
    out = tmp_path / "out"
    stream = StreamProcess("--feeds", site.url("/rss"), "--out", str(out), "--interval", "2s",
                           "--allow-private-network", "--max-interval", "0")  # polled on every tick
    try:
        assert "articles 1," in stream.next_poll()
        assert urls_in(out) == [site.url("/a")], "queryable while the stream runs"
        feed("/a", "/b")
        line = stream.next_poll()
        while "items seen 0" in line:  # the poll may have begun before the feed changed
            line = stream.next_poll()
        assert "items seen 2: articles 1, duplicates 0, rejected 0, already ingested 1" in line
        assert sorted(urls_in(out)) == [site.url("/a"), site.url("/b")]
        assert "not modified 0, unchanged 1" in stream.next_poll(), "an unchanged feed is not parsed"
    finally:
        stream.interrupt()
        code, errors = stream.stop()
    assert code == 130, errors
    assert no_leftovers(out)
    assert site.hits["/a"] == 1 and site.hits["/b"] == 1


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_during_a_poll_lets_it_finish_writing(site, feed, tmp_path, signum, status):
    """Ctrl-C, and SIGTERM as `docker stop`, Kubernetes and systemd send it."""
    feed("/a")
    site.add("/a", STORY.format(title="Slow story"), delay_s=2)
    out = tmp_path / "out"
    stream = StreamProcess("--feeds", site.url("/rss"), "--out", str(out), "--interval", "1h",
                           "--allow-private-network")
    wait_for(lambda: site.hits["/a"] == 1)
    stream.interrupt(signum)  # while the page is downloading
    code, errors = stream.stop()
    assert code == status, errors
    assert urls_in(out) == [site.url("/a")], "what was fetched is written"
    assert no_leftovers(out)
    assert_sound(out)


def test_a_second_ctrl_c_aborts_the_poll_and_its_items_come_next_start(site, feed, tmp_path):
    feed("/a")
    site.add("/a", STORY.format(title="Slow story"), delay_s=2)
    out = tmp_path / "out"
    args = ("--feeds", site.url("/rss"), "--out", str(out), "--allow-private-network")
    stream = StreamProcess(*args, "--interval", "1h")
    wait_for(lambda: site.hits["/a"] == 1)
    stream.interrupt()
    time.sleep(0.3)
    stream.interrupt()
    code, errors = stream.stop()
    assert code == 130 and "aborted" in errors
    assert not (out / "articles").exists() or urls_in(out) == []
    assert no_leftovers(out)
    assert not (out / "_state" / "feeds.json").exists(), "the aborted poll's feed state is not saved"
    stream = StreamProcess(*args, "--interval", "1s", "--polls", "1")
    assert "articles 1," in stream.next_poll()
    assert stream.stop()[0] == 0
    assert urls_in(out) == [site.url("/a")]
    assert_sound(out)


def test_the_whole_stream_graph_polls_on_each_tick_and_writes_each_story_once(site, feed, tmp_path):
    feed("/a", "/b")
    ticks = (TestStream()
             .advance_watermark_to(0).add_elements([TimestampedValue(0, 0)])
             .advance_watermark_to(INTERVAL).add_elements([TimestampedValue(1, INTERVAL)])
             .advance_watermark_to_infinity())
    settings = Settings(fetch=FetchSettings(allow_private_network=True),
                        feeds=FeedSettings(max_interval_hours=0))  # no adaptive polling: every tick
    out = tmp_path / "out"
    with streaming_pipeline() as p:
        build_stream_pipeline(p, [site.url("/rss")], str(out), "20260101T000000Z-abc123", settings,
                              INTERVAL, ticks=p | ticks)
    assert sorted(urls_in(out)) == [site.url("/a"), site.url("/b")]
    assert site.hits["/a"] == site.hits["/b"] == 1
    assert site.hits["/rss"] == 2, "polled on each tick"
    assert (out / "_state" / "feeds.json").exists()
    assert no_leftovers(out)


def test_a_failing_poll_leaves_no_half_written_files_and_fails_a_bounded_stream(site, feed, tmp_path):
    feed("/a")
    site.add("/a", STORY.format(title="A story"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "articles").write_text("a file where the articles folder belongs")
    stream = StreamProcess("--feeds", site.url("/rss"), "--out", str(out), "--interval", "1s",
                           "--polls", "2", "--allow-private-network")
    code, errors = stream.stop()
    assert code == 1 and errors.count("news-ingest: error:") == 2, errors
    assert no_leftovers(out)
    assert not (out / "_state" / "feeds.json").exists()


def test_a_signal_ends_the_wait_between_polls_and_a_second_aborts_a_poll(capfd):
    with Stopper() as stopper:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        started = time.monotonic()
        assert stopper.wait(600) is False
        assert time.monotonic() - started < 300, "the wait ended with the signal, not its 600 s"
        assert stopper.exit_status == 143
    with Stopper() as stopper:
        stopper.polling = True
        os.kill(os.getpid(), signal.SIGINT)  # the handler runs in this thread, before the next line
        assert stopper.requested and "stopping after the current poll" in capfd.readouterr().out
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)

"""One run per output folder: a second start stops clearly; stale locks and leftovers go."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from pipelines.cli import EXIT_LOCKED, main
from pipelines.lock import LockedError, RunLock
from transforms import workers

from .conftest import assert_sound


def test_a_second_lock_on_the_same_folder_is_refused(tmp_path):
    with RunLock(str(tmp_path)), pytest.raises(LockedError, match="another run is using"), \
            RunLock(str(tmp_path)):
        pass
    with RunLock(str(tmp_path)):  # released: free again
        pass


@pytest.mark.e2e
def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    lock = tmp_path / "_state" / "run.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "started": "x"}))
    leftover = tmp_path / "articles" / "date=2026-01-01" / ".part-x-00000.parquet.inprogress"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a file")
    with RunLock(str(tmp_path)):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not leftover.exists(), "a crashed run's half-written file is removed"


def test_only_a_start_after_a_crash_searches_the_dataset_for_leftovers(tmp_path, monkeypatch):
    """The search walks every folder of the dataset (870,000 files after a
    year): a holder that left cleanly removed its lock file, so none is due."""
    searched = []
    monkeypatch.setattr("pipelines.lock.remove_leftovers", lambda out_dir: searched.append(out_dir) or 0)
    with RunLock(str(tmp_path)):
        pass
    with RunLock(str(tmp_path)):
        pass
    assert searched == [], "a clean exit left nothing to search for"
    (tmp_path / "_state" / "run.lock").write_text("{}")  # what a killed holder leaves
    with RunLock(str(tmp_path)):
        pass
    assert searched == [tmp_path]


@pytest.mark.e2e
def test_an_overlapping_run_exits_with_a_clear_message(tmp_path, capsys, monkeypatch):
    """... at once: it starts no worker processes first (a second start
    from cron on a small machine would hold their memory meanwhile)."""
    feed = tmp_path / "feed.xml"
    feed.write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>')
    with monkeypatch.context() as patched, RunLock(str(tmp_path / "out")):
        patched.setattr(workers, "WorkerPool", lambda *_: pytest.fail("workers started"))
        code = main(["run", "--feeds", str(feed), "--out", str(tmp_path / "out"), "--workers", "2"])
    assert code == EXIT_LOCKED
    err = capsys.readouterr().err
    assert "another run is using" in err and f"pid {os.getpid()}" in err
    assert main(["run", "--feeds", str(feed), "--out", str(tmp_path / "out")]) == 0


@pytest.mark.e2e
def test_a_lock_whose_holder_is_killed_is_free_at_once(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pipelines.lock import RunLock\n"
         f"with RunLock({str(tmp_path)!r}):\n    print('held', flush=True)\n    time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match=f"pid {holder.pid} on"):
            RunLock(str(tmp_path)).__enter__()
    finally:
        holder.kill()  # SIGKILL: no cleanup of its own runs
        holder.wait()
    assert (tmp_path / "_state" / "run.lock").exists(), "the killed run left its lock file"
    with RunLock(str(tmp_path)):
        pass


def test_a_lock_file_left_on_another_host_does_not_block(tmp_path):
    """A Kubernetes pod killed mid-run leaves its lock file on the volume; the
    next pod has another host name and must not wait for it forever."""
    lock = tmp_path / "_state" / "run.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"pid": 1, "host": "news-ingest-28391730-x7k2p", "started": "x"}))
    with RunLock(str(tmp_path)):
        assert json.loads(lock.read_text())["host"] == socket.gethostname()
    assert not lock.exists()


def test_a_link_at_the_lock_file_never_has_its_target_written(tmp_path, caplog):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    lock = tmp_path / "data" / "_state" / "run.lock"
    lock.parent.mkdir(parents=True)
    lock.symlink_to(target)
    with caplog.at_level("WARNING", logger="news_ingest"), RunLock(str(tmp_path / "data")):
        assert not lock.is_symlink() and json.loads(lock.read_text())["pid"] == os.getpid()
    assert target.read_text() == "keep me"
    assert "run.lock is not a plain file" in caplog.text


def test_a_start_after_a_crash_leaves_a_report_being_written_alone(tmp_path):
    """...and removes the empty partition folders a failed run left."""
    # A run starting while `report --html DIR/report.html` writes its page deleted the page's partial file.
    (tmp_path / "_state").mkdir()
    (tmp_path / "_state" / "run.lock").write_text("{}")  # what a killed holder leaves
    partial = tmp_path / ".report.html.inprogress"
    partial.write_text("<html>half a report")
    leftover = tmp_path / "rejects" / "date=2026-01-01" / ".part-x-00000.parquet.inprogress"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a file")
    empty = tmp_path / "articles" / "date=2026-01-02" / "actor=isis"  # made by a run the disk stopped
    empty.mkdir(parents=True)
    with RunLock(str(tmp_path)):
        pass
    assert partial.exists() and not leftover.exists()
    assert not (tmp_path / "articles" / "date=2026-01-02").exists()


@pytest.mark.e2e
def test_sigterm_ends_a_run_with_a_message_and_no_leftovers(site, tmp_path):
    # `docker stop` and systemd send SIGTERM; the run once vanished with status -15 and no word.
    from .loopback import rss
    site.add("/slow", "<html><body><p>late</p></body></html>", delay_s=30)
    site.add("/rss", rss([{"link": "/slow"}]), content_type="application/rss+xml")
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", "--feeds", site.url("/rss"),
                                "--out", str(out), "--allow-private-network"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while site.hits["/slow"] == 0:  # the run is fetching: well inside the pipeline
            assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 143, errors
    assert "stopped by SIGTERM" in errors
    assert not list(out.rglob("*.inprogress"))
    with RunLock(str(out)):  # the folder is free for the next run
        pass
    assert_sound(out)

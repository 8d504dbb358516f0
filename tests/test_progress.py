"""What a person sees while `run` works: progress on a terminal, nothing in
CI logs unless -v, a one-line summary with -q, no Beam chatter."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import tempfile
import termios
from pathlib import Path

import pytest

from pipelines import progress
from pipelines.cli import main

from .conftest import DEMO_PAGES, SEED_PAGES
from .loopback import rss

pytestmark = pytest.mark.e2e  # whole runs through the command line: `make test-fast` skips them

COMMAND = Path(sys.executable).parent / "news-ingest"
PROGRESS = re.compile(r"\d+:\d\d  feeds (\d+)/(\d+)  items seen (\d+), fetched (\d+) \([\d.]+/s\), "
                      r"extracted (\d+), written (\d+)")


@pytest.fixture
def slow_feed(site, tmp_path):
    """One feed of four demo pages, one of them slow enough for progress to show."""
    names = list(SEED_PAGES.values())[:4]
    for number, name in enumerate(names):
        site.add(f"/p/{number}", (DEMO_PAGES / name).read_bytes(), delay_s=1.6 if number == 0 else 0)
    site.add("/feed.xml", rss([{"link": f"/p/{number}"} for number in range(len(names))]),
             content_type="application/rss+xml")
    return site.url("/feed.xml")


def run_command(*args: str, stderr_on_terminal: bool, columns: int = 0) -> tuple[int, str, str]:
    """The installed command; stderr on a pseudo-terminal (of `columns`, if
    given) or a pipe. (status, stdout, stderr)."""
    if not stderr_on_terminal:
        done = subprocess.run([COMMAND, *args], capture_output=True, text=True, timeout=300)
        return done.returncode, done.stdout, done.stderr
    leader, follower = pty.openpty()
    if columns:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    with subprocess.Popen([COMMAND, *args], stdout=subprocess.PIPE, stderr=follower) as child:
        os.close(follower)
        terminal = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            terminal += chunk
        out = child.stdout.read().decode()
        child.wait(timeout=300)
    os.close(leader)
    return child.returncode, out, terminal.decode()


def worker_logs() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("news-ingest-workers-")}


def test_a_terminal_sees_progress_and_the_summary_stands_alone(slow_feed, tmp_path):
    code, out, terminal = run_command("run", "--feeds", slow_feed, "--out", str(tmp_path / "out"),
                                      "--allow-private-network", stderr_on_terminal=True, columns=200)
    assert code == 0, terminal
    redraws = terminal.split("\r")
    shown = [PROGRESS.search(line) for line in redraws]
    shown = [match for match in shown if match]
    assert len(shown) >= 2, terminal  # redrawn while the slow page was fetched
    assert all(match.group(2) == "1" for match in shown)
    assert int(shown[-1].group(4)) >= 3  # the quick pages were counted before the slow one came
    assert all(re.search(r"written \d+\x1b\[K$", line) for line in redraws if PROGRESS.search(line))
    assert terminal.endswith("\r\x1b[K")  # erased at the end
    assert out.startswith("run ") and "4 of 4 items accounted for" in out and "\r" not in out


def test_logs_get_no_progress_and_quiet_gets_one_line(slow_feed, tmp_path):
    code, out, err = run_command("run", "--feeds", slow_feed, "--out", str(tmp_path / "out"),
                                 "--allow-private-network", stderr_on_terminal=False)
    assert code == 0 and err == "" and "4 of 4 items accounted for" in out

    code, out, err = run_command("run", "-q", "--feeds", slow_feed, "--out", str(tmp_path / "quiet"),
                                 "--allow-private-network", stderr_on_terminal=False)
    assert code == 0 and err == ""
    assert out.count("\n") == 1 and "items seen 4: articles 4" in out


def test_verbose_prints_progress_lines_without_a_terminal(slow_feed, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "LOG_LINE_S", 0.3)
    code = main(["run", "-v", "--feeds", slow_feed, "--out", str(tmp_path / "out"),
                 "--allow-private-network"])
    err = capsys.readouterr().err
    assert code == 0
    lines = [PROGRESS.search(line) for line in err.splitlines() if line.startswith("news-ingest: ")]
    assert len(lines) >= 3 and all(lines), err
    fetched = [int(match.group(4)) for match in lines]
    assert fetched == sorted(fetched) and fetched[-1] >= 3


def test_worker_processes_chatter_is_kept_aside(slow_feed, tmp_path):
    multi = ("--direct_num_workers", "2", "--direct_running_mode", "multi_processing")
    before = worker_logs()
    code, out, err = run_command("run", "--feeds", slow_feed, "--out", str(tmp_path / "a"),
                                 "--allow-private-network", *multi, stderr_on_terminal=False)
    assert code == 0 and "4 of 4 items accounted for" in out
    assert err == ""
    assert worker_logs() == before  # removed after a run that worked

    code, out, err = run_command("-vv", "run", "--feeds", slow_feed, "--out", str(tmp_path / "b"),
                                 "--allow-private-network", *multi, stderr_on_terminal=False)
    assert code == 0 and "sdk_worker" in err  # -vv shows everything


def test_log_lines_are_not_written_onto_the_progress_line(slow_feed, tmp_path):
    code, _, terminal = run_command("-vv", "run", "--feeds", slow_feed, "--out", str(tmp_path / "out"),
                                    "--allow-private-network", stderr_on_terminal=True, columns=200)
    assert code == 0
    segments = terminal.split("\r")
    assert any(PROGRESS.search(line) for line in segments) and any("INFO " in line for line in segments)
    assert not [line for line in segments if PROGRESS.search(line) and "INFO " in line]


def test_verbosity_before_and_after_the_command(slow_feed, tmp_path):
    code, _, err = run_command("-q", "run", "-v", "--feeds", slow_feed, "--out", str(tmp_path / "a"),
                               stderr_on_terminal=False)
    assert code == 2 and err == "news-ingest: error: -q and -v cannot go together\n"
    code, _, err = run_command("-v", "run", "-v", "--feeds", slow_feed, "--out", str(tmp_path / "b"),
                               "--allow-private-network", stderr_on_terminal=False)
    assert code == 0 and "INFO apache_beam" in err  # -v twice is -vv


def test_a_closed_stderr_does_not_stop_a_run(slow_feed, tmp_path):
    done = subprocess.run([COMMAND, "run", "--feeds", slow_feed, "--out", str(tmp_path / "out"),
                           "--allow-private-network"], capture_output=False, stdout=subprocess.PIPE,
                          text=True, timeout=300, preexec_fn=lambda: os.close(2))
    assert done.returncode == 0 and "4 of 4 items accounted for" in done.stdout


def test_slowest_feeds_are_timed_at_the_server_not_in_our_queue(site, tmp_path):
    """Twelve quick pages on one host, taken one at a time 0.3 s apart, wait
    3 s in our queue; one slow page is what the summary should point at."""
    for number in range(12):
        site.add(f"/quick/{number}", f"<html><body><p>{'word ' * 80}{number}</p></body></html>")
    site.add("/slow", "<html><body><p>" + "word " * 80 + "</p></body></html>", delay_s=1.2)
    site.add("/quick.xml", rss([{"link": f"/quick/{n}"} for n in range(12)]),
             content_type="application/rss+xml")
    site.add("/slow.xml", rss([{"link": "/slow"}]), content_type="application/rss+xml")
    listing = tmp_path / "feeds.txt"
    listing.write_text(f"{site.url('/quick.xml')}\n{site.url('/slow.xml')}\n")
    summary = tmp_path / "summary.json"
    assert main(["run", "-q", "--feeds", str(listing), "--out", str(tmp_path / "out"),
                 "--allow-private-network", "--per-host", "1", "--host-delay", "0.3",
                 "--summary-json", str(summary)]) == 0
    slowest = json.loads(summary.read_text())["slowest_feeds"]
    assert slowest[0]["feed"] == site.url("/slow.xml") and slowest[0]["slowest_page_seconds"] >= 1.2
    quick = next(row for row in slowest if row["feed"] == site.url("/quick.xml"))
    assert quick["pages"] == 12 and quick["pages_seconds"] < 1.0

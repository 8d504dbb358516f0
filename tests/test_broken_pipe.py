"""`news-ingest … | head`: when the reader of standard output leaves, a
command stops quietly (exit 141, as a tool stopped by SIGPIPE), with no
traceback, and keeps what it wrote; `stream` does not call it a failed poll."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import DEMO_FEEDS, DEMO_PAGES, ROOT

pytestmark = pytest.mark.e2e  # the installed command in processes of its own

COMMAND = os.path.join(os.path.dirname(sys.executable), "news-ingest")


def run_with_reader_gone(*args: str, read_lines: int = 0) -> tuple[int, str]:
    """Run the command with its stdout a pipe we close after `read_lines`
    lines (0: before it writes anything); (exit status, stderr)."""
    with subprocess.Popen([COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          cwd=ROOT) as child:
        for _ in range(read_lines):
            assert child.stdout.readline(), "the command ended before its first line"
        child.stdout.close()
        errors = child.stderr.read().decode("utf-8", "replace")
        return child.wait(timeout=600), errors


def assert_quiet(errors: str) -> None:
    assert "Traceback" not in errors and "Exception ignored" not in errors, errors


def test_extract_into_a_closed_pipe_stops_quietly():
    pages = [str(path) for path in sorted(DEMO_PAGES.glob("*.html"))]
    code, errors = run_with_reader_gone("extract", *pages)
    assert code == 141
    assert_quiet(errors)


def test_report_into_a_closed_pipe_stops_quietly_and_still_writes_the_page(tmp_path):
    out = tmp_path / "data"
    assert subprocess.run([COMMAND, "run", "--feeds", str(DEMO_FEEDS), "--out", str(out), "-q"],
                          capture_output=True, timeout=600).returncode == 0
    code, errors = run_with_reader_gone("report", "--out", str(out))
    assert code == 141
    assert_quiet(errors)
    assert (out / "report.html").stat().st_size > 0


def test_a_stream_whose_reader_left_stops_after_writing_its_poll(tmp_path):
    out = tmp_path / "data"
    code, errors = run_with_reader_gone("stream", "--feeds", str(DEMO_FEEDS), "--out", str(out),
                                        "--interval", "1h", "--polls", "1", read_lines=1)
    assert code == 141
    assert_quiet(errors)
    assert "poll failed" not in errors, errors
    assert list((out / "articles").rglob("*.parquet")), "the poll's articles are written"

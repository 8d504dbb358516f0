"""The command line: one-line errors for bad input, `extract` output contract."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.options import parse_interval

from .conftest import DEMO_PAGES, SEED_PAGES

CONTRACT_KEYS = {"title", "text", "published", "language", "actors", "primary_actor", "event_types"}


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("news-ingest: error:") and "\n" not in err, err
    return err


def test_missing_feed_list_is_a_one_line_error(capsys, tmp_path):
    assert main(["run", "--feeds", str(tmp_path / "nope.opml"), "--out", str(tmp_path)]) == 1
    assert "cannot read feed list" in one_line_error(capsys)


def test_feeds_option_is_required(capsys, tmp_path):
    assert main(["run", "--out", str(tmp_path)]) == 2, "a usage error, as the README says"
    assert "--feeds is required" in one_line_error(capsys)


def test_unwritable_output_is_a_one_line_error(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["run", "--feeds", "https://a.example/rss", "--out", str(blocker)]) == 1
    assert "not a folder" in one_line_error(capsys)


def test_unknown_option_is_refused(capsys, tmp_path):
    assert main(["run", "--feeds", "https://a.example/rss", "--out", str(tmp_path),
                 "--frobnicate", "3"]) == 2
    assert "unknown option --frobnicate" in one_line_error(capsys)


@pytest.mark.parametrize("option, value, said", [
    ("--concurrency", "0", "--concurrency must be positive"),
    ("--retries", "-1", "--retries must be 0 or more"),
    ("--dedup-days", "-3", "--dedup-days must be 0 or more"),
])
def test_bad_numbers_are_usage_errors(capsys, tmp_path, option, value, said):
    assert main(["run", "--feeds", "https://a.example/rss", "--out", str(tmp_path), option, value]) == 2
    assert said in one_line_error(capsys)


def test_a_bad_beam_option_is_one_line_not_beams_whole_usage(capsys, tmp_path):
    for command in ("run", "stream"):
        assert main([command, "--feeds", "https://a.example/rss", "--out", str(tmp_path),
                     "--direct_num_workers=abc"]) == 2
        assert "--direct_num_workers: invalid int value: 'abc'" in one_line_error(capsys)


@pytest.mark.parametrize("given, size", [("5000000", 5_000_000), ("500k", 500_000), ("5MB", 5_000_000),
                                         ("5MiB", 5 * 1024 ** 2), ("1.5G", 1_500_000_000), ("2 KiB", 2048)])
def test_page_size_limits_take_units(given, size):
    from pipelines.arguments import byte_size

    assert byte_size(given) == size


@pytest.mark.parametrize("given", ["5i", "5iB", "1.5", "0.5", "MiB", "1" + "0" * 400, "9" * 20 + "G"])
def test_sizes_that_are_not_whole_bytes_are_refused(given):
    import argparse

    from pipelines.arguments import byte_size

    with pytest.raises(argparse.ArgumentTypeError):
        byte_size(given)


def test_force_is_for_run_not_for_a_stream(capsys, tmp_path):
    assert main(["stream", "--feeds", "https://a.example/rss", "--out", str(tmp_path), "--force"]) == 2
    assert "--force is for `run`" in one_line_error(capsys)


def test_a_page_size_that_is_no_size_is_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exited:
        main(["run", "--feeds", "https://a.example/rss", "--out", str(tmp_path),
              "--max-page-bytes", "5 lots"])
    assert exited.value.code == 2
    assert "not a size in whole bytes: '5 lots'" in capsys.readouterr().err


def test_extract_prints_the_contract_fields(capsys):
    page = DEMO_PAGES / SEED_PAGES["000_d9df6ba20024fa5b.txt"]
    assert main(["extract", str(page)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert set(record) >= CONTRACT_KEYS
    assert record["published"] == "2017-08-03"
    assert record["language"] == "en"
    assert {"shq", "coalition"} <= set(record["actors"])
    assert record["primary_actor"] == "coalition"
    assert "Join us in the newsroom" not in record["text"]


def test_extract_reports_bad_pages_and_goes_on(capsys, tmp_path):
    empty = tmp_path / "empty.html"
    empty.write_text("<html><body></body></html>")
    page = DEMO_PAGES / SEED_PAGES["002_cbc5fa8c468d4c15.txt"]
    assert main(["extract", str(tmp_path / "missing.html"), str(empty), str(page)]) == 1
    captured = capsys.readouterr()
    assert len(captured.out.strip().splitlines()) == 1
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2 and "missing.html" in errors[0] and "empty.html" in errors[1]


def test_installed_command_reads_a_page_from_stdin():
    command = Path(sys.executable).parent / "news-ingest"
    page = (DEMO_PAGES / SEED_PAGES["004_101b7afe40c93a6a.txt"]).read_bytes()
    done = subprocess.run([command, "extract", "-", "--url",
                           "https://www.arabtimesonline.com/news/x/"],
                          input=page, capture_output=True, timeout=120, check=True)
    record = json.loads(done.stdout)
    assert record["source"] == "arabtimesonline.com"
    assert "new-syrian-forces" in record["actors"]
    assert "8399" not in record["text"]


@pytest.mark.parametrize("interval, problem", [
    ("15", "is not a duration"), ("5 minutes", "is not a duration"), ("0s", "shorter than one second"),
    ("5x", "is not a duration"), ("3000000h", "longer than 7 days"), ("99999999999999h", "longer than")])
def test_a_bad_stream_interval_is_a_usage_error(capsys, tmp_path, interval, problem):
    assert main(["stream", "--feeds", "https://a.example/rss", "--out", str(tmp_path),
                 "--interval", interval]) == 2
    assert problem in one_line_error(capsys)
    assert not (tmp_path / "_state").exists(), "nothing started"


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400),
                                           ("1.5m", 90), ("1d", 86400)])
def test_stream_intervals(text, seconds):
    assert parse_interval(text).total_seconds() == seconds


def test_stream_refuses_unknown_options_like_run(capsys, tmp_path):
    assert main(["stream", "--feeds", "https://a.example/rss", "--out", str(tmp_path),
                 "--intervall", "5m"]) == 2
    assert "unknown option --intervall (see news-ingest stream --help)" in one_line_error(capsys)


def test_version_names_ours_and_the_libraries_that_shape_the_output(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    printed = capsys.readouterr().out.strip()
    assert printed == (f"news-ingest {version('news-ingest')} (Apache Beam {version('apache-beam')}, "
                       f"trafilatura {version('trafilatura')})")


@pytest.mark.parametrize("command", [["--help"], ["run", "--help"], ["--version"], ["extract", "PAGE"]])
def test_help_version_and_extract_start_without_beam(command):
    """Importing Beam costs about a second, and datasketch (with scipy, for
    the run's near-copy signatures) 0.3 s: the commands that build no
    pipeline never import them (a fresh interpreter, as a user starts one)."""
    page = sorted(DEMO_PAGES.glob("*.html"))[0]
    argv = [str(page) if word == "PAGE" else word for word in command]
    program = ("import sys\nfrom pipelines.cli import main\n"
               f"try:\n    code = main({argv!r})\nexcept SystemExit as exit:\n    code = exit.code\n"
               "sys.stdout.flush()\n"
               "print('BEAM' if any(name.startswith(('apache_beam', 'datasketch')) for name in sys.modules)"
               " else 'NO BEAM',"
               " code, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.stderr.strip().splitlines()[-1] == "NO BEAM 0", done.stderr
    assert done.stdout  # it did its work: usage, version or the page's JSON

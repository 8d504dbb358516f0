"""Odd dataset paths a user may give: each names its own dataset, and only it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import main

from .conftest import DEMO_FEEDS, article_urls, run_cli, write_feed

pytestmark = pytest.mark.e2e  # whole runs through the command line: `make test-fast` skips them


def test_an_out_path_with_wildcards_is_its_own_dataset(tmp_path):
    # `--out "/x/al*"` once read /x/alpha's fingerprints: nothing ingested, feed state saved.
    code, printed, _ = run_cli("--feeds", str(DEMO_FEEDS), "--out", str(tmp_path / "alpha"))
    assert code == 0, printed
    ingested = article_urls(tmp_path / "alpha")
    files = sorted((tmp_path / "alpha").rglob("*"))
    assert ingested
    for name in ("al*", "[a]l?ha"):
        code, printed, summary = run_cli("--feeds", str(DEMO_FEEDS), "--out", str(tmp_path / name))
        assert code == 0, printed
        assert summary["items"]["already_ingested"] == 0, printed
        assert article_urls(tmp_path / name) == ingested, printed
    assert sorted((tmp_path / "alpha").rglob("*")) == files  # nothing of it read, deleted or added


def test_an_empty_out_is_a_usage_error_and_writes_nothing(tmp_path, monkeypatch):
    # An unset $OUT in a crontab once wrote the dataset into the working folder.
    monkeypatch.chdir(tmp_path)
    for out in ("", "  "):
        code, printed, _ = run_cli("--feeds", str(DEMO_FEEDS), "--out", out)
        assert code == 2, printed
        assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["report"], ["compact"], ["memory"], ["memory", "--rebuild"], ["verify"],
                                     ["stream", "--feeds", str(DEMO_FEEDS), "--polls", "1"]])
@pytest.mark.parametrize("out", ["", " "])
def test_every_command_refuses_an_empty_out(tmp_path, monkeypatch, capsys, command, out):
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--out", out]) == 2
    assert "--out is empty" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_probe_is_not_left_behind(tmp_path):
    # As on a full disk: files can be created, not written (a file size limit of 0 bytes).
    script = ("import resource, signal, sys\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))\n"
              "from pipelines.options import PreflightError, output_dir\n"
              "try:\n    output_dir(sys.argv[1])\nexcept PreflightError as error:\n    print(error)\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert "cannot write to --out" in done.stdout, done.stdout + done.stderr
    assert [path.name for path in (tmp_path / "_state").iterdir()] == []


def test_a_failed_run_leaves_the_learned_templates_as_they_were(tmp_path, capsys):
    # A failed run once wrote its template history anyway, and removed the older one.
    out = tmp_path / "data"
    code, printed, _ = run_cli("--feeds", str(write_feed(tmp_path, range(1, 3))), "--out", str(out))
    assert code == 0, printed
    state = sorted((out / "_state").rglob("*.parquet"))
    assert [path.parent.name for path in state].count("templates") == 1
    (out / "articles").rename(tmp_path / "articles-elsewhere")
    (out / "articles").write_text("a file where the table's folder was: every write fails")
    code, printed, _ = run_cli("--feeds", str(write_feed(tmp_path, range(1, 5))), "--out", str(out))
    assert code == 1 and "run failed" in capsys.readouterr().err, printed
    assert sorted((out / "_state").rglob("*.parquet")) == state

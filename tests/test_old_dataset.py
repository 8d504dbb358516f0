"""A dataset written by the oldest release (tests/data/old-dataset: its
README says how) keeps working: `run`, `stream`, `report` and the README's
queries read it, and a run adds to it without ingesting anything twice."""
from __future__ import annotations

import io
import os
import runpy
import shutil
from contextlib import redirect_stdout

import duckdb
import pytest

from pipelines.cli import main

from .conftest import DEMO_FEEDS, ROOT, article_urls, query_examples, run_cli, write_feed

pytestmark = pytest.mark.e2e  # whole runs through the command line: `make test-fast` skips them

OLD = ROOT / "tests" / "data" / "old-dataset"


@pytest.fixture
def old_dataset(tmp_path):
    out = tmp_path / "data"
    shutil.copytree(OLD, out, ignore=shutil.ignore_patterns("README.md"))
    return out


def test_a_run_reads_it_and_ingests_nothing_twice(old_dataset, tmp_path):
    before = article_urls(old_dataset)
    code, printed, summary = run_cli("--feeds", str(DEMO_FEEDS), "--out", str(old_dataset))
    assert code == 0, printed
    # Its pages were file: URLs of another checkout, so they are met again by their text.
    assert (summary["items"]["articles"], summary["items"]["duplicates"]) == (0, 7), printed
    assert article_urls(old_dataset) == before
    # A new story, in today's schema, beside the old files; read as the README says.
    code, printed, summary = run_cli("--feeds", str(write_feed(tmp_path, range(1, 2))),
                                     "--out", str(old_dataset))
    assert code == 0 and summary["items"]["articles"] == 1, printed
    folder = f"{old_dataset}/articles/**/*.parquet"
    assert duckdb.sql(f"select count(*), count(numbers) from read_parquet('{folder}', "
                      "hive_partitioning=true, union_by_name=true)").fetchall() == [(6, 1)]


def test_stream_reads_it(old_dataset):
    captured = io.StringIO()
    with redirect_stdout(captured):
        code = main(["stream", "--feeds", str(DEMO_FEEDS), "--out", str(old_dataset), "--polls", "1"])
    assert code == 0, captured.getvalue()
    assert article_urls(old_dataset) == article_urls(OLD)


def test_report_reads_it(old_dataset):
    captured = io.StringIO()
    with redirect_stdout(captured):
        code = main(["report", "--out", str(old_dataset)])
    assert code == 0, captured.getvalue()
    assert "syrian-regime" in captured.getvalue()


@pytest.mark.parametrize("number", [0, 1])
def test_the_readme_queries_read_it(old_dataset, site, tmp_path, monkeypatch, capfd, number):
    # The README's first example also reads `rejects`, which that release never wrote.
    assert run_cli("--feeds", site.url("/gone.xml"), "--out", str(old_dataset),
                   "--allow-private-network")[0] == 3  # its one feed failed
    monkeypatch.chdir(tmp_path)
    script = tmp_path / f"example{number}.py"
    script.write_text(query_examples()[number])
    runpy.run_path(str(script), run_name="__main__")
    printed = capfd.readouterr().out
    assert "thedefensepost.com" in printed and "gulfwire.example" in printed, printed
    assert os.getcwd() == str(tmp_path)

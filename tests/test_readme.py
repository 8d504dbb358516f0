"""The README's "Query the data" examples run as printed: on exactly what
`make run` leaves (the demo: no rejects yet), and once a feed has failed
(every table has files)."""
from __future__ import annotations

import os
import runpy

import pytest

from .conftest import ROOT, query_examples, run_cli

pytestmark = pytest.mark.e2e  # whole runs through the command line: `make test-fast` skips them


@pytest.fixture(params=["make-run", "with-rejects"])
def dataset_in_cwd(request, tmp_path, site, monkeypatch) -> str:
    """`data/` in the working folder: the demo as `make run` writes it, and
    (second case) a run over a feed that is gone."""
    assert run_cli("--feeds", str(ROOT / "seeds" / "demo.opml"), "--out", str(tmp_path / "data"))[0] == 0
    if request.param == "with-rejects":
        assert run_cli("--feeds", site.url("/gone.xml"), "--out", str(tmp_path / "data"),
                       "--allow-private-network")[0] == 3  # its one feed failed
    monkeypatch.chdir(tmp_path)
    return request.param


@pytest.mark.parametrize("number, expected", [
    # One text from each example: the actor's articles, co-mentions, syndication (, rejects).
    (0, ["thedefensepost.com", "syrian-regime", "gulfwire.example"]),  # DuckDB
    (1, ["thedefensepost.com", "syrian-regime", "gulfwire.example"]),  # Polars
])
def test_query_examples_run_on_the_demo(dataset_in_cwd, capfd, tmp_path, number, expected):
    examples = query_examples()
    assert len(examples) == 2
    script = tmp_path / f"example{number}.py"
    script.write_text(examples[number])
    runpy.run_path(str(script), run_name="__main__")
    printed = capfd.readouterr().out
    for text in expected:
        assert text in printed, printed
    if number == 0:  # DuckDB's last query: rejects by stage, once there are any
        assert ("http-status" in printed) == (dataset_in_cwd == "with-rejects"), printed
    assert os.getcwd() == str(tmp_path)

"""The report page rendered by headless Chromium, offline: the chart draws one
bar trace per top actor and the tables are there.

Needs Debian's chromium (`make test-browser` installs it and runs this);
`make test` skips it where Chromium is missing, and CI installs Chromium
alongside the suite and runs it after.
"""
from __future__ import annotations

import shutil
import subprocess

import pytest
from lxml import html as lxml_html

from pipelines.report import build_report

from .conftest import HEADINGS, report_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test-browser)")]

# As root, with no network: no sandbox, and none of Chromium's own connections.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900", "--virtual-time-budget=10000"]


def chromium(tmp_path, *args: str) -> str:
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def test_chromium_draws_the_chart_offline(demo, capsys, tmp_path):
    page = tmp_path / "report.html"
    assert report_cli(capsys, "--out", str(demo), "--html", str(page))[0] == 0
    dom = lxml_html.fromstring(chromium(tmp_path, "--dump-dom", page.as_uri()))

    chart = dom.get_element_by_id("articles-per-day")
    assert chart.xpath(".//svg[contains(@class, 'main-svg')]"), "Plotly drew nothing"
    actors = list(build_report(str(demo)).series)
    legend = [text.text_content() for text in chart.xpath(".//text[contains(@class, 'legendtext')]")]
    assert legend == list(reversed(actors))  # a stacked chart lists its top trace first
    in_plot = "[not(ancestor::*[contains(@class, 'rangeslider')])]"  # not the slider's copy
    traces = chart.xpath(f".//g[contains(@class, 'trace') and contains(@class, 'bars')]{in_plot}")
    assert len(traces) == len(actors)
    bars = [path.get("d") for trace in traces for path in trace.xpath(".//g[contains(@class, 'point')]/path")]
    assert bars and all(d and d != "M0,0Z" for d in bars)
    assert [h.text_content() for h in dom.iter("h2")][1:] == HEADINGS

    screenshot = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={screenshot}", page.as_uri())
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

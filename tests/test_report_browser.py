"""The report page rendered by headless Chromium, offline: the chart draws one
bar trace per top actor, the tables are there, and the article list answers
its filters, the chart's bars and the tables' cells as a user clicks them, at
a desktop's width and a phone's.

Needs Debian's chromium and Playwright to drive it (`make test-browser`
installs both and runs this); `make test` skips it where they are missing,
and CI installs Chromium alongside the suite and runs it after.
"""
from __future__ import annotations

import shutil
import subprocess

import pytest
from lxml import html as lxml_html

from pipelines.report import build_report

from .conftest import HEADINGS, query, report_cli

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
    assert [h.text_content() for h in dom.iter("h2")][1:] == ["Articles", *HEADINGS]

    screenshot = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={screenshot}", page.as_uri())
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api",
                                     reason="Playwright not installed (make test-browser)")
    with playwright.sync_playwright() as driver:
        # Debian's Chromium, offline: Playwright downloads no browser of its own.
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page_file(demo, tmp_path_factory):
    page = tmp_path_factory.mktemp("page") / "report.html"
    from pipelines.cli import main

    assert main(["report", "--out", str(demo), "--html", str(page), "-q"]) == 0
    return page


def open_page(browser, page_file, width=1400, address=""):
    tab = browser.new_page(viewport={"width": width, "height": 900})
    errors = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on("request", lambda request: errors.append(f"fetched {request.url}")
           if not request.url.startswith("file:") else None)
    tab.goto(page_file.as_uri() + address)
    tab.wait_for_function("document.getElementById('articles-status').textContent")  # the list is drawn
    return tab, errors


def shown(tab) -> list[str]:
    return tab.locator("#articles tbody tr td:first-child").all_text_contents()


def titles_naming(demo, *actors: str) -> list[str]:
    wanted = " and ".join(f"list_contains(actors, '{actor}')" for actor in actors)
    return [title for (title,) in query(demo, "articles", f"select title from t where {wanted} "
                                                          "order by date desc, published_at desc")]


def test_filters_change_the_rows_shown(browser, page_file, demo):
    tab, errors = open_page(browser, page_file)
    every = shown(tab)
    assert len(every) == 5 and tab.text_content("#articles-status") == "1–5 of 5 matching of 5 listed"

    tab.select_option("select[name=actor]", "russia")
    assert shown(tab) == titles_naming(demo, "russia") and 0 < len(shown(tab)) < 5
    assert tab.url.endswith("#actor=russia")  # the view is in the address

    tab.fill("input[name=q]", "SYRIAN")  # words, any case
    expected = [title for title in titles_naming(demo, "russia") if "syrian" in title.lower()]
    assert shown(tab) == expected

    tab.click("#filters button[type=reset]")
    tab.fill("input[name=from]", "2017-06-01")
    tab.fill("input[name=to]", "2017-08-31")
    in_range = [title for (title,) in query(demo, "articles", "select title from t where date between "
                                            "'2017-06-01' and '2017-08-31' order by date desc")]
    assert shown(tab) == in_range and len(in_range) == 3
    tab.fill("input[name=q]", "no title has these words")
    assert shown(tab) == [] and tab.text_content("#articles-status").startswith("0 matching of 5")
    assert errors == []


def test_clicks_on_the_tables_and_the_chart_filter_the_list(browser, page_file, demo):
    tab, errors = open_page(browser, page_file)
    # A cell of "Actors named together": the list shows exactly the articles it counts.
    first_row = tab.locator("h2:text-is('Actors named together') + .scroll tbody tr").nth(0)
    cell = first_row.locator("button").nth(7)
    count = int(cell.text_content())
    filters = cell.get_attribute("data-filter")
    cell.click()
    assert len(shown(tab)) == count and f"of {count} matching" in tab.text_content("#articles-status")
    assert shown(tab) == titles_naming(demo, *json_values(filters))

    tab.locator("h2:text-is('Top actors') + .scroll button", has_text="mat").first.click()
    assert shown(tab) == titles_naming(demo, "mat")
    tab.go_back()  # each click is a view in the history
    assert len(shown(tab)) == count

    # A bar of the chart: its actor, over the month it sums.
    bar = tab.locator("#articles-per-day g.trace.bars").first.locator("g.point path").first
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    tab.mouse.move(x - 3, y)  # a pointer comes to the bar, Plotly shows what it holds, then the click
    tab.mouse.move(x, y)
    tab.wait_for_selector("#articles-per-day .hoverlayer .hovertext")
    tab.mouse.click(x, y)
    tab.wait_for_function("location.hash.includes('from=')")
    state = dict(part.split("=") for part in tab.evaluate("location.hash").lstrip("#").split("&"))
    assert state["from"][:7] == state["to"][:7]  # one month's days
    expected = [title for (title,) in query(demo, "articles", f"""
        select title from t where list_contains(actors, '{state["actor"]}')
        and date between '{state["from"]}' and '{state["to"]}' order by date desc, published_at desc""")]
    assert expected and shown(tab) == expected
    assert errors == []


def json_values(filters: str) -> list[str]:
    import json

    return list(json.loads(filters).values())


def test_an_address_opens_its_view(browser, page_file):
    tab, errors = open_page(browser, page_file, address="#source=syriahr.com&language=en")
    assert len(shown(tab)) == 1 and tab.input_value("select[name=source]") == "syriahr.com"
    assert tab.locator("#pager").is_hidden()  # one page of rows: no pager

    # A value no listed article has stays visible and applied, and typing keeps it.
    tab, errors = open_page(browser, page_file, address="#source=gone.example")
    assert tab.input_value("select[name=source]") == "gone.example"
    assert "gone.example (none listed)" in tab.locator("select[name=source]").inner_text()
    tab.fill("input[name=q]", "syrian")
    assert "source=gone.example" in tab.url and shown(tab) == []
    for other in ("gone2.example", "gone3.example"):  # only the value chosen is offered
        tab.evaluate(f"location.hash = 'source={other}'")
        tab.wait_for_function(f"document.querySelector('select[name=source]').value == '{other}'")
    assert tab.locator("select[name=source] option", has_text="none listed").count() == 1
    tab.click("#filters button[type=reset]")
    assert tab.locator("select[name=source] option", has_text="none listed").count() == 0
    assert len(shown(tab)) == 5 and "#" not in tab.url

    # A day that is not one is ignored, not applied unseen; an ordinary fragment is left alone.
    tab, errors_too = open_page(browser, page_file, address="#from=garbage&language=en")
    assert len(shown(tab)) == 5 and tab.url.endswith("#language=en")
    tab, errors_three = open_page(browser, page_file, address="#articles-list")
    assert tab.url.endswith("#articles-list") and tab.evaluate("scrollY") > 0
    assert errors == errors_too == errors_three == []


def test_the_page_works_without_an_address_of_its_own(browser, page_file):
    """Mail and notebook previews show a page from about:blank or srcdoc."""
    tab = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.set_content(page_file.read_text())
    tab.select_option("select[name=actor]", "russia")
    tab.click("#filters button[type=reset]")
    assert len(shown(tab)) == 5 and errors == []


HOSTILE_TITLE = "</script><script>window.pwned = 1</script><!-- <b>bold</b>"
LONG_WORD = "https://example.org/" + "x" * 400


@pytest.fixture(scope="module")
def hostile_page(demo, tmp_path_factory):
    """The demo with what a hostile or broken feed may bring: a title that
    closes the script element, addresses that run code, one 400-letter word."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.cli import main

    copy = tmp_path_factory.mktemp("hostile") / "data"
    shutil.copytree(demo, copy)
    values = [(HOSTILE_TITLE, "javascript:window.pwned = 2", "a.example"),
              ("data link", "data:text/html,<script>x</script>", "b.example"),
              ("spaced link", " javascript:window.pwned = 3", "c.example"),
              (LONG_WORD, LONG_WORD, "d" * 63 + ".example")]  # a site controls its domain's length
    for part, (title, url, source) in zip(sorted((copy / "articles").rglob("*.parquet")), values,
                                          strict=False):
        table = pq.read_table(part)
        for name, value in (("title", title), ("url", url), ("source", source)):
            table = table.set_column(table.schema.get_field_index(name), name, pa.array([value] * len(table)))
        pq.write_table(table, part)
    page = copy / "report.html"
    assert main(["report", "--out", str(copy), "-q"]) == 0
    return page


@pytest.mark.parametrize("width", [1400, 390])
def test_feed_values_are_text_and_addresses_that_run_code_are_not_links(browser, hostile_page, width):
    tab, errors = open_page(browser, hostile_page, width=width)
    assert HOSTILE_TITLE in shown(tab) and tab.evaluate("window.pwned") is None
    links = tab.locator("#articles tbody a").evaluate_all("links => links.map(link => link.href)")
    assert len(links) == 2 and all(link.startswith(("file:", "https:")) for link in links)
    # The 400-letter word and the 63-letter domain wrap in their cells: nothing is pushed off the screen.
    assert tab.evaluate("document.getElementById('articles').offsetWidth") <= width
    assert tab.evaluate("document.documentElement.scrollWidth") <= width
    assert errors == []


def test_a_page_without_a_list_has_tables_but_nothing_to_click(browser, demo, tmp_path):
    from pipelines.cli import main

    page = tmp_path / "bare.html"
    assert main(["report", "--out", str(demo), "--list", "0", "--html", str(page), "-q"]) == 0
    tab = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(page.as_uri())
    tab.wait_for_selector("#articles-per-day .main-svg")
    assert tab.locator("text=Not listed (--list 0).").is_visible()
    assert tab.locator("button[data-filter]").count() == 0 and errors == []


def test_a_shortened_list_says_the_tables_count_more(browser, demo, tmp_path):
    from pipelines.cli import main

    page = tmp_path / "two.html"
    assert main(["report", "--out", str(demo), "--list", "2", "--html", str(page), "-q"]) == 0
    tab, errors = open_page(browser, page)
    assert len(shown(tab)) == 2
    assert tab.text_content("#articles-status") == (
        "1–2 of 2 matching of 2 listed (the newest of 5 in the range: the tables and the chart count "
        "them all)")
    assert errors == []


@pytest.mark.parametrize("width", [1400, 390])
def test_the_page_fits_a_desktop_and_a_phone(browser, page_file, tmp_path, width):
    """No sideways scrolling of the page at either width (wide tables scroll
    in their own box); no header broken inside a word; a screenshot of each."""
    tab, errors = open_page(browser, page_file, width=width)
    assert tab.evaluate("document.documentElement.scrollWidth") <= width
    broken = tab.evaluate("""[...document.querySelectorAll('th')].filter(th => th.offsetHeight
        > 1.8 * parseFloat(getComputedStyle(th).lineHeight)).map(th => th.textContent)""")
    assert broken == []
    if width < 700:  # a phone shows each article as a card, with every field labelled
        assert tab.locator("#articles thead").is_hidden()
    tab.screenshot(path=str(tmp_path / f"report-{width}.png"), full_page=True)
    assert (tmp_path / f"report-{width}.png").stat().st_size > 10_000
    assert errors == []

"""`news-ingest report`: figures that match DuckDB read directly, a page that
needs no network, clear words for empty or missing datasets."""
from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lxml import html as lxml_html

from pipelines.report import build_report

from .conftest import HEADINGS, query, report_cli, run_cli

pytestmark = pytest.mark.e2e  # whole runs through the command line: `make test-fast` skips them


def chart_data(page: str) -> dict:
    """The figure JSON a rendered page draws its chart from."""
    script = lxml_html.fromstring(page).get_element_by_id("chart-data")
    return json.loads(script.text)


def test_report_on_the_demo_matches_duckdb(demo, capsys, tmp_path):
    code, out, err = report_cli(capsys, "--out", str(demo), "--json", str(tmp_path / "report.json"))
    assert code == 0 and err == ""
    data = json.loads((tmp_path / "report.json").read_text())

    articles, sources = query(demo, "articles", "select count(*), count(distinct source) from t")[0]
    duplicates = query(demo, "duplicates")[0][0]
    assert (data["articles"], data["sources"], data["duplicates"], data["rejects"]) == (
        articles, sources, duplicates, 0)
    assert (articles, duplicates) == (5, 2)  # what `make run` prints
    assert data["duplicate_rate"] == round(duplicates / (articles + duplicates), 4)
    assert out.startswith(f"news-ingest report: {demo}  (2015-09-23 to 2018-09-18)\n"
                          "  articles 5 from 5 sources in 1 language; duplicates 2 (28.6% of stories seen)")

    tables = {table["title"]: table["rows"] for table in data["tables"]}
    assert list(tables) == HEADINGS
    mentioning = query(demo, "mentions", "select actor, count(distinct article_id), "
                                         "count(*) filter (where is_primary) from t group by actor")
    top = {row[0]: (row[2], row[3]) for row in tables["Top actors"]}
    assert len(top) == 8 and top == {actor: (n, primary) for actor, n, primary in mentioning if actor in top}
    assert min(n for n, _ in top.values()) >= max(n for actor, n, _ in mentioning if actor not in top)
    top_ids = list(top)
    together = dict(((a, b), n) for a, b, n in query(demo, "mentions", """
        select one.actor, other.actor, count(distinct article_id)
        from t as one join t as other using (article_id) group by all"""))
    assert tables["Actors named together"] == [
        [one, *(together.get((one, other), 0) for other in top_ids)] for one in top_ids]
    assert [row[1 + n] for n, row in enumerate(tables["Actors named together"])] == [
        top[actor][0] for actor in top_ids]  # the diagonal: articles naming the actor at all
    by_source = dict(((source, actor), n) for source, actor, n in query(demo, "articles", f"""
        select t.source, m.actor, count(distinct article_id) from t
        join read_parquet('{demo}/mentions/**/*.parquet', hive_partitioning=true) as m using (article_id)
        group by all"""))
    assert tables["Sources by actor"] == [
        [source, n, *(by_source.get((source, actor), 0) for actor in top_ids)]
        for source, n, *_ in tables["Sources"]]
    assert sorted(tables["Languages"]) == [["en", 5, "100.0%"]]
    assert {row[0]: row[1] for row in tables["Sources"]} == dict(
        query(demo, "articles", "select source, count(*) from t group by source"))
    assert dict(map(tuple, tables["Duplicates by method"])) == {"exact": 1, "url": 1}
    [cluster] = tables["Largest syndication clusters"]
    assert cluster[:2] == [1, "gulfwire.example"] and cluster[3] == "arabtimesonline.com"
    assert tables["Rejects by stage and error type"] == []

    # The daily series: every (day, actor) count as DuckDB gives it, zeros between.
    per_day = query(demo, "mentions", "select date::varchar, actor, count(distinct article_id) from t "
                                      "group by all")
    assert data["days"][0] == "2015-09-23" and data["days"][-1] == "2018-09-18"
    assert len(data["days"]) == (date(2018, 9, 18) - date(2015, 9, 23)).days + 1
    assert list(data["series"]) == list(top)
    expected = {(day, actor): n for day, actor, n in per_day if actor in top}
    found = {(day, actor): n for actor, counts in data["series"].items()
             for day, n in zip(data["days"], counts, strict=True) if n}
    assert found == expected


def test_the_page_is_self_contained_and_charts_the_series(demo, capsys):
    assert report_cli(capsys, "--out", str(demo))[0] == 0
    page = (demo / "report.html").read_text()
    tree = lxml_html.fromstring(page)
    assert [h.text_content() for h in tree.iter("h2")][1:] == ["Articles", *HEADINGS]
    # Nothing loaded from elsewhere: no src or stylesheet links; the chart's JavaScript is inline.
    assert not tree.xpath("//*[@src] | //link[@href]")
    assert "Plotly.newPlot('articles-per-day'" in page and len(page) > 1_000_000
    assert tree.get_element_by_id("articles-per-day") is not None

    report = build_report(str(demo))
    figure = chart_data(page)
    assert [trace["name"] for trace in figure["data"]] == list(report.series)
    for trace in figure["data"]:
        assert trace["type"] == "histogram" and trace["histfunc"] == "sum"
        assert trace["x"] == [day.isoformat() for day in report.days]
        assert trace["y"] == report.series[trace["name"]]
    assert figure["layout"]["barmode"] == "stack"
    # Three years of days are drawn as months; the actors' names are in the table.
    assert figure["data"][0]["xbins"]["size"] == "M1"
    assert "Liwa Shuhada al-Qaryatayn" in tree.text_content()


def listing(page: str) -> dict:
    """The article list a rendered page holds, rows decoded."""
    data = json.loads(lxml_html.fromstring(page).get_element_by_id("articles-data").text)
    return [(title, url, data["sources"][source], published, data["languages"][language],
             [data["actors"][n] for n in actors], [data["events"][n] for n in events])
            for title, url, source, published, language, actors, events in data["rows"]]


def test_the_page_lists_the_newest_articles_to_filter(demo, capsys, tmp_path):
    assert report_cli(capsys, "--out", str(demo), "--html", str(tmp_path / "all.html"))[0] == 0
    page = (tmp_path / "all.html").read_text()
    newest_first = query(demo, "articles", """
        select title, url, source, strftime(published_at, '%Y-%m-%d %H:%M'), language, actors, event_types
        from t order by date desc, published_at desc, article_id""")
    assert listing(page) == [tuple(row) for row in newest_first]
    assert len(newest_first) == 5 and all(row[5] and row[6] for row in newest_first)
    tree = lxml_html.fromstring(page)
    assert "All 5 articles in this range, newest first." in tree.text_content()
    assert {element.get("name") for element in tree.get_element_by_id("filters").iter("select", "input")} == {
        "actor", "with", "source", "language", "event", "from", "to", "q"}
    meta = tree.xpath("//p[@class='meta']")[0].text_content()
    assert re.match(rf"Generated \d{{4}}-\d\d-\d\d \d\d:\d\d UTC from {re.escape(str(demo))}\. ", meta)

    # The tables' actors, sources and languages are the list's filters; a cross cell filters by both.
    clicks = [json.loads(button.get("data-filter")) for button in tree.xpath("//button[@data-filter]")]
    assert {"actor": "isis"} in clicks and {"language": "en"} in clicks
    assert {"actor": "isis", "with": "russia"} in clicks
    assert {"source": "syriahr.com", "actor": "isis"} in clicks

    assert report_cli(capsys, "--out", str(demo), "--list", "2", "--html", str(tmp_path / "two.html"))[0] == 0
    two = (tmp_path / "two.html").read_text()
    assert listing(two) == [tuple(row) for row in newest_first[:2]]
    assert "The newest 2 of the 5 articles in this range" in lxml_html.fromstring(two).text_content()
    none = tmp_path / "none.html"
    assert report_cli(capsys, "--out", str(demo), "--list", "0", "--html", str(none))[0] == 0
    assert "Not listed (--list 0)." in none.read_text()
    for option, value in (("--list", "-1"), ("--list", "99999999999999999999"), ("--top", "0"),
                          ("--top", "99999999999999999999")):
        code, _, err = report_cli(capsys, "--out", str(demo), option, value)
        assert code == 2 and f"{option} must be between" in err and err.count("\n") == 1

    # The JSON report sums up; rows are the dataset's (it stays small on any dataset).
    code, out, _ = report_cli(capsys, "--out", str(demo), "--json", "-", "--html", str(tmp_path / "x.html"))
    data = json.loads(out)
    assert "listed" not in data and data["generated_at"].endswith("+00:00")


def test_a_feed_cannot_script_the_page(demo, capsys, tmp_path):
    """A title that closes the script element, and an address that runs code,
    arrive in the page as data: the list shows them as text, never as markup."""
    copy = tmp_path / "data"
    shutil.copytree(demo, copy)
    part = next((copy / "articles").rglob("*.parquet"))
    table = pq.read_table(part)
    title = "</script><script>alert(1)</script><!-- <b>bold</b>"
    url = "javascript:alert(2)"
    table = table.set_column(table.schema.get_field_index("title"), "title", pa.array([title] * len(table)))
    table = table.set_column(table.schema.get_field_index("url"), "url", pa.array([url] * len(table)))
    pq.write_table(table, part)
    assert report_cli(capsys, "--out", str(copy))[0] == 0
    page = (copy / "report.html").read_text()
    assert title not in page and "<script>alert" not in page
    assert (title, url) in [row[:2] for row in listing(page)]  # the data itself is whole


def test_report_lists_rejects_and_failing_feeds(news_site, capsys, tmp_path):
    out = tmp_path / "out"
    assert run_cli("--feeds", str(news_site), "--out", str(out), "--allow-private-network",
                   "--read-timeout", "1")[0] == 0
    code, printed, _ = report_cli(capsys, "--out", str(out), "--json", str(tmp_path / "r.json"))
    assert code == 0
    data = json.loads((tmp_path / "r.json").read_text())
    tables = {table["title"]: table["rows"] for table in data["tables"]}
    rejects = query(out, "rejects", "select stage, error_type, count(*) from t group by all")
    assert sorted(tuple(row[:3]) for row in tables["Rejects by stage and error type"]) == sorted(rejects)
    failing = {row[0]: row[1:4] for row in tables["Feeds failing or disabled"]}
    feeds = {Path(url).name: status for url, status in failing.items()}
    assert feeds == {"broken.xml": ["parse", 1, ""], "gone.xml": ["http-status", 1, ""]}
    assert "Feeds failing or disabled\n  feed " in printed
    assert re.search(r"gone\.xml +http-status +1 ", printed)


def test_since_and_until_select_publication_days(demo, capsys, tmp_path):
    code, out, _ = report_cli(capsys, "--out", str(demo), "--since", "2017-01-01", "--until", "2017-12-31",
                              "--html", str(tmp_path / "r.html"), "--json", str(tmp_path / "r.json"))
    assert code == 0 and (tmp_path / "r.html").exists()
    data = json.loads((tmp_path / "r.json").read_text())
    expected = query(demo, "articles", "select count(*), min(date)::varchar, max(date)::varchar from t "
                                       "where date between '2017-01-01' and '2017-12-31'")[0]
    assert (data["articles"], data["first_day"], data["last_day"]) == expected
    assert expected[0] == 3
    assert "asked for 2017-01-01 to 2017-12-31" in out

    code, out, _ = report_cli(capsys, "--out", str(demo), "--since", "2030-01-01",
                              "--html", str(tmp_path / "empty.html"))
    assert code == 0 and "(no articles; asked for 2030-01-01 to the end)" in out
    assert "nothing to chart" in (tmp_path / "empty.html").read_text()


def test_missing_empty_or_foreign_folders_get_one_line(capsys, tmp_path):
    code, out, err = report_cli(capsys, "--out", str(tmp_path / "nowhere"))
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "no dataset at" in err and "news-ingest run --out" in err

    (tmp_path / "empty").mkdir()
    code, out, err = report_cli(capsys, "--out", str(tmp_path / "empty"))
    assert code == 1 and "is not a news-ingest dataset" in err and err.count("\n") == 1
    assert not (tmp_path / "empty" / "report.html").exists()

    code, _, err = report_cli(capsys, "--out", str(tmp_path), "--since", "yesterday")
    assert code == 2 and "--since 'yesterday' is not a day (YYYY-MM-DD)" in err
    code, _, err = report_cli(capsys, "--out", str(tmp_path), "--since", "2020-02-02",
                              "--until", "2020-01-01")
    assert code == 2 and "is after --until" in err


def test_a_dataset_of_failures_only_is_reported(capsys, tmp_path, site):
    """Every feed failed on the first run: nothing to chart, but the why is there."""
    listing = tmp_path / "feeds.txt"
    listing.write_text(site.url("/gone.xml") + "\n")
    out = tmp_path / "out"
    assert run_cli("--feeds", str(listing), "--out", str(out), "--allow-private-network")[0] == 3
    assert "no feed could be polled" in capsys.readouterr().err  # the run's own error line
    code, printed, err = report_cli(capsys, "--out", str(out))
    assert code == 0 and err == ""
    assert "articles 0 from 0 sources" in printed and "rejects 1" in printed
    assert re.search(r"\n  feed +http-status +1 +1 ", printed)
    page = (out / "report.html").read_text()
    assert "nothing to chart" in page and "gone.xml" in page


def test_a_damaged_feed_state_is_reported_and_left_alone(demo, capsys, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(demo, copy)
    (copy / "_state" / "feeds.json").write_text("{not json")
    code, printed, _ = report_cli(capsys, "--out", str(copy))
    assert code == 0 and "feed state unreadable" in printed
    assert (copy / "_state" / "feeds.json").read_text() == "{not json"  # a report changes nothing


@pytest.mark.parametrize("parent", ["source=backup", "date=2026-01-01", "st*ar"])
def test_the_dataset_folder_may_have_any_name(demo, capsys, tmp_path, parent):
    """Neither a `key=value` parent folder nor glob characters change what is read."""
    copy = tmp_path / parent / "data"
    shutil.copytree(demo, copy)
    shutil.copytree(demo, tmp_path / "stXar" / "data")  # what the glob `st*ar` matches
    original, moved = build_report(str(demo)).as_dict(), build_report(str(copy)).as_dict()
    assert {key: value for key, value in moved.items() if key not in ("out_dir", "generated_at")} == {
        key: value for key, value in original.items() if key not in ("out_dir", "generated_at")}


def test_stray_files_are_left_out_and_said(demo, capsys, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(demo, copy)
    day = next((copy / "articles").glob("date=2017-08-03"))
    shutil.copytree(day, day.with_name("date=2017-08-03 (copy)"))  # a file manager's copy
    (copy / "mentions" / "stray.parquet").write_bytes((next(day.rglob("*.parquet"))).read_bytes())
    code, printed, _ = report_cli(capsys, "--out", str(copy))
    assert code == 0 and "articles 5 from 5 sources" in printed
    assert re.search(r"left out [23] files outside the dataset's folders, e\.g\. .*\.parquet", printed)


def test_a_damaged_file_is_left_out_and_said(demo, capsys, tmp_path):
    # A report once failed on it, every time, until a person found the file.
    copy = tmp_path / "data"
    shutil.copytree(demo, copy)
    part = next((copy / "articles").rglob("*.parquet"))
    part.write_bytes(part.read_bytes()[:300])  # cut short, as by a full disk
    code, out, err = report_cli(capsys, "--out", str(copy))
    assert code == 0 and "articles 4 from 4 sources" in out, out + err
    assert f"left out 1 damaged file, e.g. {part.relative_to(copy)}: `news-ingest verify" in out, out


def test_older_files_and_orphan_mentions_are_read(demo, capsys, tmp_path):
    """A file written before a column existed, and mentions whose articles'
    day was pruned away, still give a report."""
    copy = tmp_path / "data"
    shutil.copytree(demo, copy)
    part = next((copy / "articles" / "date=2017-08-03").rglob("*.parquet"))
    pq.write_table(pq.read_table(part).drop_columns(["language", "title", "event_types"]), part)
    shutil.rmtree(copy / "articles" / "date=2015-09-23")
    report = build_report(str(copy))
    data = report.as_dict()
    assert data["articles"] == 4 and data["days"][0] == "2015-09-23"  # the mentions' first day
    tables = {table["title"]: table["rows"] for table in data["tables"]}
    languages = {row[0]: row[1] for row in tables["Languages"]}
    assert languages == {"en": 3, None: 1}
    listed = {article.day.isoformat(): article for article in report.listed}
    assert len(listed) == 4 and listed["2017-08-03"].event_types == () and listed["2017-08-03"].actors
    assert all(article.event_types for day, article in listed.items() if day != "2017-08-03")

    # A file whose columns had other types, or none: converted, or nulls.
    odd = next((copy / "articles" / "date=2017-06-08").rglob("*.parquet"))
    table = pq.read_table(odd)
    table = table.set_column(table.schema.get_field_index("language"), "language", pa.array([7] * len(table)))
    pq.write_table(table.drop_columns(["source"]), odd)
    code, printed, err = report_cli(capsys, "--out", str(copy), "--html", str(copy / "odd.html"))
    assert code == 0 and err == "" and "articles 4 from 3 sources in 2 languages" in printed, printed + err
    assert [article.source for article in build_report(str(copy)).listed].count(None) == 1
    # A list column written as text in every file: nulls, not a failed report.
    for part in (copy / "articles").rglob("*.parquet"):
        table = pq.read_table(part)
        if "event_types" in table.column_names:
            table = table.set_column(table.schema.get_field_index("event_types"), "event_types",
                                     pa.array(["armed-clash"] * len(table)))
            pq.write_table(table, part)
    assert all(article.event_types == () for article in build_report(str(copy)).listed)

    for part in (copy / "articles").rglob("*.parquet"):  # no file has the column at all
        table = pq.read_table(part)
        pq.write_table(table.select([name for name in table.column_names if name != "event_types"]), part)
    assert [article.event_types for article in build_report(str(copy)).listed] == [()] * 4


def test_outputs_go_where_asked_and_nowhere_else(demo, capsys, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(demo, copy)
    code, out, err = report_cli(capsys, "--out", str(copy), "--json", "-")
    assert code == 0 and json.loads(out)["articles"] == 5  # standard output holds the JSON only
    assert (copy / "report.html").exists()

    (tmp_path / "folder").mkdir()
    code, out, err = report_cli(capsys, "--out", str(copy), "--html", str(tmp_path / "folder"))
    assert code == 1 and "it is a folder" in err and "articles 5" in out  # the text came first
    code, out, err = report_cli(capsys, "--out", str(copy), "--html", str(tmp_path / "page.html"),
                                "--json", str(tmp_path / "missing" / "r.json"))
    assert code == 1 and "no folder" in err
    assert not (tmp_path / "page.html").exists()  # checked before anything was written
    assert not list(tmp_path.glob(".*inprogress"))

    target = tmp_path / "kept.html"
    target.write_text("old")
    (tmp_path / "link.html").symlink_to(target)
    assert report_cli(capsys, "--out", str(copy), "--html", str(tmp_path / "link.html"))[0] == 0
    assert (tmp_path / "link.html").is_symlink() and "Plotly.newPlot" in target.read_text()


def test_control_characters_never_reach_the_terminal(demo, capsys, tmp_path, monkeypatch):
    copy = tmp_path / "data"
    shutil.copytree(demo, copy)
    state_file = copy / "_state" / "feeds.json"
    state = json.loads(state_file.read_text())
    feed = next(iter(state["feeds"]))
    state["feeds"][feed].update(failures=2, last_status="parse", last_error="bad\x1b[2J\r\nfeed")
    state_file.write_text(json.dumps(state))
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # times stay UTC, as labelled
    code, printed, _ = report_cli(capsys, "--out", str(copy))
    assert code == 0 and "\x1b" not in printed and "bad [2J  feed" in printed
    assert "next poll (UTC)" in printed

"""Links to files on disk (issue 18): followed from local feeds in every
file: URL form, never from a feed that came over http(s)."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from schemas.settings import FetchSettings
from transforms.failures import FetchError
from transforms.feedlist import read_feed_list
from transforms.feeds import parse_feed
from transforms.httpclient import Fetcher

from .conftest import DEMO_PAGES, run_cli
from .loopback import rss

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DEMO = {  # four different articles, so none is a duplicate of another
    "grasswire.html": "grasswire-coalition-ex-partner-weapons.html",
    "defensepost.html": "defensepost-shq-relocating-aleppo.html",
    "levant.html": "levantmonitor-us-strikes-tanf-militia.html",
    "sohr.html": "syriahr-factions-advance-rif-dimashq.html",
}


def demo_pages(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True)
    pages = {name: folder / name for name in DEMO}
    for name, path in pages.items():
        path.write_bytes((DEMO_PAGES / DEMO[name]).read_bytes())
    return pages


def table_rows(out: Path, table: str, *columns: str) -> list[tuple]:
    """Rows of one dataset table, read file by file (no glob over `out`)."""
    rows = []
    for path in (out / table).rglob("*.parquet"):
        data = pq.read_table(path, columns=list(columns)).to_pydict()
        rows.extend(zip(*(data[column] for column in columns), strict=True))
    return rows


@pytest.mark.e2e
def test_absolute_and_relative_file_links_of_a_local_feed_are_all_ingested(tmp_path):
    pages = demo_pages(tmp_path / "pages")
    feed = tmp_path / "feeds" / "local.xml"
    feed.parent.mkdir()
    feed.write_text(rss([{"link": pages["grasswire.html"].as_uri()},
                         {"link": pages["defensepost.html"].as_uri()},
                         {"link": pages["levant.html"].as_uri()},
                         {"link": "../pages/sohr.html"}]))
    out = tmp_path / "out"
    code, printed, _ = run_cli("--feeds", str(feed), "--out", str(out))
    assert code == 0, printed
    assert table_rows(out, "rejects", "url", "error_type") == []
    assert sorted(url for (url,) in table_rows(out, "articles", "url")) == sorted(
        path.as_uri() for path in pages.values())


@pytest.mark.e2e
def test_file_links_in_a_feed_from_a_server_are_item_rejects(site, tmp_path):
    pages = demo_pages(tmp_path / "pages")
    site.add("/p/sohr", pages["sohr.html"].read_bytes())
    site.add("/feed.xml", rss([{"link": pages["grasswire.html"].as_uri()},
                               {"link": f"file:{pages['defensepost.html']}"},
                               {"link": "/p/sohr"}]),
             content_type="application/rss+xml")
    out = tmp_path / "out"
    code, printed, _ = run_cli("--feeds", site.url("/feed.xml"), "--out", str(out),
                               "--allow-private-network")
    assert code == 0, printed
    assert table_rows(out, "articles", "url") == [(site.url("/p/sohr"),)]
    assert set(table_rows(out, "rejects", "stage", "url", "error_type")) == {
        ("item", pages["grasswire.html"].as_uri(), "blocked-scheme"),
        ("item", pages["defensepost.html"].as_uri(), "blocked-scheme")}


@pytest.mark.parametrize("form", ["file://{path}", "file:{path}", "file://localhost{path}",
                                  "FILE://LOCALHOST{path}"])
def test_every_local_form_of_a_file_link_names_the_file(tmp_path, form):
    page = tmp_path / "news" / "a b.html"
    link = form.format(path=page)
    feed_url = (tmp_path / "feeds" / "rss.xml").as_uri()
    for body in (rss([{"link": link}]),
                 f'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
                 f'<entry><title>A</title><link href="{link}"/></entry></feed>'):
        items, rejects, *_ = parse_feed(body.encode(), feed_url, 0, NOW)
        assert rejects == [] and [item.url for item in items] == [page.as_uri()]
        assert items[0].from_local_feed


def test_a_remote_feed_file_link_is_refused_as_written():
    body = rss([{"link": "file:///etc/passwd"}, {"link": "file:/etc/passwd"}]).encode()
    items, rejects, *_ = parse_feed(body, "https://site.example/rss", 0, NOW)
    assert items == []
    assert [(r.stage, r.url, r.error_type) for r in rejects] == [
        ("item", "file:///etc/passwd", "blocked-scheme")] * 2


@pytest.fixture
def fetcher():
    client = Fetcher(FetchSettings())
    yield client
    client.close()


def test_file_urls_are_read_from_this_machine_only(tmp_path, fetcher):
    page = tmp_path / "p.html"
    page.write_text("<p>local</p>")
    for url in (page.as_uri(), f"file:{page}", f"file://localhost{page}"):
        assert fetcher.get(url, max_bytes=1000, allow_file=True).body == b"<p>local</p>"
    with pytest.raises(FetchError) as raised:  # once read as f"{page}", the host dropped
        fetcher.get(f"file://elsewhere{page}", max_bytes=1000, allow_file=True)
    assert raised.value.error_type == "invalid-url"


def test_a_feed_named_by_a_single_slash_file_url_is_a_url(tmp_path):
    assert read_feed_list(f"file:{tmp_path}/feed.xml") == [f"file:{tmp_path}/feed.xml"]
    listing = tmp_path / "feeds.txt"
    listing.write_text(f"file:{tmp_path}/a.xml\nfile://localhost{tmp_path}/b.xml\n")
    assert read_feed_list(str(listing)) == [f"file:{tmp_path}/a.xml", f"file://localhost{tmp_path}/b.xml"]


def test_a_relative_file_url_in_a_list_names_a_file_beside_the_list(tmp_path, monkeypatch):
    # `file:lf.xml` once resolved against the working folder, wherever the list was.
    lists, elsewhere = tmp_path / "lists", tmp_path / "elsewhere"
    lists.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    listing = lists / "feeds.txt"
    listing.write_text("file:lf.xml\nFILE:sub/b%20c.xml\n")
    assert read_feed_list(str(listing)) == [(lists / "lf.xml").as_uri(), (lists / "sub" / "b c.xml").as_uri()]


def test_a_relative_file_url_as_feeds_is_a_path_from_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.xml").write_text(rss([{"link": "a.html"}]))
    assert read_feed_list("file:x.xml") == [(tmp_path / "x.xml").as_uri()]

"""`news-ingest discover` on loopback sites: declared feeds, robots.txt sitemaps and
usual paths found and checked, robots obeyed, look-alikes refused, OPML a run reads."""
from __future__ import annotations

import io
from contextlib import redirect_stdout

import pytest

from pipelines.cli import main

from .conftest import query, run_cli, story
from .loopback import rss

pytestmark = pytest.mark.e2e  # whole commands through the command line: `make test-fast` skips them
ARGS = ("--allow-private-network", "--host-delay", "0")
ATOM = ('<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom</title>'
        '<entry><title>x</title><link href="/p/2"/><id>urn:2</id><updated>2026-12-01T00:00:00Z</updated>'
        "</entry></feed>")


def discover_cli(*args: str) -> tuple[int, str]:
    printed = io.StringIO()
    with redirect_stdout(printed):
        code = main(["discover", *args])
    return code, printed.getvalue()


def page(number: int) -> str:
    body = "".join(f"<p>{story(number + offset)}</p>" for offset in (0, 100, 200))
    return f"<html><head><title>Report {number}</title></head><body><article>{body}</article></body></html>"


@pytest.fixture
def news_home(site):
    """A home page declaring two feeds (a <base href>, a capitalised rel), a robots.txt naming a
    sitemap index and disallowing one usual path, a usual path answering with the same feed
    as another, and one answering with a web page."""
    site.add("/", "<html><head><base href='/news/'>"
                  "<link rel='Alternate' type='application/rss+xml' title='Main news' href='main.xml'>"
                  "<link rel='alternate home' type='application/atom+xml' href='/atom.xml'>"
                  "<link rel='stylesheet' href='/style.css'></head>"
                  "<body><a href='/p/1'>one</a></body></html>")
    site.add("/news/main.xml", rss([{"link": "/p/1", "pubDate": "Thu, 03 Dec 2026 09:30:00 +0000"}]),
             content_type="application/rss+xml")
    site.add("/atom.xml", ATOM, content_type="application/atom+xml")
    site.add("/feed/", rss([{"link": "/p/3"}]), content_type="application/rss+xml")
    site.add("/rss/", rss([{"link": "/p/3"}]), content_type="application/rss+xml")  # the same as /feed/
    site.add("/index.xml", "<html><body>Not found, but a 200</body></html>")
    site.add("/rss.xml", rss([{"link": "/p/9"}]), content_type="application/rss+xml")
    site.add("/robots.txt", "User-agent: *\nDisallow: /rss.xml\n\nSitemap: /sitemap_index.xml\n",
             content_type="text/plain")
    site.add("/sitemap_index.xml", '<?xml version="1.0"?><sitemapindex '
             'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>/s1.xml</loc></sitemap>'
             "</sitemapindex>", content_type="application/xml")
    for number in (1, 2, 3):
        site.add(f"/p/{number}", page(number))
    return site


def test_discover_finds_declared_robots_and_usual_feeds_and_checks_each(news_home, tmp_path):
    code, printed = discover_cli(news_home.url("/"), *ARGS)
    assert code == 0, printed
    found = [line.split() for line in printed.splitlines() if line.startswith("  ")]
    urls = [next(word for word in line if word.startswith("http")) for line in found]
    paths = ("/news/main.xml", "/atom.xml", "/sitemap_index.xml", "/feed/")
    assert urls == [news_home.url(path) for path in paths]
    assert [line[0] for line in found] == ["RSS", "Atom", "sitemap", "RSS"]
    assert "1 entry, newest 2026-12-03 09:30 UTC" in printed and "(named in robots.txt)" in printed
    assert news_home.hits["/rss.xml"] == 0  # robots.txt disallows it
    assert news_home.hits["/s1.xml"] == 0  # an index is named, not read down
    assert "/index.xml" not in "".join(urls) and "/rss/" not in "".join(urls)
    assert printed.rstrip().endswith("4 feeds on 1 of 1 site")


def test_the_opml_written_is_a_feed_list_a_run_reads(news_home, tmp_path):
    opml = tmp_path / "found.opml"
    code, printed = discover_cli(news_home.url("/"), "--opml", str(opml), *ARGS)
    assert code == 0 and opml.exists(), printed
    assert "Main news" in opml.read_text()
    out = tmp_path / "data"
    run = run_cli("--feeds", str(opml), "--out", str(out), *ARGS)
    assert run.code == 0, run.printed
    assert run.summary["feeds"]["listed"] == 4
    assert {url for (url,) in query(out, "articles", "select url from t")} == {
        news_home.url(f"/p/{number}") for number in (1, 2, 3)}


def test_verbose_says_why_each_candidate_is_no_feed(news_home):
    code, printed = discover_cli(news_home.url("/"), "-v", *ARGS)
    assert code == 0
    assert f"not a feed: {news_home.url('/index.xml')}  parse: an HTML page, not a feed" in printed
    assert f"not a feed: {news_home.url('/feed.json')}  http-status" in printed


def test_a_site_without_feeds_or_a_page_that_cannot_be_had_is_said_and_exits_3(site, tmp_path):
    site.add("/", "<html><body>No feeds here</body></html>")
    site.add("/robots.txt", "User-agent: *\nDisallow:\n", content_type="text/plain")
    opml = tmp_path / "found.opml"
    code, printed = discover_cli(site.url("/"), site.url("/gone"), "--opml", str(opml), *ARGS)
    assert code == 3 and not opml.exists()
    assert f"{site.url('/gone')}  (http-status: HTTP 404" in printed
    assert printed.count("no feed found") == 2


def test_a_private_address_is_refused_without_the_flag_and_a_bad_url_is_a_usage_error(news_home, capsys):
    code, printed = discover_cli(news_home.url("/"))
    assert code == 3 and "blocked-address" in printed and news_home.hits["/"] == 0
    assert discover_cli("ftp://example.org/", *ARGS)[0] == 2
    assert "ftp://example.org/" in capsys.readouterr().err


def test_a_page_declaring_hundreds_of_feeds_gets_the_first_twenty_checked(site):
    links = "".join(f"<link rel='alternate' type='application/rss+xml' href='/f/{n}.xml'>"
                    for n in range(300))
    site.add("/", f"<html><head>{links}</head><body>x</body></html>")
    site.add("/f/0.xml", rss([{"link": "/p/1"}]), content_type="application/rss+xml")
    code, printed = discover_cli(site.url("/"), "-v", *ARGS)
    assert code == 0
    assert sum(site.hits[f"/f/{n}.xml"] for n in range(300)) == 20
    assert "not checked: the page declares 300 feeds, the first 20 are" in printed


def test_two_pages_of_one_site_offer_a_feed_once_and_odd_titles_still_make_a_feed_list(news_home, tmp_path):
    news_home.add("/about", "<html><head><link rel='alternate' type='application/rss+xml' "
                            "title='Main\x0bnews\x01' href='/news/main.xml'></head><body>x</body></html>")
    opml = tmp_path / "found.opml"
    code, printed = discover_cli(news_home.url("/about"), news_home.url("/"), "--opml", str(opml), *ARGS)
    assert code == 0, printed
    assert printed.count(news_home.url("/news/main.xml")) == 1
    run = run_cli("--feeds", str(opml), "--out", str(tmp_path / "data"), *ARGS)
    assert run.code == 0 and run.summary["feeds"]["listed"] == 4, run.printed

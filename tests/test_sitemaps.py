"""Sitemaps (news, gzip, indexes) and JSON Feed as sources: read as feed items
are, on loopback sites, with hostile variants (an index loop, a 50,000-URL
sitemap, a gzip bomb, entity expansion)."""
from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from schemas.settings import FeedSettings
from transforms.failures import FetchError
from transforms.feeds import parse_feed

from .conftest import query, run_cli, story

NOW = datetime.now(UTC).replace(microsecond=0)
SITEMAP_NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
NEWS_NS = 'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'
IMAGE_NS = 'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"'
ARGS = ("--allow-private-network", "--host-delay", "0")


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def news_url(loc: str, title: str, published: datetime) -> str:
    return (f"<url><loc>{loc}</loc><news:news><news:publication><news:name>Example Times</news:name>"
            f"<news:language>en</news:language></news:publication>"
            f"<news:publication_date>{stamp(published)}</news:publication_date>"
            f"<news:title>{title}</news:title></news:news>"
            f"<image:image><image:loc>{loc}.jpg</image:loc><image:title>A photo</image:title></image:image>"
            "</url>")


def urlset(*entries: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {SITEMAP_NS} {NEWS_NS} {IMAGE_NS}>'
            f'{"".join(entries)}</urlset>')


def plain_url(loc: str, modified: datetime | None = None) -> str:
    lastmod = f"<lastmod>{stamp(modified)}</lastmod>" if modified else ""
    return f"<url><loc>{loc}</loc>{lastmod}</url>"


def index(*children: tuple[str, datetime | None]) -> str:
    parts = "".join(f"<sitemap><loc>{loc}</loc>" + (f"<lastmod>{stamp(when)}</lastmod>" if when else "")
                    + "</sitemap>" for loc, when in children)
    return f'<?xml version="1.0"?><sitemapindex {SITEMAP_NS}>{parts}</sitemapindex>'


def report(number: int) -> str:
    body = "".join(f"<p>{story(number + offset)}</p>" for offset in (0, 100, 200))
    return (f"<html><head><title>Report {number}</title></head><body><article><h1>Report {number}</h1>"
            f"{body}</article></body></html>")


# --- reading the documents ---------------------------------------------------------------

def test_a_news_sitemap_gives_its_titles_and_publication_times():
    published = NOW - timedelta(hours=3)
    body = urlset(news_url("https://news.example/a", "Council votes on aid", published),
                  plain_url("https://news.example/b", NOW - timedelta(hours=1)),
                  plain_url("https://news.example/undated")).encode()
    items, rejects, *_ = parse_feed(body, "https://news.example/sitemap-news.xml", 2, NOW)
    assert not rejects
    by_url = {item.url: item for item in items}
    assert by_url["https://news.example/a"].title == "Council votes on aid"  # not the image's title
    assert by_url["https://news.example/a"].published_at == published
    assert by_url["https://news.example/b"].published_at is None  # <lastmod> is no publication time
    assert set(by_url) == {"https://news.example/a", "https://news.example/b", "https://news.example/undated"}
    assert {item.first_seen[0] for item in items} == {2}


def test_entries_older_than_the_window_are_left_out():
    body = urlset(plain_url("https://news.example/new", NOW - timedelta(hours=20)),
                  plain_url("https://news.example/old", NOW - timedelta(days=30)),
                  news_url("https://news.example/old-news", "Old", NOW - timedelta(days=3))).encode()
    items, *_ = parse_feed(body, "https://news.example/sitemap.xml", 0, NOW)
    assert [item.url for item in items] == ["https://news.example/new"]
    items, *_ = parse_feed(body, "https://news.example/sitemap.xml", 0, NOW,
                           FeedSettings(sitemap_max_age_days=60))
    assert len(items) == 3


def test_a_gzipped_sitemap_reads_as_the_plain_one():
    body = urlset(plain_url("https://news.example/a", NOW)).encode()
    parsed = parse_feed(gzip.compress(body), "https://news.example/s.xml.gz", 0, NOW)
    assert [item.url for item in parsed.items] == ["https://news.example/a"]


def test_a_sitemap_bomb_is_refused_before_it_unzips():
    bomb = gzip.compress(urlset().encode()[:-10] + b" " * 50_000_000 + b"</urlset>")
    assert len(bomb) < 100_000
    with pytest.raises(FetchError) as raised:
        parse_feed(bomb, "https://evil.example/s.xml.gz", 0, NOW, FeedSettings(max_sitemap_bytes=1_000_000))
    assert raised.value.error_type == "too-large"


def test_entity_expansion_and_external_entities_are_not_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    laughs = ('<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY a "aaaaaaaaaa">'
              + "".join(f'<!ENTITY {chr(98 + n)} "{("&" + chr(97 + n) + ";") * 10}">' for n in range(9))
              + f']><urlset {SITEMAP_NS}><url><loc>https://x.example/&j;</loc></url></urlset>')
    with pytest.raises(FetchError):
        parse_feed(laughs.encode(), "https://evil.example/s.xml", 0, NOW)
    external = (f'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY s SYSTEM "{secret.as_uri()}">]>'
                f'<urlset {SITEMAP_NS}><url><loc>https://x.example/&s;</loc></url></urlset>')
    try:
        items, *_ = parse_feed(external.encode(), "https://evil.example/s.xml", 0, NOW)
    except FetchError:
        items = []
    assert not any("TOPSECRET" in item.url for item in items)


def test_a_50000_url_sitemap_keeps_the_newest_entries_and_says_how_many_it_left():
    entries = [plain_url(f"https://big.example/p/{number}", NOW - timedelta(seconds=number))
               for number in reversed(range(50_000))]  # the oldest first
    items, rejects, *_ = parse_feed(urlset(*entries).encode(), "https://big.example/sitemap.xml", 0, NOW)
    assert len(items) == FeedSettings().max_entries
    assert items[0].url == "https://big.example/p/0"
    [left] = rejects
    assert left.error_type == "too-many-entries" and "45000 more" in left.message


def test_a_sitemap_cut_short_keeps_its_whole_entries():
    body = urlset(plain_url("https://news.example/a", NOW), plain_url("https://news.example/b", NOW)).encode()
    cut = body[:body.index(b"news.example/b") + 5]
    items, rejects, *_ = parse_feed(cut, "https://news.example/s.xml", 0, NOW)
    assert [item.url for item in items] == ["https://news.example/a"]
    assert [reject.error_type for reject in rejects] == ["truncated"]


def test_dates_past_what_python_holds_are_no_dates_and_spoil_nothing():
    too_late = news_url("https://news.example/a", "A", NOW).replace(stamp(NOW), "9999-12-31T23:00:00-05:00")
    body = urlset(too_late,
                  plain_url("https://news.example/b", NOW)).encode()
    items, rejects, *_ = parse_feed(body, "https://news.example/s.xml", 0, NOW)
    assert sorted((item.url, item.published_at) for item in items) == [("https://news.example/a", None),
                                                                       ("https://news.example/b", None)]
    feed = {"version": "https://jsonfeed.org/version/1.1",
            "items": [{"url": "https://news.example/c", "date_published": "0001-01-01T00:00:00+05:00"}]}
    [item] = parse_feed(json.dumps(feed).encode(), "https://news.example/f.json", 0, NOW).items
    assert item.published_at is None


def test_a_gzipped_feed_and_a_sitemap_with_a_doctype_are_read():
    feed = gzip.compress(b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
                         b"<item><link>https://news.example/a</link></item></channel></rss>")
    assert [item.url for item in parse_feed(feed, "https://news.example/rss.gz", 0, NOW).items] == [
        "https://news.example/a"]
    doctype = urlset(plain_url("https://news.example/b", NOW)).replace(
        "?>\n", '?>\n<!DOCTYPE urlset PUBLIC "-//x//DTD//EN" "sitemap.dtd">\n', 1)
    assert [item.url for item in parse_feed(doctype.encode(), "https://news.example/s.xml", 0, NOW).items] \
        == ["https://news.example/b"]


def test_an_index_names_its_sitemaps():
    body = index(("https://news.example/s1.xml", NOW), ("/s2.xml.gz", None)).encode()
    parsed = parse_feed(body, "https://news.example/index.xml", 0, NOW)
    assert not parsed.items and [child.url for child in parsed.children] == [
        "https://news.example/s1.xml", "/s2.xml.gz"]


def test_a_json_feed_reads_as_rss_does():
    document = {
        "version": "https://jsonfeed.org/version/1.1", "title": "Example", "authors": [{"name": "Desk"}],
        "items": [
            {"id": "1", "url": "https://news.example/a", "title": "Aid convoy",
             "date_published": "2026-05-01T09:30:00+02:00", "authors": [{"name": "Ann"}, {"name": "Bo"}]},
            {"id": "2", "external_url": "https://other.example/b", "content_text": "x"},
            {"id": "3", "content_html": "<p>no link</p>"},
            {"id": "4", "url": "javascript:alert(1)"},
        ]}
    items, rejects, *_ = parse_feed(json.dumps(document).encode(), "https://news.example/feed.json", 1, NOW)
    assert [(item.url, item.title, item.author) for item in items] == [
        ("https://news.example/a", "Aid convoy", "Ann, Bo"), ("https://other.example/b", None, "Desk")]
    assert items[0].published_at == datetime(2026, 5, 1, 7, 30, tzinfo=UTC)
    assert sorted(reject.error_type for reject in rejects) == ["no-link", "unsupported-scheme"]
    one_oh = {"version": "https://jsonfeed.org/version/1", "author": {"name": "Old"},
              "items": [{"id": "1", "url": "/a", "date_published": "2026-05-01T09:30:00Z"}]}
    [item] = parse_feed(json.dumps(one_oh).encode(), "https://news.example/feed.json", 0, NOW).items
    assert (item.url, item.author) == ("https://news.example/a", "Old")


@pytest.mark.parametrize("body", [b'{"version": "1.0", "items": []}', b'{"items": "none"', b"{}"])
def test_json_that_is_no_json_feed_is_a_parse_error(body):
    with pytest.raises(FetchError) as raised:
        parse_feed(body, "https://news.example/api.json", 0, NOW)
    assert raised.value.error_type == "parse" and "JSON" in str(raised.value)


# --- whole runs on loopback sites --------------------------------------------------------

@pytest.mark.e2e
def test_a_run_reads_a_sitemap_index_down_to_its_news_and_gzipped_sitemaps(site, tmp_path):
    for number in range(6):
        site.add(f"/p/{number}", report(number))
    site.add("/news.xml", urlset(*(news_url(site.url(f"/p/{n}"), f"Report {n}", NOW - timedelta(hours=n))
                                   for n in range(3))), content_type="application/xml")
    site.add("/more.xml.gz", gzip.compress(urlset(*(plain_url(site.url(f"/p/{n}"), NOW - timedelta(hours=1))
                                                    for n in range(3, 5))).encode()),
             content_type="application/gzip")
    site.add("/archive.xml", urlset(plain_url(site.url("/p/5"), NOW - timedelta(days=400))),
             content_type="application/xml")
    site.add("/index.xml", index(("/news.xml", NOW), ("/more.xml.gz", None), ("/index.xml", None),
                                 ("/archive.xml", NOW - timedelta(days=400)), ("/gone.xml", None)),
             content_type="application/xml")
    out = tmp_path / "data"
    run = run_cli("--feeds", site.url("/index.xml"), "--out", str(out), *ARGS)
    assert run.code == 0, run.printed
    stored = dict(query(out, "articles", "select url, title from t"))
    assert set(stored) == {site.url(f"/p/{n}") for n in range(5)}
    assert {url: stored[url] for url in (site.url("/p/0"),)} == {site.url("/p/0"): "Report 0"}
    assert site.hits["/archive.xml"] == 0 and site.hits["/p/5"] == 0  # older than the window
    assert site.hits["/index.xml"] == 1  # the loop back to the index is not followed
    failures = dict(query(out, "rejects", "select url, error_type from t where stage = 'feed'"))
    assert failures == {site.url("/index.xml"): "sitemap-loop", site.url("/gone.xml"): "http-status"}
    assert set(query(out, "articles", "select distinct feed_url from t")) == {(site.url("/index.xml"),)}
    assert run.summary["items"]["seen"] == 5 and run.summary["items"]["articles"] == 5
    assert len(list((out / "raw").rglob("*.warc.gz"))) >= 1
    again = run_cli("--feeds", site.url("/index.xml"), "--out", str(out), *ARGS)
    assert again.code == 0 and again.summary["items"]["articles"] == 0
    assert again.summary["feeds"]["unchanged"] == 1  # neither the index nor a sitemap changed
    assert all(site.hits[f"/p/{n}"] == 1 for n in range(5))  # nothing fetched twice


@pytest.mark.e2e
def test_an_index_answering_304_is_still_read_down(site, tmp_path):
    """A static index with an ETag: its sitemaps change under it, so it is never asked conditionally."""
    site.add("/p/1", report(1))
    site.add("/p/2", report(2))
    site.add("/news.xml", urlset(plain_url(site.url("/p/1"), NOW)), content_type="application/xml")
    site.add("/index.xml", index(("/news.xml", None)), content_type="application/xml", etag='"v1"')
    out = tmp_path / "data"
    assert run_cli("--feeds", site.url("/index.xml"), "--out", str(out), *ARGS).code == 0
    site.add("/news.xml", urlset(plain_url(site.url("/p/1"), NOW), plain_url(site.url("/p/2"), NOW)),
             content_type="application/xml")
    again = run_cli("--feeds", site.url("/index.xml"), "--out", str(out), *ARGS)
    assert again.code == 0 and again.summary["items"]["articles"] == 1, again.printed
    assert site.conditional["/index.xml"] == 0 and site.hits["/p/2"] == 1


@pytest.mark.e2e
def test_an_index_of_too_many_or_too_deep_sitemaps_is_bounded(site, tmp_path):
    site.add("/p/1", report(1))
    site.add("/leaf.xml", urlset(plain_url(site.url("/p/1"), NOW)), content_type="application/xml")
    site.add("/deep3.xml", index(("/leaf.xml", NOW)), content_type="application/xml")
    site.add("/deep2.xml", index(("/deep3.xml", NOW)), content_type="application/xml")
    site.add("/deep1.xml", index(("/deep2.xml", NOW)), content_type="application/xml")
    many = [(f"/many/{number}.xml", NOW) for number in range(300)]
    for loc, _ in many[:10]:  # the rest answer 404: failures count against the limit too
        site.add(loc, urlset(), content_type="application/xml")
    site.add("/many.xml", index(*many), content_type="application/xml")
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(f"{site.url('/deep1.xml')}\n{site.url('/many.xml')}\n")
    out = tmp_path / "data"
    run = run_cli("--feeds", str(feeds), "--out", str(out), *ARGS)
    assert run.code == 0, run.printed
    assert site.hits["/leaf.xml"] == 0 and site.hits["/p/1"] == 0
    assert sum(site.hits[loc] for loc, _ in many) == FeedSettings().max_child_sitemaps
    failures = dict(query(out, "rejects",
                          "select error_type, count(*) from t where stage = 'feed' group by 1"))
    assert failures == {"sitemap-too-deep": 1, "too-many-sitemaps": 1, "http-status": 40}


@pytest.mark.e2e
def test_a_run_reads_a_json_feed(site, tmp_path):
    site.add("/p/1", report(1))
    site.add("/feed.json", json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "t",
                                       "items": [{"id": "1", "url": "/p/1", "title": "Report one",
                                                  "date_published": "2026-05-01T09:30:00Z"}]}),
             content_type="application/feed+json")
    out = tmp_path / "data"
    run = run_cli("--feeds", site.url("/feed.json"), "--out", str(out), *ARGS)
    assert run.code == 0, run.printed
    assert query(out, "articles", "select url, published_at::varchar, date_source from t") == [
        (site.url("/p/1"), "2026-05-01 09:30:00+00", "feed")]

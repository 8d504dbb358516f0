"""Feeds stage: feed lists, feed parsing, and which entries may be followed."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.settings import FeedSettings
from transforms.failures import FetchError
from transforms.feedlist import FeedListError, read_feed_list
from transforms.feeds import parse_feed

from .conftest import ROOT
from .loopback import rss

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_demo_opml_lists_every_demo_feed_as_a_file_url():
    urls = read_feed_list(str(ROOT / "seeds" / "demo.opml"))
    assert len(urls) == 7
    assert all(url.startswith("file://") and Path(url[7:]).is_file() for url in urls)


def test_bundled_real_world_list_names_https_feeds():
    urls = read_feed_list(str(ROOT / "seeds" / "real" / "syria.opml"))
    assert len(urls) >= 8 and all(url.startswith("https://") for url in urls)


def test_text_list_with_comments_relative_paths_and_repeats(tmp_path):
    listing = tmp_path / "feeds.txt"
    listing.write_text("# my feeds\n\nhttps://a.example/rss  # main\n"
                       "local/feed.xml\nhttps://a.example/rss\n")
    assert read_feed_list(str(listing)) == [
        "https://a.example/rss", (tmp_path / "local" / "feed.xml").as_uri()]


def test_single_url_and_local_feed_file(tmp_path):
    assert read_feed_list("https://a.example/feed") == ["https://a.example/feed"]
    feed = tmp_path / "one.xml"
    feed.write_text(rss([{"link": "https://a.example/1"}]))
    assert read_feed_list(str(feed)) == [feed.as_uri()]


@pytest.mark.parametrize("content, message", [
    (None, "cannot read feed list"),
    ("", "names no feeds"),
    ("# only a comment\n", "names no feeds"),
    ("ftp://a.example/rss\n", "unsupported URL scheme"),
    ("https://a.example/rss\nhttp://[::1/feed.xml\n", "list.txt:2: not a URL"),
    ("<opml><body><outline text='x'/></body></opml>", "lists no feeds"),
    ("<opml><body><outline", "not valid OPML"),
])
def test_unusable_feed_lists_fail_with_one_line(tmp_path, content, message):
    listing = tmp_path / "list.txt"
    if content is not None:
        listing.write_text(content)
    with pytest.raises(FeedListError) as raised:
        read_feed_list(str(listing))
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_entries_resolve_relative_links_and_keep_feed_dates():
    body = rss([{"link": "../pages/a.html", "title": "A", "pubDate": "Thu, 03 Aug 2017 09:30:00 +0200"},
                {"link": "https://b.example/2"}]).encode()
    items, rejects, *_ = parse_feed(body, "https://site.example/feeds/rss.xml", 3, NOW)
    assert rejects == []
    assert [item.url for item in items] == ["https://site.example/pages/a.html", "https://b.example/2"]
    assert items[0].published_at == datetime(2017, 8, 3, 7, 30, tzinfo=UTC)
    assert [item.first_seen for item in items] == [(3, 0), (3, 1)]
    assert not items[0].from_local_feed


def test_entries_that_cannot_be_followed_are_item_rejects():
    body = rss([{"title": "no link"}, {"link": "javascript:alert(1)"},
                {"link": "mailto:desk@example.org"}, {"link": "file:///etc/passwd"},
                {"link": "https://ok.example/1"}]).encode()
    items, rejects, *_ = parse_feed(body, "https://site.example/rss", 0, NOW)
    assert [item.url for item in items] == ["https://ok.example/1"]
    assert [(r.stage, r.error_type) for r in rejects] == [
        ("item", "no-link"), ("item", "unsupported-scheme"),
        ("item", "unsupported-scheme"), ("item", "blocked-scheme")]


def test_emoji_written_as_surrogate_references_do_not_lose_the_feed():
    body = rss([{"link": "https://a.example/1", "title": "Peace &#55357;&#56842; at last"},
                {"link": "https://a.example/2", "title": "stray &#xD83D; half"}]).encode()
    items, rejects, *_ = parse_feed(body, "https://site.example/rss", 0, NOW)
    assert rejects == []
    assert [item.title for item in items] == ["Peace \U0001F60A at last", "stray \uFFFD half"]


def test_placeholder_dates_are_no_dates():
    body = rss([{"link": "https://a.example/1", "pubDate": "0000-00-00T00:00:00Z"}]).encode()
    items, *_ = parse_feed(body, "https://site.example/rss", 0, NOW)
    assert items[0].published_at is None


def test_file_links_are_followed_from_local_feeds():
    body = rss([{"link": "page.html"}]).encode()
    items, rejects, *_ = parse_feed(body, "file:///srv/feeds/rss.xml", 0, NOW)
    assert rejects == [] and items[0].url == "file:///srv/feeds/page.html"
    assert items[0].from_local_feed


@pytest.mark.parametrize("body", [
    b"<html><body><p>This is a web page, not a feed.</p></body></html>",
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>cut',
    b"",
])
def test_documents_that_are_not_feeds_raise_parse_errors(body):
    with pytest.raises(FetchError) as raised:
        parse_feed(body, "https://site.example/rss", 0, NOW)
    assert raised.value.error_type == "parse"


@pytest.mark.parametrize("page, said", [
    (b"\xef\xbb\xbf<!DOCTYPE html>\n<!-- a theme -->\n<html lang='ar'><head>"
     b"<link rel='alternate' type='application/rss+xml' title='News' href='/feed/'>"
     b"<link rel='alternate stylesheet' type='text/css' href='/dark.css'>"
     b"<link rel='alternate' type='application/atom+xml; charset=utf-8' href='https://cdn.example/atom.xml'>"
     b"</head><body><p>Front page</p></body></html>",
     "an HTML page, not a feed; it links to 2 feeds: https://site.example/feed/, "
     "https://cdn.example/atom.xml (give one of them)"),
    (b"<html><head><title>Home</title></head><body><p>No feed here.</p></body></html>",
     "an HTML page, not a feed: give the site's RSS or Atom feed URL"),
    (b"<!DOCTYPE html>\n<meta charset=utf-8><title>HTML5, no html tag</title>"
     b"<link rel=alternate type=application/rss+xml href='http://[oops/'>"
     b"<link rel=alternate type=application/rss+xml href=/rss>"
     b"<link rel=alternate type=application/rss+xml href=/rss>"
     b"<p>Front page",
     "an HTML page, not a feed; it links to 1 feed: https://site.example/rss (give one of them)"),
])
def test_a_web_page_given_as_a_feed_is_named_so_with_the_feeds_it_links_to(page, said):
    with pytest.raises(FetchError) as raised:
        parse_feed(page, "https://site.example/news/", 0, NOW)
    assert (raised.value.error_type, str(raised.value)) == ("parse", said)


def test_feed_body_that_looks_like_a_path_is_not_opened(tmp_path):
    secret = tmp_path / "secret.xml"
    secret.write_text(rss([{"link": "https://leak.example/"}]))
    with pytest.raises(FetchError):
        parse_feed(str(secret).encode(), "https://evil.example/rss", 0, NOW)


@pytest.mark.parametrize(("document", "entry"), [
    ('<rss version="2.0"><channel><title>t</title>{}</channel></rss>', "<item><link>/a</link></item>"),
    ('<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>{}</feed>',
     '<entry><title>e</title><link href="https://site.example/a"/></entry>'),
])
def test_a_feed_listing_more_entries_than_any_real_one_is_refused_before_parsing(document, entry):
    def feed(count: int) -> bytes:
        return document.format(entry * count).encode()

    with pytest.raises(FetchError) as raised:
        parse_feed(feed(51), "https://site.example/rss", 0, NOW, FeedSettings(max_entries=50))
    assert raised.value.error_type == "too-many-entries" and "51 entries" in str(raised.value)
    assert len(parse_feed(feed(50), "https://site.example/rss", 0, NOW, FeedSettings(max_entries=50)).items) \
        == 50

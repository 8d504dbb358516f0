"""URL identity in one place (transforms/urls.py): the site a URL belongs to."""
from __future__ import annotations

import pytest

from transforms.urls import canonicalize_url, registered_domain, url_id, url_problem

from .conftest import DEMO_PAGES, page_of


@pytest.mark.parametrize("url, site", [
    ("https://www.bbc.co.uk/news/world-1", "bbc.co.uk"),
    ("https://someblog.blogspot.com/2020/01/a.html", "someblog.blogspot.com"),
    ("https://user.github.io/post", "user.github.io"),
    ("http://127.0.0.1:8000/p", "127.0.0.1"),
    # A ministry whose own domain is on the private list: its hosts are sites, www. is not one.
    ("https://www.mil.ru/a", "mil.ru"),
    ("https://eng.mil.ru/en/news_page/a", "eng.mil.ru"),
    ("file:///srv/news/a.html", "local"),
])
def test_the_site_of_a_url_is_its_registered_domain(url, site):
    assert registered_domain(url) == site


def test_each_blogspot_blog_is_a_source_of_its_own(cleaner):
    # Both were once the source `blogspot.com`, and their site templates learned together.
    page = DEMO_PAGES / "defensepost-shq-relocating-aleppo.html"
    sources = {cleaner.clean(page_of(page, url=f"https://{blog}.blogspot.com/2020/01/a.html")).source
               for blog in ("levantwatch", "aleppodiary")}
    assert sources == {"levantwatch.blogspot.com", "aleppodiary.blogspot.com"}


def test_an_edition_prefix_goes_but_a_blog_name_stays():
    assert canonicalize_url("https://m.example.com/a/") == "https://example.com/a"
    assert canonicalize_url("https://m.blogspot.com/a") == "https://m.blogspot.com/a"
    assert url_id("http://www.example.com/a?utm_source=x") == url_id("https://example.com/a")


def test_a_url_whose_host_parsers_read_differently_is_refused():
    assert url_problem("http://evil.example\\@good.example/", allow_file=False)[0] == "invalid-url"
    assert url_problem("file:///etc/passwd", allow_file=False)[0] == "blocked-scheme"
    assert url_problem("https://example.com/a", allow_file=False) is None


def test_a_canonical_on_another_host_of_the_site_is_honoured_but_not_on_another_blog(cleaner):
    assert (cleaner.canonical_url("https://function.mil.ru/news_page/a.htm?id=1",
                                  "https://mil.ru/news_page/a.htm?id=1")
            == "https://mil.ru/news_page/a.htm?id=1")
    assert (cleaner.canonical_url("https://mobile.example.co.uk/world/a-story",
                                  "https://news.example.co.uk/world/a-story")
            == "https://news.example.co.uk/world/a-story"), "sibling hosts of one registered domain"
    # Hosts under a private-section suffix are separate sites, as the list declares.
    assert (cleaner.canonical_url("https://m.mil.ru/news_page/a.htm?id=1",
                                  "https://eng.mil.ru/news_page/a.htm?id=1")
            == "https://m.mil.ru/news_page/a.htm?id=1")
    assert (cleaner.canonical_url("https://a.blogspot.com/2020/01/post.html",
                                  "https://b.blogspot.com/2020/01/post.html")
            == "https://a.blogspot.com/2020/01/post.html")

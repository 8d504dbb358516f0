"""The page's date when its markup declares none: htmldate's fuller search
(`fuller_page_date`), as trafilatura runs it, without its year-only guesses."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from htmldate import find_date
from lxml import etree
from lxml.html import tostring
from trafilatura.metadata import extract_metadata
from trafilatura.utils import load_html

from schemas.settings import CleanSettings
from transforms.cleaner import Cleaner
from transforms.metadata import PAGE_DATE_SEARCH, fuller_page_date, page_metadata

from .conftest import page_of

URL = "https://news.example.org/convoy-leaves-tanf"

PROSE = ("<p>The convoy left the deconfliction zone at dawn, officials said, after weeks of talks "
         "between the brigade and the coalition about the weapons it had been given.</p>"
         "<p>Residents of the camp watched the trucks leave and said they feared what would come "
         "next for the families who stayed behind in the desert.</p>")


def html_page(body: str, head: str = "", footer: str = "") -> bytes:
    return (f"<html><head><title>Convoy leaves Tanf</title>{head}</head><body>"
            f"<nav><ul><li><a href='/russia'>Russia</a></li><li><a href='/iran'>Iran</a></li></ul></nav>"
            f"<article><h1>Convoy leaves Tanf</h1>{body}</article>{footer}</body></html>").encode()


def dates(html: bytes, url: str = URL) -> tuple[str | None, str | None]:
    """(markup-only date as the clean stage finds it, the fuller search's)."""
    tree = load_html(html)
    metadata = page_metadata(tree, url)
    return metadata.date, fuller_page_date(tree, metadata.url)


def test_a_day_in_the_url_path():
    # The markup search already reads the URL; the fuller one agrees.
    assert dates(html_page(PROSE), "https://news.example.org/2024/03/05/convoy-leaves-tanf") == \
        ("2024-03-05", "2024-03-05")


@pytest.mark.parametrize("line", [
    "<p>Published March 5, 2024</p>",
    "<p>Published 5 March 2024, 08:14</p>",
    "<p>Veröffentlicht am 5. März 2024</p>",
])
def test_a_published_line_in_the_text(line):
    assert dates(html_page(line + PROSE)) == (None, "2024-03-05")


@pytest.mark.parametrize("line", [
    "<p>15 августа 2016, 12:30</p>",
    "<p>15 de agosto de 2016</p>",
    "<p>15 أغسطس 2016</p>",
    "<p>15 août 2016</p>",
])
def test_a_date_in_words_of_the_projects_languages(line):
    # Read by dateparser, which the fuller search asks in these languages only.
    assert dates(html_page(line + PROSE)) == (None, "2016-08-15")


@pytest.mark.parametrize("line", [
    "<p class='meta'>Published March 5, 2024</p>",  # an element classed as metadata
    "<div>Veröffentlicht am 05.03.2024</div>",  # a whole numeric date in the text
])
def test_what_the_markup_search_already_reads_in_the_text(line):
    """The markup search is not blind to the text; the fuller search finds the same."""
    assert dates(html_page(line + PROSE)) == ("2024-03-05", "2024-03-05")


@pytest.mark.parametrize("footer", [
    "<footer><p>© 2023 Example News. All rights reserved.</p></footer>",
    "<footer><p>Copyright 2023 Example News</p></footer>",
    "<footer><p>&copy; Example News, 2019-2023</p></footer>",
])
def test_a_copyright_year_alone_is_no_date(footer):
    html = html_page(PROSE, footer=footer)
    assert dates(html) == (None, None)
    # htmldate alone (and so trafilatura) makes the copyright year a date, 1 January:
    # the reason `fuller_page_date` drops its 1 January results.
    assert find_date(load_html(html), url=URL, extensive_search=True, original_date=True) == "2023-01-01"


def test_a_bare_year_in_the_text_is_no_date():
    assert dates(html_page("<p>In 2019 the brigade first refused to hand back its weapons.</p>"
                           + PROSE)) == (None, None)


def test_a_copyright_footer_does_not_hide_a_published_line():
    html = html_page("<p>Published March 5, 2024</p>" + PROSE,
                     footer="<footer><p>© 2023 Example News</p></footer>")
    assert dates(html) == (None, "2024-03-05")


def test_no_date_anywhere():
    assert dates(html_page(PROSE)) == (None, None)


@pytest.mark.parametrize("head", [
    '<meta property="article:published_time" content="2024-02-01T09:30:00Z">',
    '<script type="application/ld+json">{"@context": "https://schema.org", "@type": "NewsArticle", '
    '"headline": "Convoy leaves Tanf", "datePublished": "2024-02-01"}</script>',
])
def test_a_declared_date_is_what_the_fuller_search_finds_too(head):
    # A date in the prose (an earlier event) does not displace the declared one.
    html = html_page("<p>On 3 August 2017 the brigade first refused to hand back its weapons.</p>"
                     + PROSE, head)
    assert dates(html) == ("2024-02-01", "2024-02-01")


@pytest.mark.parametrize("body", [
    "<p>Published March 5, 2024</p>" + PROSE,
    "<p>Posted on 12 November 2021</p>" + PROSE,
    PROSE,
])
def test_the_fuller_search_is_trafilaturas(body):
    """Where trafilatura's own metadata pass finds a day, the fuller search finds the same."""
    tree = load_html(html_page(body))
    theirs = extract_metadata(load_html(html_page(body)), URL).date
    assert fuller_page_date(tree, URL) == theirs
    assert extract_metadata(load_html(html_page(body)), URL, PAGE_DATE_SEARCH).date is None


def test_the_tree_stays_as_it_was():
    """The clean stage searches the tree for a byline afterwards."""
    tree = load_html(html_page("<p>Published March 5, 2024</p>" + PROSE,
                               footer="<footer><p>© 2023 Example News</p></footer>"))
    before = tostring(tree)
    assert fuller_page_date(tree, URL) == "2024-03-05"
    assert tostring(tree) == before


def test_a_failure_is_no_date():
    # htmldate takes lxml.html trees only; anything else raises, which is no date here.
    assert fuller_page_date(etree.fromstring("<html><body><p>5 March 2024</p></body></html>"), URL) is None
    assert fuller_page_date(None, URL) is None


def test_the_clean_stage_dates_a_page_by_its_text_only_when_the_feed_gives_no_time(tmp_path):
    page = tmp_path / "dated-in-text.html"
    page.write_bytes(html_page("<p>Published March 5, 2024</p>" + PROSE + PROSE.replace("dawn", "dusk")))
    cleaner = Cleaner(CleanSettings())
    article = cleaner.clean(page_of(page))
    assert (article.published_at.date().isoformat(), article.date_source) == ("2024-03-05", "page")
    feed_time = datetime(2024, 6, 1, 9, 30, tzinfo=UTC)
    from_feed = cleaner.clean(page_of(page, feed_time=feed_time))
    assert (from_feed.published_at, from_feed.date_source) == (feed_time, "feed")


@pytest.mark.parametrize("line", ["Damascus, 1 January 2025 - The ministry said", "Published January 1, 2025",
                                  "Publié le 1er janvier 2025", "Veröffentlicht am 1. Januar 2025"])
def test_a_day_that_is_the_first_of_january_is_kept(line):
    assert dates(html_page(f"<p>{line}</p>" + PROSE))[1] == "2025-01-01"

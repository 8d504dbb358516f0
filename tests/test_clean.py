"""Clean stage: seed pages lose their clutter and keep every body line."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trafilatura.metadata import extract_metadata
from trafilatura.utils import load_html

from schemas.records import FeedItem, Page
from schemas.settings import CleanSettings
from transforms.cleaner import CleanError, choose_published, clean_title
from transforms.clutter import LineEvidence, PageSignals, load_clutter_families, remove_clutter
from transforms.metadata import PAGE_DATE_SEARCH, byline, category_links, page_metadata
from transforms.textnorm import fold

from .conftest import DEMO_PAGES, SEED_PAGES, normalise, page_of, seed_truth

FAMILIES = load_clutter_families()
SETTINGS = CleanSettings()
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("seed", sorted(SEED_PAGES))
def test_seed_keeps_every_body_line_and_drops_all_clutter(cleaner, seed):
    headline, body, clutter = seed_truth(seed)
    article = cleaner.clean(page_of(DEMO_PAGES / SEED_PAGES[seed]))
    kept = [normalise(line) for line in article.text.split("\n\n")]
    assert [line for line in body if line not in kept] == []
    assert [line for line in clutter if line in kept] == []
    assert normalise(article.title) == headline
    assert headline not in kept, "the headline belongs in `title`, not in the text"


def test_seed_clutter_is_recorded_for_audit(cleaner):
    article = cleaner.clean(page_of(DEMO_PAGES / SEED_PAGES["004_101b7afe40c93a6a.txt"]))
    assert article.clutter_removed.count("view-counter") == 2
    assert {"related", "back-to-top", "ad-blocker", "plugin-credit"} <= set(article.clutter_removed)


def test_breadcrumbs_become_the_section(cleaner):
    grasswire = cleaner.clean(page_of(DEMO_PAGES / SEED_PAGES["000_d9df6ba20024fa5b.txt"]))
    defense_post = cleaner.clean(page_of(DEMO_PAGES / SEED_PAGES["001_967cd6e8aa18a310.txt"]))
    assert grasswire.section == "Middle East News"
    assert defense_post.section == "Middle East › War"


def test_metadata_from_the_page(cleaner):
    article = cleaner.clean(page_of(DEMO_PAGES / SEED_PAGES["001_967cd6e8aa18a310.txt"]))
    assert article.canonical_url.startswith("https://thedefensepost.com/")
    assert article.source == "thedefensepost.com"
    assert article.published_at.date().isoformat() == "2018-09-18"
    assert article.date_source == "page"
    assert article.word_count > 300


def test_feed_time_is_preferred_to_the_page_day(cleaner):
    feed_time = datetime(2018, 9, 18, 14, 12, tzinfo=UTC)
    article = cleaner.clean(page_of(DEMO_PAGES / SEED_PAGES["001_967cd6e8aa18a310.txt"],
                                    feed_time=feed_time))
    assert (article.published_at, article.date_source) == (feed_time, "feed")


def html_page(body: str, head: str = "") -> bytes:
    return (f"<html><head><title>Convoy leaves Tanf</title>{head}</head><body>"
            f"<nav><ul><li><a href='/russia'>Russia</a></li><li><a href='/iran'>Iran</a></li>"
            f"<li><a href='/turkey'>Turkey</a></li></ul></nav><article><h1>Convoy leaves Tanf</h1>"
            f"{body}</article></body></html>").encode()


PROSE = ("<p>The convoy left the deconfliction zone at dawn, officials said, after weeks of talks "
         "between the brigade and the coalition about the weapons it had been given.</p>"
         "<p>Residents of the camp watched the trucks leave and said they feared what would come "
         "next for the families who stayed behind in the desert.</p>")


def test_an_unlinked_list_is_kept_though_the_menu_links_the_same_words(cleaner, tmp_path):
    page = tmp_path / "list.html"
    page.write_bytes(html_page(PROSE + "<p>Countries involved:</p><ul><li>Russia</li><li>Iran</li>"
                                       "<li>Turkey</li></ul>" + PROSE.replace("dawn", "dusk")))
    text = cleaner.clean(page_of(page)).text.split("\n\n")
    assert [line for line in text if line.lstrip("- ") in ("Russia", "Iran", "Turkey")] == \
        ["- Russia", "- Iran", "- Turkey"]


def test_a_date_in_the_prose_does_not_override_the_feed(cleaner, tmp_path):
    page = tmp_path / "dated.html"
    page.write_bytes(html_page("<p>On 3 August 2017 the brigade first refused to hand back its "
                               "weapons, a decision that shaped the months that followed.</p>" + PROSE))
    feed_time = datetime(2024, 3, 5, 8, tzinfo=UTC)
    article = cleaner.clean(page_of(page, feed_time=feed_time))
    assert (article.published_at, article.date_source) == (feed_time, "feed")
    marked = tmp_path / "marked.html"
    marked.write_bytes(html_page(PROSE, '<meta property="article:published_time" content="2024-02-01">'))
    from_meta = cleaner.clean(page_of(marked, feed_time=feed_time))
    assert (from_meta.published_at.date().isoformat(), from_meta.date_source) == ("2024-02-01", "page")


def test_a_canonical_link_to_the_home_page_is_ignored(cleaner, tmp_path):
    page = tmp_path / "p.html"
    page.write_bytes(html_page(PROSE, '<link rel="canonical" href="https://news.example.org/">'))
    article = cleaner.clean(page_of(page, url="https://news.example.org/2024/03/convoy"))
    assert article.canonical_url == "https://news.example.org/2024/03/convoy"


def test_cross_site_canonical_is_ignored(cleaner, tmp_path):
    page = tmp_path / "p.html"
    page.write_bytes((DEMO_PAGES / SEED_PAGES["001_967cd6e8aa18a310.txt"]).read_bytes())
    article = cleaner.clean(page_of(page, url="https://mirror.example.net/copy?utm_source=x"))
    assert article.canonical_url == "https://mirror.example.net/copy"
    assert article.source == "example.net"


@pytest.mark.parametrize("html, error_type", [
    (b"", "no-content"),
    (b"<html><body></body></html>", "no-content"),
    (b"<html><body><article><p>Short teaser of a story, behind a paywall.</p></article></body></html>",
     "too-short"),
    (b"\x00\xff\xfe" * 1000, "no-content"),
])
def test_pages_without_an_article_are_clean_errors(cleaner, tmp_path, html, error_type):
    page = tmp_path / "page.html"
    page.write_bytes(html)
    with pytest.raises(CleanError) as raised:
        cleaner.clean(page_of(page))
    assert raised.value.error_type == error_type


def test_cleaning_clean_text_changes_nothing(cleaner):
    article = cleaner.clean(page_of(DEMO_PAGES / SEED_PAGES["004_101b7afe40c93a6a.txt"]))
    again = remove_clutter(article.text.split("\n\n"), PageSignals(title=article.title),
                           FAMILIES, SETTINGS)
    assert again.text == article.text
    assert again.removed == ()


def test_clean_title_drops_the_site_name():
    assert clean_title("Big story – Grasswire", ("Grasswire",)) == "Big story"
    assert clean_title("Arab Times | Big story - with a dash", ("Arab Times",)) == "Big story - with a dash"
    assert clean_title("Big story – with a dash", ("Grasswire",)) == "Big story – with a dash"
    assert clean_title("Chininum D4 | Gelbe Liste", (None, "gelbe-liste")) == "Chininum D4"
    assert clean_title("Rebels leave Tanf - BBC News", ("BBC",)) == "Rebels leave Tanf"
    assert clean_title("Storm hits coast - BBC reporters trapped", ("BBC",)) == \
        "Storm hits coast - BBC reporters trapped"


@pytest.mark.parametrize("feed_time, page_date, expected_source", [
    (datetime(2017, 8, 3, 9, 30, tzinfo=UTC), "2017-08-02", "feed"),
    (datetime(2017, 8, 20, tzinfo=UTC), "2017-08-02", "page"),  # feed shows an update
    (datetime(2099, 1, 1, tzinfo=UTC), "2017-08-02", "page"),  # future feed date
    (datetime(1970, 1, 1, tzinfo=UTC), None, "fetched"),      # epoch placeholder
    (None, "1985-05-01", "fetched"),                                    # before 1990
    (None, "not a date", "fetched"),
])
def test_publication_date_sanity(feed_time, page_date, expected_source):
    moment, source = choose_published(feed_time, page_date, NOW, SETTINGS)
    assert source == expected_source
    assert datetime(1990, 1, 1, tzinfo=UTC) <= moment <= NOW


@pytest.mark.parametrize("page", sorted(DEMO_PAGES.glob("*.html")), ids=lambda path: path.stem)
def test_metadata_is_what_trafilaturas_own_pass_finds(page):
    """transforms/metadata.py calls trafilatura's parts on the parsed tree; on
    every bundled page it must find what trafilatura's whole metadata pass
    finds (a trafilatura upgrade that moves them fails here)."""
    url = "https://example.com/news/story.html"
    theirs = extract_metadata(load_html(page.read_bytes()), url, PAGE_DATE_SEARCH)
    tree = load_html(page.read_bytes())
    ours = page_metadata(tree, url)
    assert (ours.title, ours.url, ours.sitename, ours.date) == (
        theirs.title, theirs.url, theirs.sitename, theirs.date)
    assert (ours.author or byline(tree)) == theirs.author
    assert list(ours.categories or category_links(tree)) == list(theirs.categories or [])


BYLINE_PAGE = ("<html><head><title>Clashes in Idlib</title>{meta}</head><body><article>"
               "<h1>Clashes in Idlib</h1><p class='author'>Jane Roe</p><p>"
               + "Shelling was reported near Idlib on Monday, residents said. " * 12
               + "</p></article></body></html>")


@pytest.mark.parametrize("meta, feed_author, expected", [
    ("<meta name='author' content='Sam Page'>", "Feed Writer", ("Sam Page",)),
    ("", "Feed Writer", ("Feed Writer",)),
    ("", None, ("Jane Roe",)),
])
def test_declared_authors_come_before_a_byline_found_in_the_body(cleaner, tmp_path, meta, feed_author,
                                                                  expected):
    path = tmp_path / "story.html"
    path.write_text(BYLINE_PAGE.format(meta=meta))
    page = page_of(path)
    page = Page(item=FeedItem(url=page.item.url, feed_url=page.item.feed_url, author=feed_author),
                final_url=page.final_url, status=200, content_type="text/html", body=page.body,
                fetched_at=NOW)
    assert cleaner.clean(page).authors == expected


@pytest.mark.parametrize("json_ld", [
    '{"@context": "https://schema.org", "@type": "NewsArticle", "author": [null]}',
    '[1, {"@context": "https://schema.org", "@type": "NewsArticle", "headline": "Clashes in Idlib"}]',
    '{"@context": "https://schema.org", "@type": "NewsArticle", "author": 5}',
    '{"@context": "https://schema.org", "@type": "NewsArticle", '
    '"author": {"givenName": 1, "familyName": "Roe"}}',
])
def test_odd_json_ld_does_not_cost_the_article(cleaner, tmp_path, json_ld):
    path = tmp_path / "story.html"
    path.write_text(BYLINE_PAGE.format(meta=f"<script type='application/ld+json'>{json_ld}</script>"))
    article = cleaner.clean(page_of(path))
    assert article.title == "Clashes in Idlib" and "Shelling was reported near Idlib" in article.text


WORDPRESS_WIDGETS = (
    "<div class='adblock-notice'><p>We noticed you are blocking ads on this site. Whitelisting us "
    "keeps our reporters in the field.</p></div>"
    "<div class='wp-block-group newsletter-box'><h4>Stay in the loop</h4>"
    "<p>One email a week with everything we published.</p>"
    "<form><input type='email'><button>Count me in</button></form></div>")
COMMENT_FORM = (
    "<div id='respond' class='comment-respond'><h3 id='reply-title'>Leave your thoughts "
    "<small><a href='#'>Cancel</a></small></h3><form class='comment-form'>"
    "<p class='comment-notes'>Nobody else sees your email. Boxes with a star must be filled.</p>"
    "<textarea></textarea><button>Post</button></form></div>")


def test_widgets_the_markup_names_go_from_inside_the_article(cleaner, tmp_path):
    page = tmp_path / "wordpress.html"
    second = PROSE.replace("dawn", "dusk")
    page.write_bytes(html_page(f"<div class='entry-content tag-syria has-comments'>{PROSE}"
                               f"{WORDPRESS_WIDGETS}{second}{COMMENT_FORM}</div>"))
    article = cleaner.clean(page_of(page))
    assert article.text == "\n\n".join(
        line for paragraph in (PROSE, second) for line in paragraph.replace("<p>", "").split("</p>") if line)
    assert "structure" in article.clutter_removed


def test_a_furniture_label_on_a_large_block_never_removes_it(cleaner, tmp_path):
    long_prose = PROSE * 12
    page = tmp_path / "labelled.html"
    page.write_bytes(html_page(f"<div class='related-coverage'>{long_prose}</div>"))
    article = cleaner.clean(page_of(page))
    assert "structure" not in article.clutter_removed
    assert article.word_count == 12 * len(" ".join(PROSE.replace("</p>", " ").split()).split())


def test_an_article_in_a_labelled_container_without_paragraph_tags_is_kept(cleaner, tmp_path):
    paragraphs = [line for prose in (PROSE, PROSE.replace("dawn", "dusk").replace("camp", "town"))
                  for line in prose.replace("<p>", "").split("</p>") if line]
    page = tmp_path / "br.html"
    body = "".join(f"<div>{line}</div>" for line in paragraphs[:2]) + "<br><br>".join(paragraphs[2:])
    page.write_bytes(html_page(f"<div class='post-body has-comments'>{body}</div>"))
    article = cleaner.clean(page_of(page))
    assert "structure" not in article.clutter_removed
    assert article.word_count == len(" ".join(paragraphs).split())


PROSE_LINE = ("The convoy left the deconfliction zone at dawn, officials said, after weeks of talks "
              "between the brigade and the coalition about the weapons it had been given.")


def test_learned_evidence_that_would_take_most_of_the_text_is_not_used():
    lines = [PROSE_LINE, "Residents said the water supply was cut.", PROSE_LINE.replace("dawn", "dusk")]
    everything = PageSignals(furniture=frozenset(fold(line) for line in lines))
    cleaned = remove_clutter(lines, everything, FAMILIES, SETTINGS, LineEvidence())
    assert cleaned.text.split("\n\n") == lines


def test_a_you_may_also_like_line_between_paragraphs_cuts_nothing_after_it(cleaner, tmp_path):
    after = ["Two schools reopened in Daraa on Sunday.", "Teachers said attendance was low.",
             "The ministry promised new books before the winter term."]
    page = tmp_path / "widget.html"
    widget_then_more = "<p>You may also like</p>" + "".join(f"<p>{line}</p>" for line in after)
    page.write_bytes(html_page(PROSE + widget_then_more))
    article = cleaner.clean(page_of(page))
    assert article.text.split("\n\n")[-3:] == after
    assert "You may also like" not in article.text and article.clutter_removed.count("related") == 1


def test_a_heading_whose_id_is_made_of_its_words_is_not_furniture(cleaner, tmp_path):
    heading = "<h2 class='wp-block-heading' id='related-arrests'>Related arrests in Turkey</h2>"
    page = tmp_path / "anchor.html"
    page.write_bytes(html_page(PROSE + heading + PROSE.replace("dawn", "dusk")))
    article = cleaner.clean(page_of(page))
    assert "Related arrests in Turkey" in article.text.split("\n\n")

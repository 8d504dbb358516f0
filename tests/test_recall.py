"""Recall rules over trafilatura's extraction: small made-up pages, no corpus."""
from __future__ import annotations

import trafilatura
from lxml import etree
from trafilatura.utils import load_html

from transforms.recall import EXTRACT_OPTIONS, main_text_with_recall, recover

URL = "https://harbour.example/news/ferry-timetable"
HEADLINE = "Harbour council backs new ferry timetable"
LEAD = "The council voted seven to two for the timetable, which cuts the night crossings from next spring."
BODY = [f"Body paragraph {number} tells how the harbour council voted on the new ferry timetable, and why "
        f"the fishermen of the north quay were not pleased with the result of the long evening."
        for number in range(1, 7)]
PARAGRAPHS = "".join(f"<p>{paragraph}</p>" for paragraph in BODY)

# The lead (standfirst) in the article's header, outside the body container.
LEAD_IN_HEADER = f"""<html><head><title>Ferry vote</title></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li></ul></nav>
<main><article><header><h1>{HEADLINE}</h1>
<p class="standfirst">{LEAD}</p>
<p class="byline">By Ann Smith</p></header>
<div class="article-body">{PARAGRAPHS}</div></article></main>
<footer><p>Copyright 2024 Harbour News</p></footer></body></html>"""

# The same as a teaser block between headline and body, no <article>.
LEAD_AS_TEASER = f"""<html><body><div class="page"><h1>{HEADLINE}</h1>
<div class="teaser-text"><p>{LEAD}</p></div>
<div class="entry-content">{PARAGRAPHS}</div></div></body></html>"""

# No lead; before the body a dateline, a captioned photo, a related-article
# link and a newsletter box: none of them is a lead.
NO_LEAD = f"""<html><body><main><article><h1>{HEADLINE}</h1>
<p class="meta">12 March 2024, 14:00</p>
<figure><img src="quay.jpg"><figcaption>The north quay at dawn, where the fishermen
were not pleased with the vote. Photo: Ann Smith.</figcaption></figure>
<div class="box"><p><a href="/boats">Read also: the ferry company plans two new boats for the
crossing.</a></p></div>
<div class="newsletter-box"><p>Sign up for our newsletter to get the harbour news every morning.</p></div>
<div class="article-body">{PARAGRAPHS}</div></article></main></body></html>"""

# The lead inside the body container: trafilatura keeps it itself.
LEAD_IN_BODY = f"""<html><body><article><h1>{HEADLINE}</h1>
<div class="article-body"><p><b>{LEAD}</b></p>{PARAGRAPHS}</div></article></body></html>"""

# The whole article inside an <aside>: plain extraction keeps only the tagline.
ARTICLE_IN_ASIDE = f"""<html><body><div class="tagline">Your most important touchpoint to the harbour.</div>
<aside class="sidebar"><article><h1>{HEADLINE}</h1>
<div class="article-content">{PARAGRAPHS}</div></article></aside></body></html>"""


def plain(html: str):
    return trafilatura.bare_extraction(load_html(html), url=URL, **EXTRACT_OPTIONS)


def lines_of(document) -> list[str]:
    return [line for line in document.text.split("\n") if line.strip()]


def test_plain_extraction_drops_the_lead_and_recall_puts_it_before_the_body():
    for html in (LEAD_IN_HEADER, LEAD_AS_TEASER):
        before = lines_of(plain(html))
        assert LEAD not in before and before[0] == BODY[0]  # what the rule is for
        result = recover(load_html(html), URL)
        assert result.rule == "lead" and result.added == (LEAD,)
        assert lines_of(result.document) == [LEAD, *before]


def test_no_lead_means_the_plain_extraction_unchanged():
    for html in (NO_LEAD, LEAD_IN_BODY):
        result = recover(load_html(html), URL)
        assert result.rule is None and result.added == ()
        assert result.document.text == plain(html).text
    assert lines_of(plain(LEAD_IN_BODY))[0] == LEAD


def test_bylines_captions_links_and_boxes_before_the_body_stay_out():
    text = main_text_with_recall(load_html(NO_LEAD), URL).text
    for clutter in ("12 March 2024", "Photo: Ann Smith", "Read also", "Sign up for our newsletter"):
        assert clutter not in text


def test_a_missed_article_is_extracted_again_with_favor_recall():
    before = plain(ARTICLE_IN_ASIDE).text
    assert BODY[0] not in before  # plain extraction missed the article
    result = recover(load_html(ARTICLE_IN_ASIDE), URL)
    assert result.rule == "short-extraction"
    assert all(paragraph in result.document.text for paragraph in BODY)


def test_options_pass_through_and_the_tree_is_left_as_it_was():
    tree = load_html(LEAD_IN_HEADER)
    markup = etree.tostring(tree)
    document = main_text_with_recall(tree, URL, include_comments=False)
    assert LEAD in document.text
    assert etree.tostring(tree) == markup


def test_a_page_without_text_gives_what_trafilatura_gives():
    assert main_text_with_recall(load_html("<html><body><div></div></body></html>"), URL) is None

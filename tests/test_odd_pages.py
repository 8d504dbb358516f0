"""Odd pages cost only what is odd in them (issue 18, "Nothing lost"): a
JSON-LD field of an unexpected shape costs that field, a reference to a
control character costs that character -- never the article."""
from __future__ import annotations

import json

import pytest

from schemas.settings import CleanSettings
from transforms.cleaner import Cleaner, without_control_references

from .conftest import page_of

PARAGRAPHS = (
    "The convoy left the base at Tanf early on Monday after a week of talks between the commanders.",
    "Officials said the trucks carried food, fuel and medicine for the families waiting at the camp.",
    "A second convoy is expected later this month if the desert road stays open and safe to use.",
)
HEADLINE = "Aid convoy reaches Tanf"
PAGE_TITLE = "Convoy leaves Tanf"  # the page's <title>, read when the JSON-LD gives no headline


@pytest.fixture(scope="module")
def cleaner():
    return Cleaner(CleanSettings())


def html_page(paragraphs=PARAGRAPHS, head: str = "") -> str:
    return (f"<html><head><title>{PAGE_TITLE}</title>{head}</head><body><article>"
            + "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs) + "</article></body></html>")


def clean(cleaner, tmp_path, body: bytes):
    path = tmp_path / "story.html"
    path.write_bytes(body)
    return cleaner.clean(page_of(path, url="https://news.example.org/convoy"))


def json_ld(**fields) -> str:
    block = {"@context": "https://schema.org", "@type": "NewsArticle", **fields}
    return f"<script type='application/ld+json'>{json.dumps(block)}</script>"


def assert_whole_text(article):
    words = article.text.split()
    assert [word for paragraph in PARAGRAPHS for word in paragraph.split() if word not in words] == []


@pytest.mark.parametrize("headline, title", [
    ({"@value": HEADLINE, "@language": "en"}, HEADLINE),
    ([HEADLINE, "Convoy reaches Tanf after a week"], HEADLINE),
    ([{"@value": HEADLINE}, {"@value": "Second headline"}], HEADLINE),
    ([None, 7, {"@value": HEADLINE}], HEADLINE),
    ({"@type": "Text", "name": HEADLINE}, HEADLINE),
    (2024, PAGE_TITLE),
    (True, PAGE_TITLE),
    (None, PAGE_TITLE),
    ({"a": [{"b": {}}]}, PAGE_TITLE),
    ([[], {}, [None]], PAGE_TITLE),
], ids=["value-object", "list", "list-of-value-objects", "list-with-junk", "named-object", "number",
        "boolean", "null", "nested-garbage", "empty-containers"])
def test_an_odd_headline_costs_at_most_the_headline(cleaner, tmp_path, headline, title):
    article = clean(cleaner, tmp_path, html_page(head=json_ld(headline=headline)).encode())
    assert article.title == title
    assert_whole_text(article)


ODD_VALUES = (7, True, None, {"@value": 7}, {"a": [{"b": {}}]}, [[7]], ["x", 7, {"y": [None]}])


@pytest.mark.parametrize("field", ["name", "author", "datePublished", "dateModified", "url", "publisher",
                                   "articleSection", "keywords", "mainEntityOfPage"])
@pytest.mark.parametrize("value", ODD_VALUES, ids=lambda value: json.dumps(value))
def test_an_odd_field_costs_only_itself(cleaner, tmp_path, field, value):
    article = clean(cleaner, tmp_path, html_page(head=json_ld(headline=HEADLINE, **{field: value})).encode())
    assert article.title == HEADLINE
    assert_whole_text(article)


@pytest.mark.parametrize("author, authors", [
    ({"@value": "Jane Roe"}, ("Jane Roe",)),
    ([{"@value": "Jane Roe"}, 7, {"@type": "Person", "name": "Sam Page"}], ("Jane Roe", "Sam Page")),
    ({"@type": "Person", "name": {"@value": "Jane Roe"}}, ("Jane Roe",)),
    ({"@type": "Person", "givenName": ["Jane"], "familyName": {"@value": "Roe"}}, ("Jane Roe",)),
    ({"@type": "Person", "givenName": 1, "familyName": "Roe"}, ()),  # trafilatura needs both
    ('{"name": "Jane Roe", "givenName": 1, "familyName": 2}', ("Jane Roe",)),
    ("42", ()),
])
def test_an_odd_author_gives_the_names_it_holds(cleaner, tmp_path, author, authors):
    article = clean(cleaner, tmp_path, html_page(head=json_ld(headline=HEADLINE, author=author)).encode())
    assert (article.title, article.authors) == (HEADLINE, authors)


ARTICLE = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": HEADLINE}


@pytest.mark.parametrize("block", [
    7, "NewsArticle", None, [1, "x", [2]], [1, ARTICLE],
    {"@context": "https://schema.org",
     "@graph": [1, "x", [{"@type": "NewsArticle"}], {"@value": 2}, {**ARTICLE, "@context": None}]},
    {**ARTICLE, "@graph": [1, "x", {"@value": 2}]},
    {**ARTICLE, "@type": {"@value": "NewsArticle"}},
], ids=json.dumps)
def test_odd_json_ld_blocks_cost_only_themselves(cleaner, tmp_path, block):
    head = f"<script type='application/ld+json'>{json.dumps(block)}</script>"
    article = clean(cleaner, tmp_path, html_page(head=head).encode())
    assert article.title == (HEADLINE if HEADLINE in json.dumps(block) else PAGE_TITLE)
    assert_whole_text(article)


# Each form of reference to a control character, or the raw character, put
# between two words and inside a third.
CONTROLS = ["&#1;", "&#8;", "&#x1f;", "&#X1F;", "&#0;", "&#00001;", "&#x0008;", "&#11;", "&#xFFFF;",
            "&#65534;", "&#1", "&#x1", "\x01", "\x08", "\x00", "\x1f"]


def with_control(control: str) -> tuple[str, ...]:
    first, second, third = PARAGRAPHS
    return first, second.replace("food, fuel", f"food,{control} fuel").replace(
        "medicine", f"medic{control}ine"), third


@pytest.mark.parametrize("control", CONTROLS, ids=repr)
def test_a_control_character_costs_only_itself(cleaner, tmp_path, control):
    article = clean(cleaner, tmp_path, html_page(with_control(control)).encode())
    assert_whole_text(article)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("control", ["&#1;", "&#x1f;", "\x01"], ids=repr)
def test_a_control_character_in_a_utf16_page(cleaner, tmp_path, encoding, control):
    html = html_page(with_control(control)).replace("<head>", "<head><meta charset='utf-16'>")
    article = clean(cleaner, tmp_path, html.encode(encoding))
    assert_whole_text(article)


def test_references_to_other_characters_are_kept():
    kept = "&#9;&#10;&#13;&#x0A;&#32;&#127;&#12;3&#123;&#x1F600;&#x1fa;&#8217;&#65533;&#;&#x;&amp;"
    assert without_control_references(kept) == kept.replace("&#12;", "")

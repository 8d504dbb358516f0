"""The fast ways of finding a page's furniture, leaf blocks and byline give
what the plain ways give: each is checked against a plain walk over the
tree (or trafilatura's own XPaths) on small made-up pages with the awkward
cases -- nested widgets, headings' ids, roles in capitals, code inside
blocks, blocks inside inline markup, comments, control characters. And
ASCII text folds as the full normalisation folds it."""
from __future__ import annotations

import re

import lxml.html
import pytest
from lxml import etree
from trafilatura.htmlprocessing import prune_unwanted_nodes
from trafilatura.json_metadata import normalize_authors
from trafilatura.metadata import extract_metainfo
from trafilatura.utils import load_html
from trafilatura.xpaths import AUTHOR_DISCARD_XPATHS, AUTHOR_XPATHS

from transforms import metadata, recall
from transforms.furniture import FurnitureTexts, load_furniture_words, markup_words
from transforms.textnorm import fold

PAGES = [
    """<html><body><!-- a comment --><?pi x?>
    <p>Lead paragraph <span><div>a block inside inline markup</div></span> and its tail</p>
    <p>Text <noscript><div>no script</div></noscript> more</p>
    <div>outer <b>bold <i>x<script>var a = 1;</script></i></b> end</div>
    <li>item <style>.x {}</style> after</li>
    <template><p class="share">template</p></template>
    <noscript><p>paragraph</p><span>span</span></noscript>
    <section role="" class="content"><p>An empty role</p></section>
    <aside role="COMPLEMENTARY"><p>Aside text here</p></aside>
    <h3 id="share-this" class="heading">A heading whose id says share</h3>
    <h3 class="shareThis">A heading whose class says share</h3>
    <td>cell<div></div></td></body></html>""",
    """<html><body><div class="newsletter"><p>Sign up for our newsletter today to get the best
    stories delivered to you</p><p>A second long paragraph of prose that goes on and on with twelve
    words</p><div class="share">Share <span>Facebook</span></div></div>
    <div class="related-posts"><ul><li><a>Story one</a></li><li><a>Story two</a><!-- c --></li></ul></div>
    <p>Story one</p><form><button>Go</button></form>
    <footer><div class="share">Share <span>Facebook</span></div><p>Copyright</p></footer>
    <div aria-label="Newsletter sign-up">Sign up now</div><div class="share&#1;bar">Share bar</div>
    <div class="İnstagram-SHARE">Insta</div></body></html>""",
    """<html><body><div class="byline">By <span class="author-name">John Smith</span>
    <time>3 May</time></div><div id="comments"><span class="author">A Commenter</span></div>
    <a rel="author" href="/ann">Ann Author</a><div class="author&#1;x">Jane Q Doe</div>
    <p itemprop="author">Itemprop Author</p><div data-component="Byline">Component Byline</div>
    <figure><span class="writer">Figure Writer</span></figure><rel>m<time>x</time>e</rel>
    <div class="sidebar"><span class="AuthorName">Sidebar Author</span></div></body></html>""",
    """<html><body><article><p class="post-author">Posted by <b>Someone Else</b></p>
    <p>The article's only paragraph, long enough to be prose of the page and then some more.</p>
    </article></body></html>""",
]


def _trees(page: str) -> list:
    """The page as the clean stage parses it (comments removed) and as
    lxml.html does (comments kept), and some of its elements as trees."""
    trees = [load_html(page), lxml.html.document_fromstring(page)]
    return trees + [element for tree in trees for element in tree.iter("body", "div")]


def _plain_furniture(tree, words, max_chars: int) -> tuple[frozenset, frozenset]:
    """The folded texts inside and outside furniture by one walk over every element."""
    page_words = len(tree.text_content().split()) - sum(
        len(code.text_content().split()) for code in tree.iter("script", "style", "noscript", "template"))
    inside, outside, roots, depth = set(), set(), set(), 0
    for event, element in etree.iterwalk(tree, events=("start", "end")):
        if not isinstance(element.tag, str):
            continue
        if event == "end":
            depth -= depth > 0
        elif depth:
            depth += 1
        elif _names_furniture(element, words) and _small(element, max_chars, page_words):
            roots.add(element)
            inside.update(fold(part.text_content()) for part in element.iter(etree.Element)
                          if part.text_content().strip())
            depth = 1
    for event, element in etree.iterwalk(tree, events=("start", "end")):
        if not isinstance(element.tag, str):
            continue
        if event == "start":
            depth += depth > 0 or element in roots
        elif depth:
            depth -= 1
        elif element.tag in {"p", "li", "dt", "dd", "td", "th", "figcaption", "blockquote",
                             "h1", "h2", "h3", "h4", "h5", "h6"}:
            outside.add(fold(element.text_content()))
    return frozenset(inside - {""}), frozenset(outside)


def _names_furniture(element, words) -> bool:
    if element.tag in words.tags or (element.get("role") or "").lower() in words.roles:
        return True
    labels = ("class", "aria-label") if element.tag in {"h1", "h2", "h3", "h4", "h5", "h6"} \
        else ("class", "id", "aria-label")
    return any(element.get(label) and words.labels.search(" ".join(_plain_markup_words(element.get(label))))
               for label in labels)


def _small(element, max_chars: int, page_words: int) -> bool:
    whole = element.text_content()
    if not whole.strip() or len(whole) > max_chars:
        return False
    blocks = [len(" ".join([part.text or ""] + [child.tail or "" for child in part]).split())
              for part in element.iter(etree.Element)]
    return sum(words >= 12 for words in blocks) <= 1 and sum(blocks) < page_words / 2


def _plain_markup_words(value: str) -> list[str]:
    humped = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", value)
    return [word for word in re.split(r"[^a-z0-9]+", humped.lower()) if word]


def _plain_leaf_blocks(tree) -> list[tuple]:
    """(element, text) of the leaf blocks by one walk over every element."""
    unseen = {element for code in tree.iter(*recall._NO_TEXT_TAGS)
              for element in code.iter(*recall._LEAF_TAGS)}
    blocks, holds_block = [], set()
    for _, element in etree.iterwalk(tree, events=("end",)):
        if not isinstance(element.tag, str):
            continue
        if any(child in holds_block or child.tag in recall._BLOCK_TAGS for child in element
               if isinstance(child.tag, str)):
            holds_block.add(element)
            continue
        if element.tag in recall._LEAF_TAGS and element not in unseen:
            code = next(element.iter(*recall._NO_TEXT_TAGS), None) is not None
            text = recall._plain("".join(element.xpath(recall._TEXT) if code else element.itertext()))
            if text:
                blocks.append((element, text))
    return blocks


@pytest.mark.parametrize("page", PAGES)
def test_furniture_texts_are_those_of_a_plain_walk(page):
    words = load_furniture_words()
    for tree in _trees(page):
        for max_chars in (1500, 40):
            texts = FurnitureTexts(tree, words, max_chars)
            inside, outside = _plain_furniture(tree, words, max_chars)
            assert texts._inside == inside
            assert texts._texts_outside() == outside


@pytest.mark.parametrize("page", PAGES)
def test_leaf_blocks_are_those_of_a_plain_walk(page):
    for tree in _trees(page):
        blocks = recall._leaf_blocks(tree)
        assert [(block.element, block.text) for block in blocks] == _plain_leaf_blocks(tree)


def test_markup_words_as_split_plainly():
    values = ["newsroom-cta__title", "shareButtons", "İnstagram-SHARE", "ΑΣ-Share", "K-widget", "a_b--c",
              "", "---", "XMLHttp", "abcDEFghi", "ümlautBox", "share\x01bar", "99Problems"]
    assert [markup_words(value) for value in values] == [_plain_markup_words(value) for value in values]


@pytest.mark.parametrize("page", PAGES)
def test_byline_is_trafilaturas(page):
    for parse in (load_html, lxml.html.document_fromstring):
        tree, reference = parse(page), parse(page)
        found = extract_metainfo(prune_unwanted_nodes(reference, AUTHOR_DISCARD_XPATHS), AUTHOR_XPATHS,
                                 len_limit=120)
        assert metadata.byline(tree) == (metadata._tidy(normalize_authors(None, found)) if found else None)
        assert etree.tostring(tree) == etree.tostring(reference)  # pruned alike


def test_byline_xpaths_test_values_in_c():
    """trafilatura's byline XPaths are still of the form `_ValueTests`
    rewrites (else `byline` takes about 1.6 times as long)."""
    assert metadata._AUTHORS.xpaths is not metadata._AUTHORS.originals
    assert metadata._DISCARD.xpaths is not metadata._DISCARD.originals


def _plain_fold(text: str) -> str:
    import unicodedata

    from transforms.textnorm import arabic_letters, strip_marks
    text = arabic_letters(strip_marks(unicodedata.normalize("NFKC", text)).casefold())
    return " ".join(re.findall(r"[^\W_]+", text))


def test_fold_of_ascii_text_is_the_full_folds():
    every = "".join(map(chr, range(128)))
    texts = [every, every[::-1], "Related Articles »"[:-2], "SHARE_this--Now!", "a\tb\r\nc\x00d", "", " _ ",
             "Read more: 5 things", "don't", "e-mail"]
    assert [fold(text) for text in texts] == [_plain_fold(text) for text in texts]
    assert fold("Related Articles »") == _plain_fold("Related Articles »") == "related articles"



def test_labels_remembered_across_pages_stay_within_bounds(monkeypatch):
    """Values judged on earlier pages are remembered up to a bound of
    characters, then forgotten at once: a long run's memory stays flat."""
    from transforms import furniture

    monkeypatch.setattr(furniture, "_JUDGED_MAX_CHARS", 1000)
    words = load_furniture_words()
    for number in range(200):
        page = (f'<html><body><div id="story-{number}-{"x" * 40}" class="share">Share</div>'
                f'<p>{"The article itself goes on here. " * 5}</p></body></html>')
        assert FurnitureTexts(load_html(page), words, 1500)._inside == {"share"}
        assert words.judged.chars <= 1000 + 60

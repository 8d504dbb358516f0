"""Main text that keeps what trafilatura loses: the article's lead, and the
article itself when the extraction missed it (plain functions, no Beam).

`main_text_with_recall(tree, url)` is trafilatura's `bare_extraction` with
our options (its bundled readability and jusText fallbacks on), then:

- the lead rule: a sentence-like paragraph of at least `_LEAD_MIN_WORDS`
  words among the `_LEAD_WINDOW` blocks before the article container's first
  kept block (standfirst, teaser, chapo: between headline and body, outside
  the container trafilatura picks) goes back in before the body -- unless it
  is a caption or credit, mostly links, hidden, in nav/aside/footer/form, or
  matched by trafilatura's own boilerplate XPaths;
- the short-extraction rule: when the text is under half of the page's main
  paragraph container and holds under half of its paragraphs (an article in
  an <aside>, a recipe replaced by a cookie notice), the page is extracted
  again with `favor_recall=True`, kept if it holds at least half of them.

Why these two: on the tune half of the corpus (bench/corpus_split.json)
leads are a third of what plain extraction loses. Headings, list items,
captions and paragraphs put back were measured too and left out: each
brought back more annotated clutter than text (mostly what trafilatura
drops on purpose: "Mehr zum Thema" headings over removed link lists, photo
credits). Figures, both halves: README, "Cleaning".
"""
from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

import trafilatura
from lxml import etree
from trafilatura.xpaths import OVERALL_DISCARD_XPATH, REMOVE_COMMENTS_XPATH

# Our options for trafilatura.bare_extraction (transforms/cleaner.py's main_text).
EXTRACT_OPTIONS = {"include_comments": False, "include_tables": True, "deduplicate": False}

# A page's block counts as kept when its text (whitespace removed) is in the
# extracted text. Blocks this short are not trusted to be kept: short texts
# recur by chance ("Share", a date).
_KEPT_MIN_CHARS = 15
# Only kept blocks this long say where the article container is.
_CONTAINER_BLOCK_MIN_CHARS = 40
# The article container: deepest element holding this share of the
# characters of the long kept blocks (so a kept title or stray line outside
# the body does not move it up to <body>).
_CONTAINER_SHARE = 0.8
# Leads are looked for among this many leaf blocks before the container's
# first kept block. Tune half: 3 -> 16, 6 -> 17, 10 -> 17, 15 -> 18, 25 -> 18
# annotated leads found; no annotated clutter at any of them (levels 4).
_LEAD_WINDOW = 15
# ... under the container's ancestor this many levels up. Tune half: 3 finds
# 16 annotated leads, 4 finds 18, 5 and 6 find 18 and one annotated caption.
_LEAD_LEVELS = 4
# ... with at least this many words (5 to 12 give the same tune figures;
# shorter lines before the body are datelines, bylines, kickers).
_LEAD_MIN_WORDS = 8
# ... and ending like a sentence (without it: 7 annotated clutter lines, 1 more lead).
_SENTENCE_END = re.compile(r"[.!?…:;\"“”»«'’)]\s*$")
# A block whose text is more than this share link text is a link list or teaser.
_MAX_LINK_SHARE = 0.5
# Image captions and credits (the corpus counts them as clutter more often than as text).
_CAPTION_MARKUP = re.compile(
    r"caption|credit|copyright|media|image|img|photo|foto|bild|picture|gallery|slide", re.IGNORECASE)
_CAPTION_LEVELS = 4  # the block and its ancestors up to this many, for the markup above
_CREDIT_TEXT = re.compile(r"©|\b(?:Foto|Photo|Bild)s?\s*:|iStock|Getty ?Images|shutterstock|stock\.adobe",
                          re.IGNORECASE)

# Short-extraction rule: the <p> container is measured from paragraphs this long,
_PARAGRAPH_MIN_CHARS = 25
# ... is worth a second extraction when it holds this many characters,
_CONTAINER_MIN_CHARS = 250
# ... and the extracted text is shorter than this share of them,
_SHORT_SHARE = 0.5
# ... and contains under this share of them; the recall extraction is used
# when it contains at least this share. Tune half: the second extraction runs
# on 1 page and is used there; a length test of 2.0 instead of 0.5 runs it on
# 9 pages and uses it on the same 1.
_COVER_SHARE = 0.5

_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
# Blocks that hold text themselves; a leaf block is one of them holding no block.
_LEAF_TAGS = _HEADINGS | {"p", "li", "dt", "dd", "figcaption", "td", "th", "caption", "pre", "blockquote",
                          "div"}
_BLOCK_TAGS = _LEAF_TAGS | {"section", "header", "article", "main", "aside", "nav", "footer", "ul", "ol",
                            "dl", "table", "tr", "tbody", "thead", "figure", "form"}
_CAPTION_TAGS = frozenset(("figure", "figcaption", "caption", "picture"))
_NO_TEXT_TAGS = ("script", "style", "noscript", "template")
_SKIPPED_TAGS = frozenset(_NO_TEXT_TAGS + ("nav", "aside", "footer", "form", "button", "select", "textarea",
                                           "iframe", "svg", "head", "title"))
_TEXT = ".//text()[not(ancestor::script or ancestor::style or ancestor::noscript or ancestor::template)]"
# trafilatura's own boilerplate and comment XPaths, asked of a block's ancestors.
_DISCARDED = tuple(
    etree.XPath(xpath.path.strip().replace(".//*", "ancestor-or-self::*", 1),
                namespaces={"re": "http://exslt.org/regular-expressions"})
    for xpath in (*OVERALL_DISCARD_XPATH, *REMOVE_COMMENTS_XPATH))
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\u2063\ufeff]")
_SPACES = re.compile(r"\s+")


class Recovered(NamedTuple):
    """What the rules did to one page's extraction."""

    document: object  # trafilatura Document, or None when there is no text
    rule: str | None  # "short-extraction", "lead", "short-extraction+lead" or None
    added: tuple[str, ...]  # lines the lead rule put in


def main_text_with_recall(tree, url: str, **options):
    """trafilatura's main text of the page (a Document, or None) with its
    lead kept and, when it missed the article, a recall extraction.
    `options` override `EXTRACT_OPTIONS`. The tree is not changed."""
    return recover(tree, url, **options).document


def recover(tree, url: str, **options) -> Recovered:
    """`main_text_with_recall`, telling which rule fired and what it added."""
    options = {**EXTRACT_OPTIONS, **options}
    document = trafilatura.bare_extraction(tree, url=url, **options)
    blocks = _leaf_blocks(tree)
    rule = None
    text = (document.text or "") if document is not None else ""
    second = _recall_extraction(tree, url, options, blocks, text)
    if second is not None:
        document, text, rule = second, second.text or "", "short-extraction"
    if document is None or not text:
        return Recovered(document, rule, ())
    lines = text.split("\n")
    leads = _leads(blocks, _key("".join(lines)))
    if not leads:
        return Recovered(document, rule, ())
    lines = _insert(lines, blocks, leads)
    document.text = document.raw_text = "\n".join(lines)
    return Recovered(document, "lead" if rule is None else rule + "+lead",
                     tuple(block.text for block in leads))


class _Block:
    """A leaf block of the page: an element holding text and no other block."""

    __slots__ = ("element", "text", "key", "index", "kept")

    def __init__(self, element, text: str, index: int):
        self.element, self.text, self.key, self.index = element, text, text.replace(" ", ""), index
        self.kept = False


def _key(text: str) -> str:
    """The text as compared with the extraction: NFC, no soft hyphens or
    zero-width characters, no whitespace (extractors space inline markup
    and <br> differently)."""
    return _SPACES.sub("", _visible(text))


def _plain(text: str) -> str:
    return " ".join(_visible(text).split())


def _visible(text: str) -> str:
    """NFC, without soft hyphens and zero-width characters (ASCII has neither)."""
    return text if text.isascii() else _INVISIBLE.sub("", unicodedata.normalize("NFC", text))


def _leaf_blocks(tree) -> list[_Block]:
    """The page's leaf blocks with text, in document order; none inside
    script, style, noscript or template markup. Only elements of block and
    code tags are visited, picked out by lxml in C (lxml.html makes a Python
    object of each element visited, with a Python call to choose its class):
    a block holds a block, or code, when it is the nearest block above it."""
    unseen = {element for container in tree.iter(*_NO_TEXT_TAGS) if len(container)
              for element in container.iter(*_LEAF_TAGS)}
    elements = list(tree.iter(*_BLOCK_TAGS, *_NO_TEXT_TAGS))  # held: each one's parent is not made again
    holding, holding_code = set(), set()
    for element in elements:
        parent = element.getparent()
        while parent is not None and parent.tag not in _BLOCK_TAGS:
            parent = parent.getparent()
        (holding if element.tag in _BLOCK_TAGS else holding_code).add(parent)
    blocks: list[_Block] = []
    for element in elements:
        if element.tag not in _LEAF_TAGS or element in holding or element in unseen:
            continue
        if element in holding_code:
            text = _plain("".join(element.xpath(_TEXT)))
        else:
            text = _plain("".join(element.itertext()))
        if text:
            blocks.append(_Block(element, text, len(blocks)))
    return blocks


def _paragraph_container(blocks: list[_Block]) -> list[_Block]:
    """The <p> blocks of the element whose <p> children hold the most text."""
    by_parent: dict = {}
    for block in blocks:
        if block.element.tag == "p" and len(block.text) >= _PARAGRAPH_MIN_CHARS:
            parent = block.element.getparent()
            if parent is not None:
                by_parent.setdefault(parent, []).append(block)
    if not by_parent:
        return []
    return max(by_parent.values(), key=lambda paragraphs: sum(len(block.text) for block in paragraphs))


def _coverage(paragraphs: list[_Block], text: str) -> float:
    found = _key(text)
    total = sum(len(block.text) for block in paragraphs)
    return sum(len(block.text) for block in paragraphs if block.key in found) / total if total else 1.0


def _recall_extraction(tree, url: str, options: dict, blocks: list[_Block], text: str):
    """The page extracted again with favor_recall, when the first text is
    short against the page's paragraph container, misses most of it, and
    the second text holds most of it; else None."""
    paragraphs = _paragraph_container(blocks)
    chars = sum(len(block.text) for block in paragraphs)
    if chars < _CONTAINER_MIN_CHARS or len(text) >= _SHORT_SHARE * chars \
            or _coverage(paragraphs, text) >= _COVER_SHARE:
        return None
    second = trafilatura.bare_extraction(tree, url=url, **{**options, "favor_recall": True})
    if second is None or not second.text or len(second.text) <= len(text) \
            or _coverage(paragraphs, second.text) < _COVER_SHARE:
        return None
    return second


def _leads(blocks: list[_Block], found: str) -> list[_Block]:
    """The lead blocks before the article container's first kept block (see the module doc)."""
    for block in blocks:
        block.kept = len(block.text) >= _KEPT_MIN_CHARS and block.key in found
    container = _article_container(blocks)
    if container is None:
        return []
    first = next((block.index for block in blocks if block.kept and _within(block.element, container)), None)
    if first is None:
        return []
    ancestors = [container, *container.iterancestors()]
    top = ancestors[min(_LEAD_LEVELS, len(ancestors) - 1)]
    return [block for block in blocks[max(0, first - _LEAD_WINDOW):first]
            if not block.kept and block.key not in found and _is_lead(block, top)]


def _article_container(blocks: list[_Block]):
    """Deepest element holding `_CONTAINER_SHARE` of the long kept blocks' characters."""
    long_kept = [block for block in blocks if block.kept and len(block.text) >= _CONTAINER_BLOCK_MIN_CHARS]
    total = sum(len(block.text) for block in long_kept)
    if not total:
        return None
    weight: dict = {}
    for block in long_kept:
        for ancestor in block.element.iterancestors():
            weight[ancestor] = weight.get(ancestor, 0) + len(block.text)
    # The elements over the share all lie on one line of ancestors: the deepest has the most.
    heavy = [element for element, chars in weight.items() if chars >= _CONTAINER_SHARE * total]
    return max(heavy, key=_depth) if heavy else None


def _depth(element) -> int:
    return sum(1 for _ in element.iterancestors())


def _within(element, ancestor) -> bool:
    return any(node is ancestor for node in element.iterancestors())


def _is_lead(block: _Block, top) -> bool:
    element, text = block.element, block.text
    if element.tag in _HEADINGS or len(text.split()) < _LEAD_MIN_WORDS or not _SENTENCE_END.search(text):
        return False
    if not _within(element, top) or _CREDIT_TEXT.search(text) or _captionish(element):
        return False
    linked = sum(len(_plain("".join(link.itertext()))) for link in element.iter("a"))
    if linked > _MAX_LINK_SHARE * len(text):
        return False
    return not _skipped(element) and not any(xpath(element) for xpath in _DISCARDED)


def _captionish(element) -> bool:
    node = element
    for _ in range(_CAPTION_LEVELS):
        if node is None:
            return False
        markup = f"{node.get('class', '')} {node.get('id', '')}"
        if node.tag in _CAPTION_TAGS or _CAPTION_MARKUP.search(markup):
            return True
        node = node.getparent()
    return False


def _skipped(element) -> bool:
    """In markup that holds no article text, or hidden."""
    for node in (element, *element.iterancestors()):
        if node.tag in _SKIPPED_TAGS or node.get("hidden") is not None or node.get("aria-hidden") == "true":
            return True
        if "display:none" in (node.get("style") or "").replace(" ", ""):
            return True
    return False


def _insert(lines: list[str], blocks: list[_Block], leads: list[_Block]) -> list[str]:
    """The lines with each lead just before the line of the next kept block
    (at the top when that line is not found)."""
    keys = [_key(line) for line in lines]
    before: dict[int, list[str]] = {}
    for lead in leads:
        after = next((block for block in blocks[lead.index + 1:] if block.kept), None)
        where = _line_of(after.key, keys) if after is not None else None
        before.setdefault(where if where is not None else 0, []).append(lead.text)
    out: list[str] = []
    for number, line in enumerate(lines):
        out.extend(before.get(number, ()))
        out.append(line)
    return out


def _line_of(key: str, keys: list[str]) -> int | None:
    for prefix in (key[:60], key[:20]):
        for number, line in enumerate(keys):
            if prefix in line:
                return number
    return None

"""Page furniture that the page's own markup names (plain functions, no Beam).

Sites label their widgets for their stylesheets and screen readers:
`class="newsletter-signup"`, `id="comments"`, `role="complementary"`,
`aria-label="Share this article"`, a `<form>`. Those labels hold on sites no
pattern file has seen, in any language of the text. The words that name
furniture are data (`schemas/data/structure.yaml`); this module finds the
small labelled elements of a page and returns the texts inside them, which
the clean stage then removes line by line as `structure`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from schemas import load_data

from .textnorm import fold

_CAMEL_HUMP = re.compile(r"(?<=[a-z])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_LABELS = ("class", "id", "aria-label")
# Blocks an extractor makes lines of: the same text in one of them outside
# all furniture is the article's.
# A paragraph this long is prose; a widget holds at most one.
_PROSE_PARAGRAPH_WORDS = 12
_BLOCKS = frozenset({"p", "li", "dt", "dd", "td", "th", "figcaption", "blockquote",
                     "h1", "h2", "h3", "h4", "h5", "h6"})


@dataclass(frozen=True)
class FurnitureWords:
    """The markup words that name furniture, as `structure.yaml` lists them."""
    words: frozenset[str]
    phrases: tuple[tuple[str, ...], ...]
    inside: tuple[str, ...]
    roles: frozenset[str]
    tags: frozenset[str]

    def names_furniture(self, element) -> bool:
        if element.tag in self.tags or (element.get("role") or "").lower() in self.roles:
            return True
        for attribute in _LABELS:
            value = element.get(attribute)
            if value and self._labels(markup_words(value)):
                return True
        return False

    def _labels(self, words: list[str]) -> bool:
        if any(word in self.words or any(part in word for part in self.inside) for word in words):
            return True
        return any(tuple(words[start:start + len(phrase)]) == phrase
                   for phrase in self.phrases for start in range(len(words) - len(phrase) + 1))


def load_furniture_words(text: str | None = None) -> FurnitureWords:
    spec = load_data("structure.yaml", text)
    return FurnitureWords(
        words=frozenset(spec["words"]),
        phrases=tuple(tuple(markup_words(phrase)) for phrase in spec["phrases"]),
        inside=tuple(spec["inside"]), roles=frozenset(spec["roles"]), tags=frozenset(spec["tags"]))


def markup_words(value: str) -> list[str]:
    """"newsroom-cta__title" -> [newsroom, cta, title]; "shareButtons" -> [share, buttons]."""
    return [word for word in _NOT_WORD.split(_CAMEL_HUMP.sub(" ", value).lower()) if word]


def furniture_texts(tree, names: FurnitureWords, max_chars: int) -> frozenset[str]:
    """Folded texts of the page's small labelled furniture: of each such
    element and of every element inside it, so a line matches whichever
    block the extractor made of it -- unless the same text also stands as a
    block outside all furniture ("Russia" in the menu and in the article's
    own list). An element with more text than `max_chars` is not taken as
    furniture (its descendants still may be): a label on the article's own
    container must not make the article furniture."""
    inside, outside = set(), set()
    page_words = sum(_words(paragraph) for paragraph in tree.iter("p"))
    depth = 0  # how many furniture elements enclose the current one
    for event, element in etree.iterwalk(tree, events=("start", "end")):
        if not isinstance(element.tag, str):
            continue
        if event == "start":
            if depth == 0 and names.names_furniture(element):
                if _is_small_widget(element, max_chars, page_words):
                    depth = 1
                    continue
            elif depth:
                depth += 1
            continue
        if depth:
            inside.add(fold(element.text_content()))
            depth -= 1
        elif element.tag in _BLOCKS:
            text = element.text_content()
            if len(text) <= max_chars:
                outside.add(fold(text))
    inside.discard("")
    return frozenset(inside - outside)


def _words(element) -> int:
    return len(element.text_content().split())


def _is_small_widget(element, max_chars: int, page_words: int) -> bool:
    """Whether a labelled element is small enough to be a widget: some text,
    at most `max_chars`, at most one paragraph of prose (a promo blurb, an
    author's bio), and not half of the page's paragraphs (a short article in
    a container labelled "has-comments")."""
    whole = element.text_content()
    if not whole.strip() or len(whole) > max_chars:
        return False
    paragraphs = [_words(paragraph) for paragraph in element.iter("p")]
    if sum(words >= _PROSE_PARAGRAPH_WORDS for words in paragraphs) > 1:
        return False
    return not page_words or sum(paragraphs) < page_words / 2

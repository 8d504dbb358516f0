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
from dataclasses import dataclass, field

from lxml import etree

from schemas import load_data

from .textnorm import fold

_CAMEL_HUMP = re.compile(r"(?<=[a-z])(?=[A-Z])")
_WORD = re.compile(r"[a-z0-9]+")
# A heading's id is made from its own words by editors ("related-arrests").
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
# Blocks an extractor makes lines of: the same text in one of them outside
# all furniture is the article's.
_NO_TEXT = ("script", "style", "noscript", "template")
# A paragraph this long is prose; a widget holds at most one.
_PROSE_PARAGRAPH_WORDS = 12
_BLOCKS = frozenset({"p", "li", "dt", "dd", "td", "th", "figcaption", "blockquote",
                     "h1", "h2", "h3", "h4", "h5", "h6"})


# Characters of the attribute values remembered before they are forgotten
# all at once: a few MiB at most, whatever the pages' values.
_JUDGED_MAX_CHARS = 2_000_000


class _JudgedValues(dict):
    """Attribute values judged (value -> names furniture), kept across pages:
    a site's pages share their templates' class names, and many recur across
    sites ("menu-item"). Bounded by their characters (ids made per page do
    not recur, and some sites' class strings are long)."""

    chars = 0

    def remember(self, value: str, answer: bool) -> None:
        if self.chars > _JUDGED_MAX_CHARS:
            self.clear()
            self.chars = 0
        self[value] = answer
        self.chars += len(value)


@dataclass(frozen=True)
class FurnitureWords:
    """The markup words that name furniture, as `structure.yaml` lists them,
    compiled into one regex over an attribute's words joined by spaces."""
    labels: re.Pattern
    roles: frozenset[str]
    tags: frozenset[str]
    judged: _JudgedValues = field(default_factory=_JudgedValues, compare=False, repr=False)

    def names(self, value: str) -> bool:
        """Whether a class, id or aria-label value names furniture."""
        answer = self.judged.get(value)
        if answer is None:
            answer = self.labels.search(" ".join(markup_words(value))) is not None
            self.judged.remember(value, answer)
        return answer

    def named_elements(self, tree) -> list:
        """The elements of `tree` (itself too), in document order, whose tag,
        role or labels name furniture -- but not a heading's id. One call for
        an element's attributes, a dict lookup for each value: this visits
        every element of the page."""
        tags, roles, judged, names = self.tags, self.roles, self.judged, self.names
        found = []
        for element in tree.iter(etree.Element):
            if element.tag in tags:
                found.append(element)
                continue
            for name, value in element.items():
                if name == "class" or name == "aria-label" or (name == "id" and element.tag not in _HEADINGS):
                    answer = judged.get(value)  # one read: another thread may judge it meanwhile
                    if answer or (answer is None and names(value)):
                        found.append(element)
                        break
                elif name == "role" and value.lower() in roles:
                    found.append(element)
                    break
        return found


def load_furniture_words(text: str | None = None) -> FurnitureWords:
    spec = load_data("structure.yaml", text)
    whole = sorted({" ".join(markup_words(entry)) for entry in spec["words"] + spec["phrases"]},
                   key=len, reverse=True)
    inside = sorted(spec["inside"], key=len, reverse=True)
    labels = re.compile(r"(?<![a-z0-9])(?:" + "|".join(map(re.escape, whole)) + r")(?![a-z0-9])|"
                        + "|".join(map(re.escape, inside)))
    return FurnitureWords(labels, roles=frozenset(spec["roles"]), tags=frozenset(spec["tags"]))


def markup_words(value: str) -> list[str]:
    """"newsroom-cta__title" -> [newsroom, cta, title]; "shareButtons" -> [share, buttons]."""
    lowered = value.lower()
    if lowered != value:  # capitals, so maybe camelCase humps (most labels have none)
        lowered = _CAMEL_HUMP.sub(" ", value).lower()
    return _WORD.findall(lowered)


class FurnitureTexts:
    """Folded texts of the page's small labelled furniture: of each such
    element and of every element inside it, so a line matches whichever
    block the extractor made of it -- unless the same text also stands as a
    block outside all furniture ("Russia" in the menu and in the article's
    own list). An element with more text than `max_chars`, more than one
    paragraph of prose or half the page's paragraphs is not taken as
    furniture (its descendants still may be): a label on the article's own
    container must not make the article furniture.

    The texts outside furniture are only gathered when a line is found
    inside it (one more pass over the page), which most lines are not."""

    def __init__(self, tree, names: FurnitureWords, max_chars: int):
        self._tree, self._outside = tree, None
        self._taken: set = set()  # the elements of the widgets taken, the widgets too
        page_words = len(tree.text_content().split()) - sum(
            len(code.text_content().split()) for code in tree.iter(*_NO_TEXT))
        texts: set[str] = set()  # nested blocks repeat
        # In document order: a widget comes before the elements it holds, which are then part of it.
        for element in names.named_elements(tree):
            if element not in self._taken and (parts := _widget(element, max_chars, page_words)):
                self._taken.update(parts)
                # An element without children holds its own text alone (text_content is an XPath call).
                texts.update(part.text_content() if len(part) else part.text or "" for part in parts)
        self._inside = frozenset(fold(text) for text in texts if text.strip()) - {""}

    def __contains__(self, folded: str) -> bool:
        if folded not in self._inside:
            return False
        if self._outside is None:
            self._outside = self._texts_outside()
        return folded not in self._outside

    def _texts_outside(self) -> frozenset[str]:
        texts = {block.text_content() for block in self._tree.iter(*_BLOCKS) if block not in self._taken}
        return frozenset(map(fold, texts))


def _own_words(element) -> int:
    """Words of the text that stands directly in the element (its text and
    its children's tails): a paragraph, whether in <p> or between <br>s."""
    return len(" ".join([element.text or ""] + [child.tail or "" for child in element]).split())


def _widget(element, max_chars: int, page_words: int) -> list | None:
    """A labelled element and the elements in it, if it is small enough to
    be a widget: some text, at most `max_chars`, at most one paragraph of
    prose (a promo blurb, an author's bio) however it is marked up, and less
    than half of the page's text (a short article in a container labelled
    "has-comments"); else None."""
    whole = element.text_content()
    if not whole.strip() or len(whole) > max_chars:
        return None
    parts = list(element.iter(etree.Element))  # kept: lxml makes an element's object once while it is held
    blocks = [_own_words(part) for part in parts]
    if sum(words >= _PROSE_PARAGRAPH_WORDS for words in blocks) > 1 or sum(blocks) >= page_words / 2:
        return None
    return parts

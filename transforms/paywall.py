"""Paywalls: whether a page says it is free to read, and whether it is a stub.

schema.org markup (JSON-LD `isAccessibleForFree` on the article, or on a
`hasPart` of it naming the paywalled part), as Google asks publishers to
mark paywalled content, says whether the page is free; the notices of
schemas/data/paywall.yaml are what a paywall says where the article should
be. The cleaner keeps the markup's answer with each article
(`is_accessible_for_free`) and names a page `paywalled` only when it is too
short to be an article anyway (see Cleaner.refuse_paywall_stub): metered
sites mark every article not free and print "Already a subscriber?" on
every page, and a selector naming the paywalled part is too often absent,
exotic or costly to be evidence against a short article of theirs.
"""
from __future__ import annotations

import json
import re
from functools import cache

from schemas import load_data

from .textnorm import fold

_JSON_LD = './/script[@type="application/ld+json"]'
_NOT_FREE = ("false", "no", "0")
_FREE = ("true", "yes", "1")
# The schema.org types a page's own text is: what they say of being free is said of the article.
_ARTICLE_TYPES = re.compile(r"Article|Posting|Report|WebPage|CreativeWork|WebPageElement", re.I)


def accessible_for_free(tree) -> bool | None:
    """False when the article (an Article/WebPage object of the page's JSON-LD,
    or a part of one) says it is not free, True when it says it is and no part
    says not, None when it says nothing. What a WebSite or Organization object
    says of its own offers is not said of this article."""
    said = set()
    for script in tree.xpath(_JSON_LD):
        try:
            document = json.loads(script.text or "", strict=False)
        except (ValueError, RecursionError):
            continue
        said |= set(_statements(document, depth=0))
    return False if False in said else True if True in said else None


def _statements(node, depth: int, of_article: bool = False):
    """Every isAccessibleForFree of the article objects of a JSON-LD value
    (through @graph and lists) and of their parts (hasPart, whatever their
    type), as booleans."""
    if depth > 20:  # deeper than any real markup: not worth the stack
        return
    if isinstance(node, list):
        for item in node:
            yield from _statements(item, depth + 1, of_article)
    elif isinstance(node, dict):
        types = node.get("@type")
        types = " ".join(map(str, types)) if isinstance(types, list) else str(types or "")
        if "@graph" in node:
            yield from _statements(node["@graph"], depth + 1)
        if not (of_article or _ARTICLE_TYPES.search(types)):
            return
        free = _boolean(node.get("isAccessibleForFree"))
        if free is not None:
            yield free
        for key in ("hasPart", "mainEntity"):
            if key in node:
                yield from _statements(node[key], depth + 1, of_article=True)


def _boolean(value) -> bool | None:
    """schema.org's Boolean as publishers write it: true, "False",
    "https://schema.org/False", "schema:False", ["false"], {"@value": "false"};
    None for anything else."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict):
        value = value.get("@value", value.get("@id"))
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip().lower()
    for prefix in ("https://schema.org/", "http://schema.org/", "schema:"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return False if text in _NOT_FREE else True if text in _FREE else None


@cache
def _notices() -> re.Pattern:
    phrases = sorted({fold(phrase) for phrase in load_data("paywall.yaml")["notices"]}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(phrase) for phrase in phrases) + r")(?!\w)")


def paywall_notice(text: str) -> str | None:
    """The first paywall notice in `text` (the page's main text, folded), or None."""
    found = _notices().search(fold(text))
    return found[0] if found else None

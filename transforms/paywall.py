"""Paywalls: whether a page says it is free to read, and whether it is a stub.

schema.org markup (JSON-LD `isAccessibleForFree`, on the article or on a
`hasPart` naming the paywalled part's `cssSelector`), as Google asks
publishers to mark paywalled content, says whether the page is free; the
notices of schemas/data/paywall.yaml are what a paywall says where the
article should be. The cleaner keeps the markup's answer with each article
(`is_accessible_for_free`) and calls a page a `paywalled` reject only when
it loses nothing by it (see Cleaner.refuse_paywall_stub): metered sites mark
every article not free and print "Already a subscriber?" on every page, so
neither is evidence against a short article of theirs.
"""
from __future__ import annotations

import json
import re
from functools import cache
from typing import NamedTuple

from cssselect import SelectorError
from lxml.cssselect import CSSSelector

from schemas import load_data

from .textnorm import fold, word_count

_JSON_LD = './/script[@type="application/ld+json"]'
_NOT_FREE = ("false", "no", "0")
_FREE = ("true", "yes", "1")


class PaywallMarkup(NamedTuple):
    # False: some object says not free; True: some say free and none says not; None: none says.
    free: bool | None
    # The CSS selectors of the parts it marks not free (hasPart.cssSelector).
    paywalled_parts: tuple[str, ...]


def paywall_markup(tree) -> PaywallMarkup:
    said, parts = set(), []
    for script in tree.xpath(_JSON_LD):
        try:
            document = json.loads(script.text or "", strict=False)
        except (ValueError, RecursionError):
            continue
        for free, selector in _statements(document, depth=0):
            said.add(free)
            if free is False and selector:
                parts.append(selector)
    return PaywallMarkup(False if False in said else True if True in said else None, tuple(parts))


def _statements(node, depth: int):
    """(free, cssSelector or None) for every isAccessibleForFree of a JSON-LD
    value, its @graph, hasPart and lists."""
    if depth > 20:  # deeper than any real markup: not worth the stack
        return
    if isinstance(node, list):
        for item in node:
            yield from _statements(item, depth + 1)
    elif isinstance(node, dict):
        free = _boolean(node.get("isAccessibleForFree"))
        if free is not None:
            selector = node.get("cssSelector")
            yield free, selector.strip() if isinstance(selector, str) and selector.strip() else None
        for key in ("@graph", "hasPart", "mainEntity", "mainEntityOfPage"):
            if key in node:
                yield from _statements(node[key], depth + 1)


def _boolean(value) -> bool | None:
    """schema.org's Boolean as publishers write it: true, "False", "https://schema.org/False",
    ["false"], {"@value": "false"}; None for anything else."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict):
        value = value.get("@value", value.get("@id"))
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip().lower().rsplit("/", 1)[-1]
    return False if text in _NOT_FREE else True if text in _FREE else None


def withheld(tree, selectors: tuple[str, ...], min_words: int) -> bool:
    """Whether the page leaves out the parts its markup calls paywalled: no
    element matches their selectors, or those that do hold fewer than
    `min_words` words. False when a selector cannot be read (no evidence)."""
    words = 0
    for selector in selectors:
        try:
            matched = CSSSelector(selector)(tree)
        except (SelectorError, ValueError, TypeError):
            return False
        words += sum(word_count(" ".join(element.itertext())) for element in matched)
    return words < min_words


@cache
def _notices() -> re.Pattern:
    phrases = sorted({fold(phrase) for phrase in load_data("paywall.yaml")["notices"]}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(phrase) for phrase in phrases) + r")(?!\w)")


def paywall_notice(text: str) -> str | None:
    """The first paywall notice in `text` (the page's main text, folded), or None."""
    found = _notices().search(fold(text))
    return found[0] if found else None

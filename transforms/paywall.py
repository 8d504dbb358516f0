"""Paywalls: whether a page says it is free to read, and whether it is a stub.

schema.org markup (JSON-LD `isAccessibleForFree`, on the article or on a
`hasPart` naming the paywalled part's `cssSelector`), as Google asks
publishers to mark paywalled content, says whether the page is free; the
notices of schemas/data/paywall.yaml are what a paywall says on the page it
hides. The cleaner keeps the markup's answer with each article
(`is_accessible_for_free`) and calls a short page a `paywalled` reject, not
an article, only with two signals (see Cleaner.article): a long page marked
not free is kept, its text served in full (metered paywalls serve crawlers).
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


def accessible_for_free(tree) -> bool | None:
    """False when any JSON-LD object of the page (or a part of it) says it is
    not free, True when some say it is and none says not, None when none says."""
    said = set()
    for script in tree.xpath(_JSON_LD):
        try:
            document = json.loads(script.text or "", strict=False)
        except (ValueError, RecursionError):
            continue
        said |= set(_statements(document, depth=0))
    return False if False in said else True if True in said else None


def _statements(node, depth: int):
    """Every isAccessibleForFree of a JSON-LD value, its @graph, hasPart and lists, as booleans."""
    if depth > 20:  # deeper than any real markup: not worth the stack
        return
    if isinstance(node, list):
        for item in node:
            yield from _statements(item, depth + 1)
    elif isinstance(node, dict):
        value = node.get("isAccessibleForFree")
        text = str(value).strip().lower() if value is not None else ""
        if text in _NOT_FREE:
            yield False
        elif text in _FREE:
            yield True
        for key in ("@graph", "hasPart", "mainEntity", "mainEntityOfPage"):
            if key in node:
                yield from _statements(node[key], depth + 1)


@cache
def _notices() -> re.Pattern:
    phrases = sorted({fold(phrase) for phrase in load_data("paywall.yaml")["notices"]}, key=len, reverse=True)
    return re.compile("|".join(re.escape(phrase) for phrase in phrases))


def paywall_notice(tree) -> str | None:
    """The first paywall notice the page shows (folded), or None."""
    body = tree.find(".//body")
    text = " ".join((body if body is not None else tree).itertext())
    found = _notices().search(fold(" ".join(text.split())))
    return found[0] if found else None

"""Text normalisation shared by the stages: one definition of "the same text".

Plain functions over str, no Beam: clean (clutter patterns, site templates),
classify (gazetteer words) and dedup (content hashes) all fold text the same
way, so a rule written once holds everywhere.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

# Arabic letters written interchangeably: alef maqsura/yaa, taa marbuta/haa,
# alef wasla/alef; tatweel (kashida) is only stretching. Replaced by a regex:
# str.translate with a table looks up every character of the text, and was
# half the cost of `fold` on whole articles.
_ARABIC_VARIANTS = {"ى": "ي", "ة": "ه", "ٱ": "ا", "ـ": ""}
_ARABIC_VARIANT = re.compile("[" + "".join(_ARABIC_VARIANTS) + "]")
_WORD_CHARS = re.compile(r"[^\W_]+")
_ASCII_WORD_CHARS = re.compile(r"[A-Za-z0-9]+")  # _WORD_CHARS within ASCII
# Han, Kana and Hangul: scripts written without spaces between words.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


# Every combining character of the Basic Multilingual Plane, as one class:
# a regex removes them far faster than a Python loop over the text.
_COMBINING = re.compile("[" + "".join(re.escape(chr(code)) for code in range(0x300, 0x10000)
                                      if unicodedata.combining(chr(code))) + "]")


def strip_marks(text: str) -> str:
    """Drop accents and Arabic harakat/hamza marks (combining characters)."""
    if text.isascii():
        return text
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text))


def fold(text: str) -> str:
    """Case, accents, Arabic letter variants and punctuation folded away;
    words separated by single spaces. "Related Articles »" == "related articles"."""
    if text.isascii():  # nothing to normalise, no accents, no Arabic: only case and punctuation
        return " ".join(_ASCII_WORD_CHARS.findall(text.lower()))
    text = arabic_letters(strip_marks(unicodedata.normalize("NFKC", text)).casefold())
    return " ".join(_WORD_CHARS.findall(text))


def word_count(text: str) -> int:
    """Words of spaced scripts plus characters of unspaced ones (CJK), so a
    Chinese article is not counted as a handful of 'words'."""
    unspaced = len(_UNSPACED.findall(text))
    return len(_UNSPACED.sub(" ", text).split()) + unspaced


def arabic_letters(text: str) -> str:
    return _ARABIC_VARIANT.sub(lambda match: _ARABIC_VARIANTS[match.group()], text)


def content_hash(text: str) -> str:
    """Hash of the text with case, accents, punctuation and spacing normalised,
    so copies differing only in typography meet."""
    return hashlib.blake2b(fold(text).encode("utf-8"), digest_size=16).hexdigest()

"""Page metadata for the clean stage, read from the tree the page was parsed into.

trafilatura's metadata pass (`bare_extraction(with_metadata=True)`) costs
about a third of the extraction itself: it copies the whole tree to look
for a byline and searches for tags and a license we do not keep. This
module calls the same trafilatura parts for what the clean stage keeps --
title, canonical URL, site name, date (htmldate, from the markup only),
authors, categories -- so the results are trafilatura's, at a fraction of
the cost. trafilatura 2.x keeps these functions in `trafilatura.metadata`.
For pages that declare no date, `fuller_page_date` is htmldate's search of
the text as trafilatura runs it.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from html import unescape

import htmldate.extractors
from dateparser import DateDataParser
from htmldate import find_date
from lxml import etree
from trafilatura.htmlprocessing import prune_unwanted_nodes
from trafilatura.json_metadata import (
    extract_json,
    extract_json_parse_error,
    normalize_authors,
    normalize_json,
)
from trafilatura.metadata import (
    JSON_MINIFY,
    META_URL,
    examine_meta,
    extract_catstags,
    extract_metainfo,
    extract_sitename,
    extract_title,
    extract_url,
)
from trafilatura.settings import set_date_params
from trafilatura.utils import line_processing
from trafilatura.xpaths import AUTHOR_DISCARD_XPATHS, AUTHOR_XPATHS

# The page's date from its markup only (meta tags, JSON-LD, <time>): a date
# guessed from the prose ("On 3 August 2017 ...") is often not the
# publication date, and the guessing (dateparser) costs a third of the time.
PAGE_DATE_SEARCH = {"extensive_search": False, "original_date": True}
# For pages whose markup declares no date, and only when the feed gave no
# time either: htmldate's fuller search as trafilatura runs it -- the text
# too (a "Published March 5, 2024" line, a date in the title), then loose
# patterns over the whole page. Its last resorts are a year alone (the
# copyright footer's, or any year on the page) given as 1 January, which
# `fuller_page_date` does not keep.
_FULLER_DATE_SEARCH = {"extensive_search": True, "original_date": True, "outputformat": "%Y-%m-%d"}
# 1 January of a year, spelled out: 2025-01-01, 01.01.2025, 1/1/2025, "1 January 2025",
# "January 1, 2025", "1er janvier", "1. Januar", "1 de enero de", "1 января", "1 Ocak", "1 يناير".
_NEW_YEAR = (r"{year}-01-01|\b0?1[./]0?1[./]{year}|\b0?1\.?(?:er)?\s+(?:de\s+)?(?:january|jan\.?|janvier|"
             r"januar|j[aä]nner|enero|января|ocak|يناير|كانون الثاني)(?:\s+de)?,?\s+{year}|"
             r"(?:january|jan\.?)\s+0?1(?:st)?,?\s+{year}")
_MAX_CHARS = 10_000  # trafilatura's own cap on a metadata field
# The fuller search's last resort for a date in words is dateparser, which
# htmldate asks to try all of its ~200 locales: on a string none of them
# reads ("Opublikowano 3 marca 2021") that is 2-4 s the first time in a
# process -- `extract` of one such page took 7 s instead of 3. Restricted to
# the seven languages of the project's data it is 0.1-0.2 s; htmldate's own
# patterns (numeric dates, month names of many languages) still read the rest.
DATE_WORD_LANGUAGES = ("en", "ar", "fr", "de", "es", "ru", "tr")
# The JSON-LD fields trafilatura's reader (trafilatura.json_metadata) uses, by
# the shape it assumes: one string; a string or a list of strings (an
# author's "name" may list several people); objects (or lists of them) whose
# own fields it reads. It does not check these shapes: a headline given as
# {"@value": ...} or a number became the title and failed further on.
_JSON_LD_TEXT = frozenset({"headline", "legalName", "alternateName", "givenName", "additionalName",
                           "familyName"})
_JSON_LD_TEXTS = frozenset({"@type", "articleSection", "name"})
_JSON_LD_OBJECTS = frozenset({"@graph", "liveBlogUpdate", "publisher", "author"})
_JSON_LD_XPATH = './/script[@type="application/ld+json" or @type="application/settings+json"]'


@dataclass(frozen=True)
class PageMetadata:
    """What the page says about itself; None where it says nothing."""
    title: str | None
    url: str | None
    sitename: str | None
    date: str | None
    author: str | None  # "First Author; Second Author"
    categories: tuple[str, ...]  # from meta tags and JSON-LD; see `category_links`


def _tidy(value: str | None) -> str | None:
    """Entities decoded, whitespace and control characters trimmed, as trafilatura does."""
    if not value:
        return value
    if len(value) > _MAX_CHARS:
        value = value[:_MAX_CHARS - 1] + "…"
    return line_processing(unescape(value))


def page_metadata(tree, default_url: str | None) -> PageMetadata:
    """Meta tags and JSON-LD first, then the page's title and canonical link;
    the date by htmldate. Leaves the tree as it was. The slower searches of
    the body are separate, for when they are needed: `category_links` and
    `byline` (which prunes the tree)."""
    found = examine_meta(tree)
    if found.author and " " not in found.author:  # a handle or a site name, not a person
        found.author = None
    found = _json_ld_metadata(tree, found)
    title = _text(found.title) or extract_title(tree)  # a JSON-LD "name" may be a list
    url = found.url or extract_url(tree, default_url)
    sitename = found.sitename or extract_sitename(tree)
    if sitename:
        sitename = sitename.lstrip("@")
        if sitename and "." not in sitename and not sitename[0].isupper():
            sitename = sitename.title()
    elif url and (match := META_URL.match(url)):
        sitename = match[1]
    return PageMetadata(
        title=_tidy(title), url=_tidy(url), sitename=_tidy(sitename),
        date=find_date(tree, url=url, **PAGE_DATE_SEARCH), author=_tidy(found.author),
        categories=tuple(found.categories or ()))


def _json_ld_metadata(tree, found):
    """trafilatura's `extract_meta_json`, with each block's JSON first put in
    the shapes its reader assumes (`_json_ld_object`): a field of an odd
    shape costs that field, never the page's other metadata or the article."""
    for script in tree.xpath(_JSON_LD_XPATH):
        if not script.text:
            continue
        text = normalize_json(JSON_MINIFY.sub(r"\1", script.text))
        try:
            # strict=False: control characters in strings, as trafilatura reads them
            schema = _json_ld_objects(json.loads(text, strict=False), None)
        except json.JSONDecodeError:
            found = extract_json_parse_error(text, found)  # regular expressions over the text
            continue
        except RecursionError:  # nested deeper than Python's stack: nothing to read in it
            continue
        if schema is not None:
            try:
                found = extract_json(schema, found)
            except Exception:  # noqa: BLE001 -- a shape not foreseen above costs this block, not the page
                continue
    return found


def _text(value) -> str | None:
    """A JSON-LD field as one string: itself, the `@value` of a value object
    or the `name` of a named one, the first such string of a list; None for
    numbers, booleans, null and objects without either."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return _text(value.get("@value", value.get("name")))
    if isinstance(value, list):
        return next(filter(None, map(_text, value)), None)
    return None


def _texts(value) -> str | list[str] | None:
    """A field that may list strings: the list's strings, or one string."""
    if isinstance(value, list):
        return [text for text in map(_text, value) if text] or None
    return _text(value)


def _json_ld_objects(value, key: str | None):
    """An object or a list of objects, as given; None when there is none.
    Items of other kinds are left out of a list."""
    if isinstance(value, list):
        return [node for node in (_json_ld_object(item, key) for item in value)
                if node is not None] or None
    return _json_ld_object(value, key)


def _json_ld_object(value, key: str | None):
    """A JSON-LD object with the fields trafilatura reads in their shapes
    (the others as they are); an author may also be a name, or JSON that
    trafilatura would parse (read here the same way); None for anything else."""
    if key == "author" and isinstance(value, dict) and "@value" in value:
        value = _text(value)
    if key == "author" and isinstance(value, str):
        try:
            return _json_ld_object(json.loads(value), key)
        except json.JSONDecodeError:
            return value
    if not isinstance(value, dict) or "@value" in value:  # a value, not an object
        return None
    fields = {}
    for name, item in value.items():
        if name in _JSON_LD_TEXT:
            item = _text(item)
        elif name in _JSON_LD_TEXTS:
            item = _texts(item)
        elif name in _JSON_LD_OBJECTS:
            item = _json_ld_objects(item, name)
        if item is not None:
            fields[name] = item
    return fields


def fuller_page_date(tree, url: str | None) -> str | None:
    """The page's publication day ("2024-03-05") by htmldate's fuller search,
    with trafilatura's options (the original date, nothing after today, the
    day in `url`'s path counts); None when it finds none, when all it finds
    is a year (htmldate's 1 January: a copyright line, a bare year) or when
    htmldate fails. Slower than the markup search `page_metadata` runs (the
    text is searched, dateparser may be called), so for pages where neither
    the feed nor the markup gives a date. Works on a copy of `tree` (htmldate
    copies a parsed tree before pruning it), which stays as it was."""
    try:
        # max_date: today, per call, as trafilatura's `set_date_params`.
        found = find_date(tree, url=url, **{**set_date_params(True), **_FULLER_DATE_SEARCH})
    except Exception:  # noqa: BLE001 -- a date is not worth the article
        return None
    if not found or (found.endswith("-01-01") and not _names_new_year(tree, found[:4])):
        return None  # a year alone, not a day (see _FULLER_DATE_SEARCH)
    return found


@functools.cache
def _date_word_parser() -> DateDataParser:
    """htmldate's dateparser set-up (htmldate.extractors.get_external_parser),
    in `DATE_WORD_LANGUAGES` only."""
    return DateDataParser(languages=list(DATE_WORD_LANGUAGES), settings={
        "NORMALIZE": True, "PARSERS": ["custom-formats", "absolute-time"],
        "PREFER_DATES_FROM": "past", "PREFER_LOCALE_DATE_ORDER": True,
        "RETURN_AS_TIMEZONE_AWARE": False, "STRICT_PARSING": True})


# htmldate looks its parser up by this name on every use; this is the one
# place its choice of languages can be given.
htmldate.extractors.get_external_parser = _date_word_parser


def _names_new_year(tree, year: str) -> bool:
    """Whether the page spells out 1 January of `year` (so htmldate's
    1 January is that day, not a year alone): as digits or in words in
    one of the seven languages."""
    text = " ".join(tree.text_content().split())
    return re.search(_NEW_YEAR.format(year=year), text, re.IGNORECASE) is not None


def category_links(tree) -> list[str]:
    """Category names of the page's category links ("Filed under: War"), as
    trafilatura finds them when the metadata declares none."""
    return extract_catstags("category", tree)


def byline(tree) -> str | None:
    """Authors named in the page's body (a byline, an author box), as
    trafilatura searches for them -- but in place: comments, dates and
    figures are cut out of `tree` first, so call this when done with it."""
    values = {attribute: set(find(tree)) for attribute, find in _ATTRIBUTE_VALUES.items()}
    try:
        discard, authors = _DISCARD.bound(values), _AUTHORS.bound(values)
    except ValueError:  # a value XML cannot hold (a control character): trafilatura's own XPaths
        discard, authors = AUTHOR_DISCARD_XPATHS, AUTHOR_XPATHS
    author = extract_metainfo(prune_unwanted_nodes(tree, discard), authors, len_limit=120)
    return _tidy(normalize_authors(None, author)) if author else None


# trafilatura's byline XPaths test class and id values with EXSLT regular
# expressions: a call into Python for each element of the page, most of
# `byline`'s time. `_ValueTests` asks each regular expression of the page's
# distinct values instead, and the XPaths, in C, whether an element's value
# is one it found.
_REGEX_TEST = re.compile(r"re:test\(\s*@([\w-]+)\s*,\s*'([^']*)'\s*\)")


class _ValueTests:
    """XPaths (trafilatura's) with each `re:test(@attribute, 'regex')` made
    `@attribute = $found`: whether the element has the attribute and its
    value is one of those on the page the regex finds (`bound`). The same
    test, as the regex finds no empty value, which EXSLT reads for a missing
    attribute; if an XPath tests in any other way, it is kept as it is."""

    def __init__(self, xpaths):
        self.originals, self.tests = tuple(xpaths), []
        paths = [_REGEX_TEST.sub(self._variable, xpath.path) for xpath in self.originals]
        if any("re:" in path for path in paths) or any(regex.search("") for _, regex in self.tests):
            self.xpaths = self.originals
        else:
            self.xpaths = tuple(etree.XPath(path) for path in paths)

    def _variable(self, match) -> str:
        self.tests.append((match[1], re.compile(match[2])))
        return f"(@{match[1]} = $found{len(self.tests) - 1})"

    def bound(self, values: dict[str, set[str]]) -> list:
        """The XPaths, to be called on a tree whose attribute values are
        among `values` (the tree itself, or it pruned). ValueError for a
        value XML cannot hold."""
        if self.xpaths is self.originals:
            return list(self.originals)
        found = {f"found{number}": _string_nodes(value for value in values[attribute] if regex.search(value))
                 for number, (attribute, regex) in enumerate(self.tests)}
        return [_Bound(original, xpath, found)
                for original, xpath in zip(self.originals, self.xpaths, strict=True)]


class _Bound:
    """An XPath with its variables, called as trafilatura calls its own
    (and named as the original in trafilatura's debug log)."""

    def __init__(self, original, xpath, variables: dict):
        self.original, self.xpath, self.variables = original, xpath, variables

    def __call__(self, tree):
        return self.xpath(tree, **self.variables)

    def __repr__(self) -> str:
        return repr(self.original)


def _string_nodes(values) -> list:
    """Elements whose string values are `values`, for an XPath variable
    (lxml takes no list of strings): `@class = $nodes` is whether the
    attribute is there and its value one of `values`. ValueError for a
    string XML cannot hold."""
    holder, nodes = etree.Element("values"), []
    for value in values:
        node = etree.SubElement(holder, "value")
        node.text = value
        nodes.append(node)
    return nodes


_DISCARD, _AUTHORS = _ValueTests(AUTHOR_DISCARD_XPATHS), _ValueTests(AUTHOR_XPATHS)
_ATTRIBUTE_VALUES = {attribute: etree.XPath(f"//@{attribute}", smart_strings=False)
                     for attribute, _ in _DISCARD.tests + _AUTHORS.tests}

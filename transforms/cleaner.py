"""A fetched page becomes article text and metadata: the clean stage's
core, without Beam (`news-ingest extract` and the benchmarks use it alone;
transforms/clean.py runs it in the pipeline).

The page is parsed once. From that tree come the metadata (title, date,
authors, canonical link: `transforms/metadata.py`), the sections the page
declares and which texts are links; trafilatura finds the main text in it. What the
extractor kept from inside the article container is then removed line by
line (`transforms/clutter.py`), and, across the articles of one source,
lines that repeat as the site's template (`transforms/templates.py`).
Every removal is recorded in the article's `clutter_removed` column.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import lxml.html
from lxml import etree
from trafilatura.utils import INVALID_XML_CHARS, decode_file, is_dubious_html, repair_faulty_html

from schemas.records import Article, Page
from schemas.settings import CleanSettings

from .clutter import (
    ClutterFamily,
    LineEvidence,
    PageSignals,
    load_clutter_families,
    load_starting_boilerplate,
    remove_clutter,
)
from .cues import load_cue_words
from .furniture import FurnitureTexts, load_furniture_words
from .metadata import PageMetadata, byline, category_links, fuller_page_date, page_metadata
from .paywall import accessible_for_free, paywall_notice
from .recall import main_text_with_recall
from .textnorm import content_hash, fold, word_count
from .urls import canonicalize_url, registered_domain, same_site, url_id, url_problem

# Words that follow a site's name in its title suffix ("BBC News", "Al Jazeera English").
_SITE_NAME_WORDS = r"(?: (?:news|online|english|arabic|world|international|today|live|com))*"
_TITLE_SEPARATORS = re.compile(r"\s+[|–—\-:·•»]\s+")
_SECTION_META = ("article:section", "og:section", "section", "category")
# References to characters XML text cannot hold -- C0 controls other than tab,
# LF and CR, and U+FFFE/U+FFFF -- decimal or hex, with or without the ";".
# lxml puts the character in the tree, and trafilatura then discards the
# whole page's text; a browser shows nothing for it. (`load_html` removes
# the raw characters itself, after decoding.)
_CONTROL_REFERENCES = re.compile(
    r"&#(?:0*(?:[0-8]|1[124-9]|2[0-9]|3[01]|6553[45])(?![0-9])"
    r"|[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F]|[fF]{3}[eEfF])(?![0-9a-fA-F]));?")
_LOG = logging.getLogger(__name__)
# trafilatura's parser settings, with each element given the class
# HtmlElement in C. lxml.html's own parser asks a lookup written in Python
# for the class of every element Python touches (about 5 % of cleaning a
# page, trafilatura's work included); what it adds, classes with helpers for
# form fields, neither trafilatura nor we use (the 922 corpus pages extract
# byte for byte the same).
_PARSER = lxml.html.HTMLParser(collect_ids=False, default_doctype=False, encoding="utf-8",
                               remove_comments=True, remove_pis=True)
_PARSER.set_element_class_lookup(etree.ElementDefaultClassLookup(
    element=lxml.html.HtmlElement, comment=lxml.html.HtmlComment,
    pi=lxml.html.HtmlProcessingInstruction, entity=lxml.html.HtmlEntity))


class CleanError(Exception):
    """A page that yields no usable article."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type

    def __reduce__(self):  # pickled whole: a worker process sends it back (transforms/workers.py)
        return CleanError, (self.error_type, str(self))


def clean_title(title: str | None, site_names: tuple[str, ...]) -> str | None:
    """The headline without a leading or trailing " | Site Name" (any of the
    names the site goes by: its declared name, its domain)."""
    if not title:
        return title
    title = " ".join(title.split())
    separators = list(_TITLE_SEPARATORS.finditer(title))
    names = [fold(name) for name in site_names if name and fold(name)]
    if not separators or not names:
        return title
    site = re.compile("(?:" + "|".join(re.escape(name) for name in names) + ")" + _SITE_NAME_WORDS)

    def is_site(segment: str) -> bool:
        folded = fold(segment)
        return bool(site.fullmatch(folded) or site.fullmatch(folded.replace(" ", "")))

    if is_site(title[separators[-1].end():]):
        return title[:separators[-1].start()]
    if is_site(title[:separators[0].start()]):
        return title[separators[0].end():]
    return title


def choose_published(feed_time: datetime | None, page_date: str | None,
                     fetched_at: datetime, settings: CleanSettings) -> tuple[datetime, str]:
    """Publication time and where it came from.

    The feed gives a time of day; the page its publication day from its own
    markup (`metadata.PAGE_DATE_SEARCH`). When both are plausible and agree within a
    day, the feed's time is kept; when they disagree, the page wins (feeds
    often carry the time of an update or of the feed's build). Dates before
    `earliest_year` or after the fetch (plus slack) are not trusted; with
    neither, the fetch time is used.
    """
    earliest = datetime(settings.earliest_year, 1, 1, tzinfo=UTC)
    latest = fetched_at + timedelta(hours=settings.future_slack_hours)

    def plausible(moment: datetime | None) -> datetime | None:
        return moment if moment is not None and earliest <= moment <= latest else None

    from_feed = plausible(feed_time)
    from_page = None
    if page_date:
        try:
            day = date.fromisoformat(page_date[:10])
            from_page = plausible(datetime(day.year, day.month, day.day, tzinfo=UTC))
        except ValueError:
            from_page = None
    if from_feed and (from_page is None or abs(from_feed.date() - from_page.date()) <= timedelta(days=1)):
        return from_feed, "feed"
    if from_page:
        return from_page, "page"
    return fetched_at, "fetched"


class Cleaner:
    """Turns a Page into an Article (not yet classified); built once per worker."""

    def __init__(self, settings: CleanSettings, families: tuple[ClutterFamily, ...] | None = None):
        self.settings = settings
        self.families = families if families is not None else load_clutter_families()
        self.furniture_words = load_furniture_words()
        self.evidence = LineEvidence(cues=load_cue_words(), boilerplate=load_starting_boilerplate())

    def canonical_url(self, page_url: str, declared: str | None) -> str:
        """rel=canonical when it is http(s), on the page's own site (or the
        page is a local file) and not the site's home page (a template bug
        that would make every article one); otherwise the page URL.
        Canonicalised."""
        if declared and url_problem(declared, allow_file=False) is None \
                and urlsplit(declared).path.strip("/"):
            local = urlsplit(page_url).scheme == "file"
            if local or same_site(declared, page_url):
                return canonicalize_url(declared)
        return canonicalize_url(page_url)

    def clean(self, page: Page) -> Article:
        """The article of one page (site templates are removed later, across pages)."""
        tree = self.parse(page)
        try:
            metadata = page_metadata(tree, page.final_url)
            document = main_text(tree, page.final_url)
        except Exception as error:  # the extractor's failure on one page is that page's reject
            raise CleanError("extract-failed", f"{type(error).__name__}: {str(error)[:200]}") from error
        return self.article(page, tree, metadata, document)

    def clean_or_reject(self, page: Page) -> Article | CleanError:
        """The page's article, or the CleanError that says why there is none:
        an unexpected failure is an `internal-error` (one odd page must not
        stop the run; -v logs its traceback). Returned, not raised, so a
        worker process can send it back."""
        try:
            return self.clean(page)
        except CleanError as error:
            return error
        except Exception as failure:  # noqa: BLE001 - the page's reject, with its reason
            _LOG.info("unexpected error cleaning %s", page.final_url, exc_info=True)
            return CleanError("internal-error", f"{type(failure).__name__}: {str(failure)[:200]}")

    def parse(self, page: Page):
        """The page's HTML tree, parsed once for metadata, extraction and clutter removal."""
        tags = page.body.count(b"<")
        if tags > self.settings.max_tags:  # extraction time and memory grow faster than the tree
            raise CleanError("too-complex", f"about {tags} tags, more than {self.settings.max_tags}")
        try:
            tree = load_html(without_control_references(decode_file(page.body)))
        except Exception as error:
            raise CleanError("extract-failed", f"{type(error).__name__}: {str(error)[:200]}") from error
        if tree is None:
            raise CleanError("no-content", "no HTML in the page")
        return tree

    def article(self, page: Page, tree, metadata: PageMetadata, document) -> Article:
        """The article from the page's metadata and main text: title, clutter
        removed, date, authors. The tree's last user (`byline` prunes it)."""
        if document is None or not document.text:
            raise CleanError("no-content", "no main text found on the page")
        canonical = self.canonical_url(page.final_url, metadata.url)
        source = registered_domain(canonical)
        title = unicodedata.normalize("NFC", clean_title(metadata.title, (
            metadata.sitename, source.split(".")[0])) or page.item.title or "")
        # The page's sections and link texts are looked up for a few short lines
        # of some pages; they are worked out then, before `byline` prunes the tree.
        signals = PageSignals(
            title=title,
            sections=OnFirstUse(lambda: declared_sections(tree, metadata.categories)),
            link_only=OnFirstUse(lambda: link_only_texts(tree, self.settings.link_list_min_share)),
            furniture=OnFirstUse(lambda: FurnitureTexts(tree, self.furniture_words,
                                                        self.settings.structure_max_chars)))
        # NFC: one encoding of each character (Bengali, Vietnamese, ... arrive both ways).
        paragraphs = unicodedata.normalize("NFC", document.text).split("\n")
        cleaned = remove_clutter(paragraphs, signals, self.families, self.settings, self.evidence)
        words = word_count(cleaned.text)
        free = accessible_for_free(tree)
        self.refuse_paywall_stub(document.text, words, free)
        if words < self.settings.min_words:
            raise CleanError("too-short", f"{words} words of text, fewer than "
                                          f"{self.settings.min_words}")
        page_date = metadata.date
        if page_date is None and page.item.published_at is None:  # neither markup nor feed: the text
            page_date = fuller_page_date(tree, metadata.url or page.final_url)
        published_at, date_source = choose_published(
            page.item.published_at, page_date, page.fetched_at, self.settings)
        # Declared authors (page metadata, then the feed's) before a byline
        # guessed from the body, which is also the slowest to find.
        authors = metadata.author or page.item.author or byline(tree) or ""  # the tree's last use
        authors = tuple(name.strip() for name in authors.split(";") if name.strip())
        return Article(
            article_id=url_id(canonical), url=page.item.url, canonical_url=canonical,
            source=source, feed_url=page.item.feed_url,
            title=title, text=cleaned.text, published_at=published_at,
            date_source=date_source, fetched_at=page.fetched_at,
            content_hash=content_hash(cleaned.text), word_count=words, authors=authors,
            section=cleaned.section, clutter_removed=cleaned.removed, item=page.item,
            warc_file=page.warc_file, warc_offset=page.warc_offset, is_accessible_for_free=free)

    def refuse_paywall_stub(self, main_text: str, words: int, free: bool | None) -> None:
        """CleanError("paywalled") for a page too short to be an article (it
        would be a `too-short` reject) that is marked not free or whose main
        text shows a paywall notice: the reject says why. No longer page is
        refused on paywall grounds -- metered sites mark every article not
        free and print a notice on every page -- it is kept, and flagged by
        `is_accessible_for_free`."""
        if words >= self.settings.min_words:
            return
        notice = paywall_notice(main_text)
        if free is False or notice:
            why = f"'{notice}'" if notice else "marked not free (schema.org isAccessibleForFree)"
            raise CleanError("paywalled", f"{words} words of text behind a paywall: {why}")

def load_html(html: str):
    """trafilatura's `load_html` of a decoded page, with `_PARSER`: the
    tree, or None for what is not HTML."""
    beginning = html[:50].lower()
    html = repair_faulty_html(html, beginning)
    try:
        tree = lxml.html.fromstring(html, parser=_PARSER)
    except Exception:  # noqa: BLE001 - e.g. a str with an encoding declaration: tried as bytes
        tree = None
    if tree is None or len(tree) < 1:
        try:
            tree = lxml.html.fromstring(html.encode("utf8", "surrogatepass"), parser=_PARSER)
        except Exception:  # noqa: BLE001 - libxml2 could make nothing of it: no HTML
            return None
    if tree is not None and is_dubious_html(beginning) and len(tree) < 2:
        return None
    return tree


def without_control_references(html: str) -> str:
    """`html` without references to control characters (`_CONTROL_REFERENCES`),
    which would cost the page its text. Works on the text as `load_html`
    decodes it (`decode_file`: compression undone, the encoding guessed), so
    pages in UTF-16 or any other encoding are read as they will be parsed."""
    if "\x00" in html:  # UTF-16 without a byte-order mark passes as UTF-8 with a NUL after
        html = INVALID_XML_CHARS.sub("", html)  # each ASCII character, which load_html drops
    return _CONTROL_REFERENCES.sub("", html) if "&#" in html else html


def main_text(tree, url: str):
    """trafilatura's main text of the page (a Document, or None), with the
    article's lead kept and a second extraction when it missed the article
    (`transforms/recall.py`). The tree stays as it was."""
    return main_text_with_recall(tree, url)


def declared_sections(tree, categories: tuple[str, ...]) -> frozenset[str]:
    """Section and category names the page declares (folded): in its meta
    tags and JSON-LD, else in its category links."""
    names = [meta.get("content", "") for meta in tree.iter("meta")
             if (meta.get("property") or meta.get("name") or "").lower() in _SECTION_META]
    names += categories or category_links(tree)
    return frozenset(filter(None, (fold(name) for name in names)))


class OnFirstUse:
    """A set of strings worked out from the page when first asked about."""

    def __init__(self, work_out):
        self._work_out, self._texts = work_out, None

    def __contains__(self, text: str) -> bool:
        if self._texts is None:
            self._texts, self._work_out = self._work_out(), None
        return text in self._texts


_BLOCKS = frozenset({"p", "li", "dt", "dd", "td", "th", "figcaption", "blockquote", "div"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
# Unlinked blocks this short (list items, table cells, short paragraphs) are
# remembered as prose: the same words linked in a menu are not a link list here.
_SHORT_PROSE = 120


def link_only_texts(tree, min_share: float, max_chars: int = 300) -> frozenset[str]:
    """Folded texts of the page's blocks that are (almost) all link text --
    unless the same text also stands unlinked somewhere (a heading that a
    table of contents links to is still a heading; a list item "Russia" is
    not a link because the menu links "Russia").

    One bottom-up pass counts each element's characters and linked
    characters; only short blocks are read as text.
    """
    sizes: dict = {}
    linked, prose = set(), set()
    for _, element in etree.iterwalk(tree, events=("end",)):
        is_link = element.tag == "a"
        chars = len(element.text or "") if isinstance(element.tag, str) else 0
        anchored = 0
        for child in element:
            child_chars, child_anchored = sizes.pop(child, (0, 0))
            tail = len(child.tail or "")
            chars += child_chars + tail
            anchored += child_anchored + (tail if is_link else 0)
        if is_link:
            anchored = chars
        sizes[element] = (chars, anchored)
        if not 0 < chars <= max_chars:
            continue
        if element.tag in _HEADINGS:
            prose.add(fold(element.text_content()))
        elif element.tag in _BLOCKS:
            if anchored >= min_share * chars:
                linked.add(fold(element.text_content()))
            elif chars <= _SHORT_PROSE and element.tag != "div":
                prose.add(fold(element.text_content()))
    return frozenset(linked - prose)

"""Clean stage: a fetched page becomes article text and metadata.

trafilatura finds the main text and the metadata (title, date, authors,
canonical link). What it keeps from inside the article container — section
labels, view counters, "Related Articles", ad-blocker pleas, promos — is then
removed line by line with the clutter families of `schemas/data/clutter.yaml`.
Every removal is recorded in the article's `clutter_removed` column.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import apache_beam as beam
import tldextract
import trafilatura
from apache_beam.metrics import Metrics

from schemas import load_data
from schemas.records import Article, Page, rejects_for
from schemas.settings import METRICS_NAMESPACE, CleanSettings

from .dedup import canonicalize_url, content_hash, url_id
from .fetch import link_error

_TRAILING_PUNCT = re.compile(r"[\s.:!?»›…|\-–—]+$")
_SENTENCE_PUNCT = re.compile(r"[.!?;:\"“”«»]")
_GLUED_WORDS = re.compile(r"(?<=[a-z])(?=[A-Z][a-z])")
_TITLE_SEPARATORS = re.compile(r"\s+[|–—\-:·•]\s+")


_LOG = logging.getLogger(__name__)


class CleanError(Exception):
    """A page that yields no usable article."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type


@dataclass(frozen=True)
class ClutterFamily:
    name: str
    pattern: re.Pattern
    trailer: bool


def load_clutter_families(text: str | None = None) -> tuple[ClutterFamily, ...]:
    """Compile the clutter families of the YAML data file (or of `text`)."""
    families = load_data("clutter.yaml", text)["families"]
    return tuple(
        ClutterFamily(name, re.compile("^(?:" + "|".join(spec["patterns"]) + ")$",
                                       re.IGNORECASE),
                      bool(spec.get("trailer", False)))
        for name, spec in families.items())


def clutter_family(line: str, families: tuple[ClutterFamily, ...]) -> ClutterFamily | None:
    """The family a whole line belongs to, or None for text."""
    probe = _TRAILING_PUNCT.sub("", line.strip())
    if not probe:
        return None
    return next((family for family in families if family.pattern.match(probe)), None)


def _folded(text: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", text).casefold()).split())


def is_section_label(line: str, max_words: int) -> bool:
    """A short line without sentence punctuation: a breadcrumb or section name."""
    words = re.findall(r"\w+", line)
    return 0 < len(words) <= max_words and not _SENTENCE_PUNCT.search(line)


@dataclass(frozen=True)
class CleanText:
    text: str
    section: str | None
    removed: tuple[str, ...]


def remove_clutter(paragraphs: list[str], title: str | None,
                   families: tuple[ClutterFamily, ...],
                   settings: CleanSettings) -> CleanText:
    """Drop leading labels and the headline, clutter lines and short trailers."""
    lines = [line.strip() for line in paragraphs if line.strip()]
    removed: list[str] = []
    sections: list[str] = []
    folded_title = _folded(title) if title else None
    while len(lines) > 1:
        head = lines[0]
        family = clutter_family(head, families)
        if folded_title and _folded(head) == folded_title:
            removed.append("headline")
        elif family is not None and not family.trailer:
            removed.append(family.name)
        elif is_section_label(head, settings.section_label_max_words):
            sections.append(_GLUED_WORDS.sub(" › ", head))
            removed.append("section")
        else:
            break
        lines.pop(0)

    kept: list[str] = []
    for index, line in enumerate(lines):
        family = clutter_family(line, families)
        if family is None:
            kept.append(line)
            continue
        removed.append(family.name)
        rest = lines[index + 1:]
        if family.trailer and sum(len(part.split()) for part in rest) <= settings.trailer_max_words:
            removed.extend(getattr(clutter_family(part, families), "name", "trailer")
                           for part in rest)
            break
    return CleanText("\n\n".join(kept), " › ".join(sections) or None, tuple(removed))


def clean_title(title: str | None, sitename: str | None) -> str | None:
    """The headline without a trailing or leading " | Site Name"."""
    if not title:
        return title
    title = " ".join(title.split())
    separators = list(_TITLE_SEPARATORS.finditer(title))
    if not sitename or not separators:
        return title
    site = _folded(sitename)
    if _folded(title[separators[-1].end():]) == site:
        return title[:separators[-1].start()]
    if _folded(title[:separators[0].start()]) == site:
        return title[separators[0].end():]
    return title


def choose_published(feed_time: datetime | None, page_date: str | None,
                     fetched_at: datetime, settings: CleanSettings) -> tuple[datetime, str]:
    """Publication time and where it came from: feed (has a time of day),
    else the page's own date, else the fetch time. Dates before
    `settings.earliest_year` or after the fetch (plus slack) are not trusted."""
    earliest = datetime(settings.earliest_year, 1, 1, tzinfo=UTC)
    latest = fetched_at + timedelta(hours=settings.future_slack_hours)

    def _plausible(moment: datetime | None) -> datetime | None:
        return moment if moment is not None and earliest <= moment <= latest else None

    from_feed = _plausible(feed_time)
    if from_feed:
        return from_feed, "feed"
    from_page = None
    if page_date:
        try:
            day = date.fromisoformat(page_date[:10])
            from_page = _plausible(datetime(day.year, day.month, day.day, tzinfo=UTC))
        except ValueError:
            from_page = None
    if from_page:
        return from_page, "page"
    return fetched_at, "fetched"


class Cleaner:
    """Turns a Page into an Article (not yet classified); built once per worker."""

    def __init__(self, settings: CleanSettings, families: tuple[ClutterFamily, ...] | None = None):
        self.settings = settings
        self.families = families if families is not None else load_clutter_families()
        # The bundled Public Suffix List snapshot: no network at start-up.
        self.domains = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    def registered_domain(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme == "file":
            return "local"
        host = (parts.hostname or "").lower()
        extracted = self.domains(host)
        return extracted.top_domain_under_public_suffix or host

    def canonical_url(self, page_url: str, declared: str | None) -> str:
        """rel=canonical when it is http(s) and on the page's own site (or the
        page is a local file); otherwise the page URL. Canonicalised."""
        if declared and link_error(declared, allow_file=False) is None:
            local = urlsplit(page_url).scheme == "file"
            if local or self.registered_domain(declared) == self.registered_domain(page_url):
                return canonicalize_url(declared)
        return canonicalize_url(page_url)

    def clean(self, page: Page) -> Article:
        try:
            document = trafilatura.bare_extraction(
                page.body, url=page.final_url, with_metadata=True, include_comments=False,
                include_tables=True, deduplicate=False)
        except Exception as error:  # the extractor's failure on one page is that page's reject
            raise CleanError("extract-failed", f"{type(error).__name__}: {str(error)[:200]}") from error
        if document is None or not document.text:
            raise CleanError("no-content", "no main text found on the page")
        title = clean_title(document.title, document.sitename) or page.item.title or ""
        cleaned = remove_clutter(document.text.split("\n"), title, self.families, self.settings)
        words = len(cleaned.text.split())
        if words < self.settings.min_words:
            raise CleanError("too-short", f"{words} words of text, fewer than "
                                          f"{self.settings.min_words}")
        published_at, date_source = choose_published(
            page.item.published_at, document.date, page.fetched_at, self.settings)
        canonical = self.canonical_url(page.final_url, document.url)
        authors = tuple(name.strip() for name in (document.author or "").split(";") if name.strip())
        return Article(
            article_id=url_id(canonical), url=page.item.url, canonical_url=canonical,
            source=self.registered_domain(canonical), feed_url=page.item.feed_url,
            title=title, text=cleaned.text, published_at=published_at,
            date_source=date_source, fetched_at=page.fetched_at,
            content_hash=content_hash(cleaned.text), word_count=words, authors=authors,
            section=cleaned.section, clutter_removed=cleaned.removed, item=page.item)


class _CleanPageFn(beam.DoFn):
    def __init__(self, settings: CleanSettings):
        self.settings = settings
        self.cleaned = Metrics.counter(METRICS_NAMESPACE, "clean/ok")

    def setup(self):
        self.cleaner = Cleaner(self.settings)

    def process(self, page: Page):
        try:
            article = self.cleaner.clean(page)
        except Exception as failure:  # one odd page must not stop the run: record it
            error = failure if isinstance(failure, CleanError) else CleanError(
                "internal-error", f"{type(failure).__name__}: {str(failure)[:200]}")
            if not isinstance(failure, CleanError):
                _LOG.info("unexpected error cleaning %s", page.final_url, exc_info=True)  # -v
            Metrics.counter(METRICS_NAMESPACE, f"clean/rejected/{error.error_type}").inc()
            for reject in rejects_for(page.item, "clean", error.error_type, str(error),
                                      page.status, datetime.now(UTC)):
                yield beam.pvalue.TaggedOutput(CleanPages.REJECTS, reject)
            return
        self.cleaned.inc()
        yield article


class CleanPages(beam.PTransform):
    """Page -> Article (text and metadata), with unusable pages on `rejects`."""

    REJECTS = "rejects"

    def __init__(self, settings: CleanSettings):
        super().__init__()
        self.settings = settings

    def expand(self, pages):
        return pages | "Clean" >> beam.ParDo(_CleanPageFn(self.settings)).with_outputs(
            self.REJECTS, main="articles")

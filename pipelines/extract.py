"""`news-ingest extract`: the clean and classify stages on saved pages.

The same Cleaner and Classifier the pipeline's DoFns build, called directly:
no Beam pipeline starts, so one page takes milliseconds, not seconds. Pages
come from files, standard input, or the HTML responses of WARC files
(ISO 28500: what Common Crawl's CC-NEWS, the Internet Archive and every
web-archiving tool write), read with warcio, the format's well-kept library.
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import BinaryIO, TextIO

from schemas.records import FeedItem, Page
from schemas.settings import Settings
from transforms.cleaner import CleanError
from transforms.workers import WorkerPool

from .jobs import StageJobs

HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass(frozen=True)
class SavedPage:
    name: str  # how messages name it: the file, or the archived page's URL
    url: str
    body: bytes
    fetched_at: datetime


@dataclass
class _Unusable:
    """A page or file that could not be read: said in one line, counted as failed."""
    message: str


@dataclass
class _Note:
    """A line to say in its place among the pages (what a WARC file held)."""
    message: str


def page_record(article) -> dict:
    """The JSON object printed for one page."""
    published = (article.published_at.date().isoformat()
                 if article.date_source in ("page", "feed") else None)
    return {
        "url": article.url,
        "canonical_url": article.canonical_url,
        "source": article.source,
        "source_country": article.source_country,
        "is_accessible_for_free": article.is_accessible_for_free,
        "title": article.title,
        "published": published,
        "authors": list(article.authors),
        "section": article.section,
        "language": article.language,
        "actors": list(article.actors),
        "primary_actor": article.primary_actor,
        "mentions": {mention.actor: mention.count for mention in article.mentions},
        "event_types": list(article.event_types),
        "word_count": article.word_count,
        "clutter_removed": list(article.clutter_removed),
        "text": article.text,
    }


def extract_pages(pages: list[str], url: str | None, stdin: BinaryIO,
                  stdout: TextIO, stderr: TextIO, settings: Settings | None = None,
                  warcs: tuple[str, ...] = (), workers: int = 1) -> int:
    """Print one JSON line per page, in order; 1 if any page could not be
    read or cleaned. With `workers` > 1 and at least POOL_MIN_PAGES pages
    (or a WARC file), that many processes clean and classify."""
    settings = settings or Settings()
    saved = chain(_files(pages, url, stdin),
                  *(warc_pages(warc, settings.fetch.max_page_bytes) for warc in warcs))
    pairs = ((page, _as_page(page)) for page in saved)
    with contextlib.ExitStack() as stack:
        if workers > 1 and (warcs or len(pages) >= POOL_MIN_PAGES):
            pool = stack.enter_context(WorkerPool(workers, settings, StageJobs))
            results = pool.ordered("extract", pairs)
        else:
            jobs = StageJobs(settings)
            results = ((page, jobs.extract(record)) for page, record in pairs)
        failed = sum(_show(page, result, stdout, stderr) for page, result in results)
    return 1 if failed else 0


# Fewer pages than this are extracted in this process: workers cost about
# 0.1 s to start (forked, with the jobs built once), a page 20-40 ms of work.
POOL_MIN_PAGES = 8


def _as_page(page: SavedPage | _Unusable | _Note) -> Page | _Unusable | _Note:
    if not isinstance(page, SavedPage):
        return page
    return Page(item=FeedItem(url=page.url, feed_url=""), final_url=page.url, status=200,
                content_type="text/html", body=page.body, fetched_at=page.fetched_at)


def _show(page, result, stdout: TextIO, stderr: TextIO) -> bool:
    """Print the page's JSON line, or its one-line reason; whether it failed."""
    if isinstance(result, _Unusable | _Note):
        print(f"news-ingest: {result.message}", file=stderr)
        return isinstance(result, _Unusable)
    if isinstance(result, CleanError):
        print(f"news-ingest: {page.name}: {result}", file=stderr)
        return True
    print(json.dumps(page_record(result), ensure_ascii=False), file=stdout)
    return False


def _files(names: list[str], url: str | None, stdin: BinaryIO) -> Iterator[SavedPage | _Unusable]:
    for name in names:
        try:
            body = stdin.read() if name == "-" else Path(name).read_bytes()
        except OSError as error:
            yield _Unusable(f"{name}: {error.strerror or error}")
            continue
        page_url = url or (Path(name).resolve().as_uri() if name != "-" else "file:///dev/stdin")
        yield SavedPage(name, page_url, body, datetime.now(UTC))


def warc_pages(path: str, max_bytes: int) -> Iterator[SavedPage | _Unusable | _Note]:
    """The HTML responses (status 200) and HTML resources of a WARC file,
    gzipped or not, in order; other records (requests, metadata, revisits, images) are skipped
    and counted in a last note."""
    from warcio.archiveiterator import ArchiveIterator

    pages = skipped = 0
    try:
        with open(path, "rb") as stream:
            # arc2warc: the older ARC files of the Internet Archive read as WARC records.
            for record in ArchiveIterator(stream, check_digests=True, arc2warc=True):
                if not _html_response(record):
                    skipped += 1
                    continue
                target = record.rec_headers.get_header("WARC-Target-URI") or path
                body = record.content_stream().read(max_bytes + 1)
                missing = getattr(record.raw_stream, "limit", 0)  # bytes the record said it had
                if len(body) > max_bytes:
                    yield _Unusable(f"{target}: larger than {max_bytes} bytes, like a page a run refuses")
                elif missing > 0 or _damaged_block(record):
                    why = f"{missing} bytes missing" if missing > 0 else "its block digest does not match"
                    yield _Unusable(f"{target}: the archived page is damaged ({why})")
                else:
                    pages += 1
                    moment = _warc_date(record.rec_headers.get_header("WARC-Date"))
                    yield SavedPage(target, target, body, moment)
    # warcio meets a damaged record with assorted errors (ArchiveLoadFailed, ValueError,
    # AttributeError on a cut header, zlib's): each is this file's one-line reason.
    except Exception as error:
        reason = getattr(error, "strerror", None) or " ".join(str(error).split())[:200]
        if "non-chunked gzip" in reason:
            reason = ("it is gzipped as one stream, not record by record "
                      "(`warcio recompress FILE NEW.warc.gz` makes it so)")
        yield _Unusable(f"{path}: cannot read it as a WARC file after {pages} page"
                        f"{'' if pages == 1 else 's'}: {reason}")
        return
    yield _Note(f"{path}: {pages} HTML page{'' if pages == 1 else 's'}, {skipped} other "
                f"record{'' if skipped == 1 else 's'} skipped")


def _damaged_block(record) -> bool:
    """Whether the record's block digest fails. Its payload digest is left
    alone: crawlers disagree on whether it covers a chunked body as sent or
    decoded (warcio issues #74, #75), so a mismatch there proves nothing."""
    return any(str(problem).startswith("block digest failed")
               for problem in record.digest_checker.problems)


def _html_response(record) -> bool:
    """A 200 HTML response, or an HTML `resource` record (a page read from a
    file, as news-ingest's own archive keeps those)."""
    if record.rec_type == "resource":
        media = (record.rec_headers.get_header("Content-Type") or "").split(";")[0].strip().lower()
        return media in HTML_TYPES
    if record.rec_type != "response" or record.http_headers is None:
        return False
    media = (record.http_headers.get_header("Content-Type") or "text/html").split(";")[0].strip().lower()
    return record.http_headers.get_statuscode() == "200" and media in HTML_TYPES


def _warc_date(text: str | None) -> datetime:
    try:
        moment = datetime.fromisoformat(text or "")
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

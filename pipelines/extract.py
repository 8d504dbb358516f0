"""`news-ingest extract`: the clean and classify stages on saved pages.

The same Cleaner and Classifier the pipeline's DoFns build, called directly:
no Beam pipeline starts, so one page takes milliseconds, not seconds.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TextIO

from schemas.records import FeedItem, Page
from schemas.settings import Settings
from transforms.cleaner import Cleaner, CleanError
from transforms.tagging import Classifier


def page_record(article) -> dict:
    """The JSON object printed for one page."""
    published = (article.published_at.date().isoformat()
                 if article.date_source in ("page", "feed") else None)
    return {
        "url": article.url,
        "canonical_url": article.canonical_url,
        "source": article.source,
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
                  stdout: TextIO, stderr: TextIO, settings: Settings | None = None) -> int:
    """Print one JSON line per page; 1 if any page could not be read or cleaned."""
    settings = settings or Settings()
    cleaner, classifier = Cleaner(settings.clean), Classifier(settings.classify)
    failed = 0
    for name in pages:
        try:
            body = stdin.read() if name == "-" else Path(name).read_bytes()
        except OSError as error:
            print(f"news-ingest: {name}: {error.strerror or error}", file=stderr)
            failed += 1
            continue
        page_url = url or (Path(name).resolve().as_uri() if name != "-" else "file:///dev/stdin")
        now = datetime.now(UTC)
        page = Page(item=FeedItem(url=page_url, feed_url=""), final_url=page_url, status=200,
                    content_type="text/html", body=body, fetched_at=now)
        try:
            article = classifier.classify(cleaner.clean(page))
        except CleanError as error:
            print(f"news-ingest: {name}: {error}", file=stderr)
            failed += 1
            continue
        print(json.dumps(page_record(article), ensure_ascii=False), file=stdout)
    return 1 if failed else 0

"""pyarrow schemas of the output tables and the record -> row mapping.

The partition columns (`date`, `actor`) live in the folder names
(`date=YYYY-MM-DD/actor=<id>`), not in the files; `primary_actor` keeps the
article's actor inside the file too, so a file read alone is complete.
"""
from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from .records import Article, Duplicate, Reject

_TS = pa.timestamp("us", tz="UTC")

ARTICLES = pa.schema([
    pa.field("article_id", pa.string(), nullable=False),
    pa.field("url", pa.string(), nullable=False),
    pa.field("canonical_url", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("feed_url", pa.string(), nullable=False),
    pa.field("title", pa.string()),
    pa.field("text", pa.string()),
    pa.field("published_at", _TS, nullable=False),
    pa.field("date_source", pa.string(), nullable=False),
    pa.field("fetched_at", _TS, nullable=False),
    pa.field("language", pa.string(), nullable=False),
    pa.field("language_confidence", pa.float32()),
    pa.field("actors", pa.list_(pa.string())),
    pa.field("primary_actor", pa.string(), nullable=False),
    pa.field("event_types", pa.list_(pa.string())),
    pa.field("content_hash", pa.string(), nullable=False),
    pa.field("word_count", pa.int32(), nullable=False),
    pa.field("authors", pa.list_(pa.string())),
    pa.field("section", pa.string()),
    pa.field("clutter_removed", pa.list_(pa.string())),
    pa.field("run_id", pa.string(), nullable=False),
])

MENTIONS = pa.schema([
    pa.field("article_id", pa.string(), nullable=False),
    pa.field("count", pa.int32(), nullable=False),
    pa.field("in_title", pa.bool_(), nullable=False),
    pa.field("is_primary", pa.bool_(), nullable=False),
    pa.field("published_at", _TS, nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
])

DUPLICATES = pa.schema([
    pa.field("article_id", pa.string(), nullable=False),
    pa.field("url", pa.string(), nullable=False),
    pa.field("source", pa.string()),
    pa.field("feed_url", pa.string()),
    pa.field("published_at", _TS),
    pa.field("duplicate_of", pa.string(), nullable=False),
    pa.field("method", pa.string(), nullable=False),
    pa.field("similarity", pa.float32(), nullable=False),
    pa.field("detected_at", _TS, nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
])

REJECTS = pa.schema([
    pa.field("stage", pa.string(), nullable=False),
    pa.field("url", pa.string(), nullable=False),
    pa.field("feed_url", pa.string()),
    pa.field("error_type", pa.string(), nullable=False),
    pa.field("message", pa.string()),
    pa.field("http_status", pa.int32()),
    pa.field("rejected_at", _TS, nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
])

SCHEMAS = {
    "articles": ARTICLES,
    "mentions": MENTIONS,
    "duplicates": DUPLICATES,
    "rejects": REJECTS,
}


def utc_date(moment: datetime) -> str:
    """The UTC calendar day of a timestamp, as the `date=` partition value."""
    return moment.astimezone(UTC).date().isoformat()


def article_row(article: Article, run_id: str) -> dict:
    return {
        "article_id": article.article_id,
        "url": article.url,
        "canonical_url": article.canonical_url,
        "source": article.source,
        "feed_url": article.feed_url,
        "title": article.title,
        "text": article.text,
        "published_at": article.published_at,
        "date_source": article.date_source,
        "fetched_at": article.fetched_at,
        "language": article.language,
        "language_confidence": article.language_confidence,
        "actors": list(article.actors),
        "primary_actor": article.primary_actor,
        "event_types": list(article.event_types),
        "content_hash": article.content_hash,
        "word_count": article.word_count,
        "authors": list(article.authors),
        "section": article.section,
        "clutter_removed": list(article.clutter_removed),
        "run_id": run_id,
    }


def mention_rows(article: Article, run_id: str) -> list[tuple[str, dict]]:
    """(actor, row) per actor the article mentions."""
    return [
        (mention.actor, {
            "article_id": article.article_id,
            "count": mention.count,
            "in_title": mention.in_title,
            "is_primary": mention.actor == article.primary_actor,
            "published_at": article.published_at,
            "run_id": run_id,
        })
        for mention in article.mentions
    ]


def duplicate_row(duplicate: Duplicate, run_id: str) -> dict:
    return {
        "article_id": duplicate.article_id,
        "url": duplicate.url,
        "source": duplicate.source,
        "feed_url": duplicate.feed_url,
        "published_at": duplicate.published_at,
        "duplicate_of": duplicate.duplicate_of,
        "method": duplicate.method,
        "similarity": duplicate.similarity,
        "detected_at": duplicate.detected_at,
        "run_id": run_id,
    }


def reject_row(reject: Reject, run_id: str) -> dict:
    return {
        "stage": reject.stage,
        "url": reject.url,
        "feed_url": reject.feed_url,
        "error_type": reject.error_type,
        "message": reject.message,
        "http_status": reject.http_status,
        "rejected_at": reject.rejected_at,
        "run_id": run_id,
    }

"""pyarrow schemas of the output tables and the record -> row mapping.

The partition columns (`date`, `actor`) live in the folder names
(`date=YYYY-MM-DD/actor=<id>`), not in the files (Spark refuses a column that
is both); read the tables with hive partitioning. `articles` also carries
`primary_actor` and `published_at` inside its files.
"""
from __future__ import annotations

import struct
from datetime import UTC, datetime

import pyarrow as pa

from .records import Article, Mention

# Every timestamp of the dataset: microseconds, UTC.
TIMESTAMP = pa.timestamp("us", tz="UTC")

ARTICLES = pa.schema([
    pa.field("article_id", pa.string(), nullable=False),
    pa.field("url", pa.string(), nullable=False),
    pa.field("canonical_url", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("feed_url", pa.string(), nullable=False),
    pa.field("title", pa.string()),
    pa.field("text", pa.string()),
    pa.field("published_at", TIMESTAMP, nullable=False),
    pa.field("date_source", pa.string(), nullable=False),
    pa.field("fetched_at", TIMESTAMP, nullable=False),
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
    # MinHash signature and stated figures of the text: later runs find near
    # copies of it (and tell a new daily report from a copy of this one).
    pa.field("minhash", pa.list_(pa.uint32())),
    pa.field("numbers", pa.list_(pa.string())),
    # The lines removed as the site's template or cross-source boilerplate,
    # "<kind> <line hash>" (null: written before they were kept).
    pa.field("template_lines", pa.list_(pa.string())),
    # The page as fetched, in the raw archive: DIR/<warc_file>, its response
    # record at byte `warc_offset` (null: not archived).
    pa.field("warc_file", pa.string()),
    pa.field("warc_offset", pa.int64()),
    # What produced the row: news-ingest's version and the rules' fingerprint;
    # when `news-ingest reprocess` last changed it (null: as ingested).
    pa.field("code_version", pa.string()),
    pa.field("reprocessed_at", TIMESTAMP),
    # Where the outlet is based, ISO 3166-1 alpha-2 (schemas/data/outlets.yaml;
    # null: an outlet no file names, or a row of an older version).
    pa.field("source_country", pa.string()),
    # The page's schema.org isAccessibleForFree: false for a paywalled page
    # whose text was served anyway (null: not said, or an older version's row).
    pa.field("is_accessible_for_free", pa.bool_()),
])

MENTIONS = pa.schema([
    pa.field("article_id", pa.string(), nullable=False),
    pa.field("count", pa.int32(), nullable=False),
    pa.field("in_title", pa.bool_(), nullable=False),
    pa.field("is_primary", pa.bool_(), nullable=False),
    pa.field("published_at", TIMESTAMP, nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
])

DUPLICATES = pa.schema([
    pa.field("article_id", pa.string(), nullable=False),
    pa.field("url", pa.string(), nullable=False),
    pa.field("source", pa.string()),
    pa.field("feed_url", pa.string()),
    pa.field("published_at", TIMESTAMP),
    pa.field("duplicate_of", pa.string(), nullable=False),
    pa.field("method", pa.string(), nullable=False),
    pa.field("similarity", pa.float32(), nullable=False),
    pa.field("detected_at", TIMESTAMP, nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
])

REJECTS = pa.schema([
    pa.field("stage", pa.string(), nullable=False),
    pa.field("url", pa.string(), nullable=False),
    pa.field("feed_url", pa.string()),
    pa.field("error_type", pa.string(), nullable=False),
    pa.field("message", pa.string()),
    pa.field("http_status", pa.int32()),
    pa.field("rejected_at", TIMESTAMP, nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
])

# DIR/_state/templates/: per source, the template keys of its recent articles.
TEMPLATE_HISTORY = pa.schema([
    pa.field("source", pa.string(), nullable=False),
    pa.field("article_id", pa.string(), nullable=False),
    pa.field("seen_at", TIMESTAMP, nullable=False),
    pa.field("keys", pa.list_(pa.string()), nullable=False),
])

# DIR/_state/boilerplate/: lines that are the template of several sources.
BOILERPLATE_MEMORY = pa.schema([
    pa.field("line", pa.string(), nullable=False),
    pa.field("sources", pa.list_(pa.string()), nullable=False),
    pa.field("last_seen", TIMESTAMP, nullable=False),
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


def record_row(record, schema: pa.Schema, **values) -> dict:
    """The row of `schema` for a record: `values` where given, else the
    record's field of the same name (so records and schemas cannot drift
    apart silently: a missing field raises)."""
    return {name: values[name] if name in values else getattr(record, name)
            for name in schema.names}


def mention_rows(article: Article, run_id: str) -> list[tuple[str, dict]]:
    """(actor, row) per actor the article mentions."""
    return [
        (mention.actor, record_row(mention, MENTIONS, article_id=article.article_id,
                                   is_primary=mention.actor == article.primary_actor,
                                   published_at=article.published_at, run_id=run_id))
        for mention in article.mentions
    ]


def article_from_row(row: dict, mentions: list[tuple[str, dict]] = ()) -> Article:
    """The record a stored `articles` row (and its `mentions` rows, by actor)
    was written from, as far as the row keeps it: what `reprocess` tags
    again. Columns an older version did not write read as their defaults."""
    names = set(Article.__dataclass_fields__) - {"item", "copies", "signature", "numbers", "mentions"}
    values = {name: row.get(name) for name in names if row.get(name) is not None}
    for name in ("authors", "clutter_removed", "actors", "event_types", "template_lines"):
        values[name] = tuple(row.get(name) or ())
    values["title"] = row.get("title") or ""
    values["text"] = row.get("text") or ""
    return Article(**values, numbers=frozenset(row.get("numbers") or ()),
                   signature=_signature_bytes(row.get("minhash")),
                   mentions=tuple(Mention(actor, int(mention["count"]), bool(mention["in_title"]))
                                  for actor, mention in mentions))


def _signature_bytes(values) -> bytes:
    """A stored MinHash as the record keeps it: little-endian uint32s."""
    values = list(values or ())
    return struct.pack(f"<{len(values)}I", *values)

"""The ingestion graph both pipelines share: from feed items to Parquet.

    items -> DropSeenUrls -> FetchPages -> CleanPages -> DeduplicateArticles
          -> ClassifyArticles -> WriteDataset

`trigger` carries the output folder once per batch run, or once per window
when streaming: earlier runs' fingerprints, signatures and template history
are read from the dataset on each, so a window sees what earlier ones wrote.
"""
from __future__ import annotations

import apache_beam as beam

from schemas.settings import Settings
from transforms.classify import ClassifyArticles
from transforms.clean import CleanPages
from transforms.dedup import DeduplicateArticles, DropSeenUrls, ReadFingerprints, ReadSignatures
from transforms.fetch import FetchPages
from transforms.templates import ReadTemplateHistory, WriteTemplateHistory
from transforms.write import WriteDataset


def ingest(trigger, items, feed_rejects, out_dir: str, run_id: str, settings: Settings) -> dict:
    """Add the graph from `items` (FeedItem) to the dataset; return its PCollections."""
    lookback = settings.dedup.lookback_days
    fingerprints = trigger | "ReadFingerprints" >> ReadFingerprints(lookback)
    signatures = trigger | "ReadSignatures" >> ReadSignatures(lookback)
    history = trigger | "ReadTemplateHistory" >> ReadTemplateHistory()
    new_items = items | "DropSeenUrls" >> DropSeenUrls(fingerprints)
    fetched = new_items | "FetchPages" >> FetchPages(settings.fetch)
    cleaned = fetched.pages | "CleanPages" >> CleanPages(settings.clean, history)
    unique = cleaned["articles"] | "Deduplicate" >> DeduplicateArticles(
        fingerprints, signatures, settings.dedup)
    articles = unique["articles"] | "Classify" >> ClassifyArticles(settings.classify)
    rejects = ((feed_rejects, fetched.rejects, cleaned["rejects"])
               | "AllRejects" >> beam.Flatten())
    outputs = {"articles": articles, "duplicates": unique["duplicates"], "rejects": rejects}
    written = outputs | "Write" >> WriteDataset(out_dir, run_id, settings.write)
    _ = cleaned["history"] | "RememberTemplates" >> WriteTemplateHistory(out_dir, run_id)
    return {**outputs, "written": written}

"""The batch pipeline: poll every feed once, ingest what is new, write.

    feeds -> PollFeeds -> DropSeenUrls -> FetchPages -> CleanPages
          -> DeduplicateArticles -> ClassifyArticles -> WriteDataset

Earlier runs' fingerprints are read from the dataset itself (DropSeenUrls and
DeduplicateArticles use them), so running again writes nothing twice; the
window of recent articles per source that template learning needs is kept
under DIR/_state/templates/.
"""
from __future__ import annotations

import apache_beam as beam

from schemas.settings import Settings
from transforms.classify import ClassifyArticles
from transforms.clean import CleanPages
from transforms.dedup import DeduplicateArticles, DropSeenUrls, ReadFingerprints, ReadSignatures
from transforms.feeds import ListFeeds, PollFeeds, WriteFeedStates
from transforms.fetch import FetchPages
from transforms.templates import ReadTemplateHistory, WriteTemplateHistory
from transforms.write import WriteDataset


def build_pipeline(pipeline: beam.Pipeline, feed_urls: list[str], out_dir: str,
                   run_id: str, settings: Settings) -> dict:
    """Add the ingestion graph to `pipeline`; return its PCollections by name."""
    lookback = settings.dedup.lookback_days
    fingerprints = pipeline | "ReadFingerprints" >> ReadFingerprints(out_dir, lookback)
    signatures = pipeline | "ReadSignatures" >> ReadSignatures(out_dir, lookback)
    history = pipeline | "ReadTemplateHistory" >> ReadTemplateHistory(out_dir)
    feeds = pipeline | "Start" >> beam.Create([out_dir]) | "FeedList" >> ListFeeds(feed_urls)
    polled = feeds | "PollFeeds" >> PollFeeds(settings.fetch, settings.feeds)
    new_items = polled.items | "DropSeenUrls" >> DropSeenUrls(fingerprints)
    fetched = new_items | "FetchPages" >> FetchPages(settings.fetch)
    cleaned = fetched.pages | "CleanPages" >> CleanPages(settings.clean, history)
    unique = cleaned["articles"] | "Deduplicate" >> DeduplicateArticles(
        fingerprints, signatures, settings.dedup)
    articles = unique["articles"] | "Classify" >> ClassifyArticles(settings.classify)
    rejects = ((polled.rejects, fetched.rejects, cleaned["rejects"])
               | "AllRejects" >> beam.Flatten())
    outputs = {"articles": articles, "duplicates": unique["duplicates"], "rejects": rejects}
    written = outputs | "Write" >> WriteDataset(out_dir, run_id, settings.write)
    _ = cleaned["history"] | "RememberTemplates" >> WriteTemplateHistory(out_dir, run_id)
    _ = polled.states | "RememberFeeds" >> WriteFeedStates(out_dir)
    return {**outputs, "written": written}

"""The batch pipeline: poll every feed once, ingest what is new, write.

    start -> ListFeeds -> PollFeeds -> ingest (pipelines/ingest.py)
                                            -> WriteFeedStates, once ingest has written

Earlier runs' fingerprints are looked up in the dataset memory, so running
again writes nothing twice; feed state (validators, back-off) and the
template history live under DIR/_state/.
"""
from __future__ import annotations

import apache_beam as beam

from schemas.settings import Settings
from transforms.feeds import ListFeeds, PollFeeds, WriteFeedStates

from .ingest import ingest


def build_pipeline(pipeline: beam.Pipeline, feed_urls: list[str], out_dir: str,
                   run_id: str, settings: Settings) -> dict:
    """Add the ingestion graph to `pipeline`; return its PCollections by name."""
    start = pipeline | "Start" >> beam.Create([run_id])
    feeds = start | "FeedList" >> ListFeeds(feed_urls, out_dir)
    polled = feeds | "PollFeeds" >> PollFeeds(settings.fetch, settings.feeds, settings.write.archive)
    outputs = ingest(start, polled.items, polled.rejects, out_dir, run_id, settings, polled.bodies)
    _ = polled.states | "RememberFeeds" >> WriteFeedStates(
        out_dir, after=outputs["written"], rejects=outputs["rejects"])
    return outputs

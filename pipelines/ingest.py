"""The ingestion graph both pipelines share: from feed items to Parquet.

    items -> DropSeenUrls -> FetchPages -> CleanPages -> DeduplicateArticles
          -> ClassifyArticles -> PointAtArchive -> WriteDataset
                                 `-> ArchivePages --^ (where each page's records are)

Dedup looks up what earlier runs stored in the dataset memory
(transforms/memory.py), only for this run's own keys, and the write stage
adds this run's to it in the same commit as the tables, with the template
history and boilerplate memory the clean stage learned and the raw archive's
WARC files (unless `settings.write.archive` is off). `trigger` fires once
per batch run, or once per window when streaming: the template history and
boilerplate memory are read on each, so a window sees what earlier ones wrote.
Every reader and writer of the dataset is given `out_dir` when it is built.
"""
from __future__ import annotations

import apache_beam as beam

from schemas.settings import Settings
from transforms.archive import ArchivePages, FeedsWithNewItems, PointAtArchive
from transforms.boilerplate import ReadBoilerplateMemory, WriteBoilerplateMemory
from transforms.classify import ClassifyArticles
from transforms.clean import CleanPages
from transforms.dedup import DeduplicateArticles, DropSeenUrls
from transforms.fetch import FetchPages
from transforms.memory import DatasetMemory, RememberWritten
from transforms.templates import ReadTemplateHistory, WriteTemplateHistory
from transforms.write import WriteDataset


def ingest(trigger, items, feed_rejects, out_dir: str, run_id: str, settings: Settings,
           feed_bodies=None) -> dict:
    """Add the graph from `items` (FeedItem) to the dataset; return its
    PCollections. `feed_bodies`: the feeds read anew, as Pages, for the archive."""
    memory = DatasetMemory(out_dir, settings.memory, settings.dedup)
    history = trigger | "ReadTemplateHistory" >> ReadTemplateHistory(out_dir)
    boilerplate = trigger | "ReadBoilerplateMemory" >> ReadBoilerplateMemory(out_dir)
    new_items = items | "DropSeenUrls" >> DropSeenUrls(memory)
    fetched = new_items | "FetchPages" >> FetchPages(settings.fetch)
    placed, archived = None, ()
    if settings.write.archive:
        feeds = {} if feed_bodies is None else {"feeds": {"bodies": feed_bodies, "items": new_items}
                                                 | "FeedsWithNewItems" >> FeedsWithNewItems()}
        bodies = {"pages": fetched.pages, **feeds}
        placed, files = (bodies
                         | "ArchivePages" >> ArchivePages(out_dir, run_id, settings.write.archive_shards))
        archived = (files,)
    cleaned = fetched.pages | "CleanPages" >> CleanPages(settings.clean, history, boilerplate)
    unique = cleaned["articles"] | "Deduplicate" >> DeduplicateArticles(memory, settings.dedup)
    articles = unique["articles"] | "Classify" >> ClassifyArticles(settings.classify)
    if placed is not None:
        articles = {"articles": articles, "placed": placed} | "PointAtArchive" >> PointAtArchive()
    rejects = ((feed_rejects, fetched.rejects, cleaned["rejects"])
               | "AllRejects" >> beam.Flatten())
    outputs = {"articles": articles, "duplicates": unique["duplicates"], "rejects": rejects}
    templates = cleaned["history"] | "RememberTemplates" >> WriteTemplateHistory(out_dir, run_id)
    learned = ({"stored": boilerplate, "seen": cleaned["sightings"]}
               | "RememberBoilerplate" >> WriteBoilerplateMemory(out_dir, run_id, settings.clean))
    written = outputs | "Write" >> WriteDataset(out_dir, run_id, settings.write,
                                                remember=RememberWritten(memory, run_id),
                                                state_files=(templates, learned, *archived))
    return {**outputs, "written": written}

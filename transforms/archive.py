"""Archive stage: every fetched page, and every feed read anew, as it came,
into the raw archive.

    DIR/raw/date=YYYY-MM-DD/<run>-<shard>.warc.gz     (YYYY-MM-DD: the fetch day)

Each body becomes its WARC records (transforms/warc.py) where it is -- on
the worker processes when they are open --, while the page itself goes on
to the clean stage; only the
compressed records -- a fifth of the page -- are grouped by fetch day and,
by a hash of the URL, into a few shards, and each shard is written as one
file, hidden like the tables' files and published by the same commit, so an
archive file is visible exactly when the rows pointing into it are. Where
each page's records start reaches its article by a join on the link
(PointAtArchive, before the write), for `articles.warc_file`/`warc_offset`:
one page is read back with a seek, no scan. Records are written in link order and their ids
come from what they hold, so a retried write makes the very same file. A
body that cannot be archived costs its archive record only: counted, said
with -v, and the page goes on without a pointer.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import replace
from datetime import UTC, datetime

import apache_beam as beam
from apache_beam.io.filesystems import CompressionTypes, FileSystems

from schemas.layout import archive_file, flush_to_disk, hidden_path, run_time
from schemas.records import Page
from schemas.tables import utc_date

from .metrics import counter
from .pooled import PooledFn
from .warc import NotArchived, file_header, records_or_reason
from .windows import window_run_id

_LOG = logging.getLogger(__name__)

# What an archived body is: a page (flows on to the clean stage) or a feed.
_PAGE, _FEED = "page", "feed"


def shard_key(page: Page, shards: int) -> tuple[str, int]:
    """(fetch day, shard): which archive file a page goes to."""
    return utc_date(page.fetched_at), zlib.crc32(page.final_url.encode("utf-8")) % max(1, shards)


class _RecordsFn(PooledFn):
    """(file key, (kind, link, final URL, compressed records)) of each body,
    made on the worker processes when they are open: gzip and the digests
    are most of what the main process would otherwise spend on a page. A
    body that cannot be archived is counted and said, and yields nothing."""

    def __init__(self, kind: str, shards: int):
        self.kind, self.shards = kind, shards
        self.job = f"archive_{kind}"  # pipelines/jobs.py RunJobs

    def pool_does_mine(self, pool) -> bool:
        return hasattr(pool.jobs, self.job)

    def inline(self, page: Page):
        return records_or_reason(page, entry=self.kind == _PAGE)

    def emit(self, page: Page, records):
        if isinstance(records, NotArchived):
            counter("archive/failed").inc()
            _LOG.warning("%s not archived: %s", page.final_url, records.reason)
            return
        yield shard_key(page, self.shards), (self.kind, page.item.url, page.final_url, records)


def _written_at(run_id: str) -> datetime:
    """When the run that writes a file started (its id says), for the file's
    warcinfo record: a retried write dates it the same."""
    try:
        return run_time(run_id)
    except ValueError:  # an id given by hand (tests): no time in it
        return datetime.fromtimestamp(0, UTC)


class _WriteArchiveFn(beam.DoFn):
    FILES = "files"

    def __init__(self, out_dir: str, run_id: str):
        self.out_dir, self.run_id = out_dir, run_id
        self.archived, self.size = counter("archive/pages"), counter("archive/bytes")  # pages and feeds

    def process(self, grouped, window=beam.DoFn.WindowParam):
        (day, shard), bodies = grouped
        run_id = window_run_id(self.run_id, window)
        name = f"{run_id}-{shard:05d}.warc.gz"
        relative = archive_file(day, name)
        final = FileSystems.join(self.out_dir, relative)
        placed, count = [], 0
        with FileSystems.create(hidden_path(final), compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            header = file_header(name, _written_at(run_id), relative)
            handle.write(header)
            offset = len(header)
            for kind, link, _, records in sorted(bodies, key=lambda body: body[:3]):
                if kind == _PAGE:
                    placed.append((link, (relative, offset)))
                handle.write(records)
                offset += len(records)
                count += 1
        flush_to_disk(hidden_path(final))
        self.archived.inc(count)
        self.size.inc(offset)
        yield beam.pvalue.TaggedOutput(self.FILES, (final, ()))
        yield from placed


def _pointed(joined):
    """An article told where its page's records are (none: it goes on as it is)."""
    _, groups = joined
    places = sorted(groups["placed"])
    for article in groups["articles"]:
        if places:
            article = replace(article, warc_file=places[0][0], warc_offset=places[0][1])
        yield article


class ArchivePages(beam.PTransform):
    """{'pages': Page, 'feeds' (optional): feeds read anew, as Pages} ->
    (where each page's records start: (link, (warc_file, offset)), and
    (hidden file's final path, ()) pairs for the write stage's commit).
    The pages themselves go on to the clean stage untouched: only their
    compressed records are grouped, never their bodies."""

    def __init__(self, out_dir: str, run_id: str, shards: int):
        super().__init__()
        self.out_dir, self.run_id, self.shards = out_dir, run_id, shards

    def expand(self, inputs):
        bodies = [inputs["pages"] | "PageRecords" >> beam.ParDo(_RecordsFn(_PAGE, self.shards))]
        if inputs.get("feeds") is not None:
            bodies.append(inputs["feeds"] | "FeedRecords" >> beam.ParDo(_RecordsFn(_FEED, self.shards)))
        written = (tuple(bodies)
                   | "Bodies" >> beam.Flatten()
                   | "ByFile" >> beam.GroupByKey()
                   | "WriteWarc" >> beam.ParDo(_WriteArchiveFn(self.out_dir, self.run_id)).with_outputs(
                       _WriteArchiveFn.FILES, main="placed"))
        return written.placed, written.files


class PointAtArchive(beam.PTransform):
    """{'articles': Article, 'placed': ArchivePages' places} -> each article
    with `warc_file`/`warc_offset`, matched by the link its page was fetched
    from (`Article.url`)."""

    def expand(self, inputs):
        articles = inputs["articles"] | "ByLink" >> beam.Map(lambda article: (article.url, article))
        return ({"articles": articles, "placed": inputs["placed"]}
                | "Join" >> beam.CoGroupByKey()
                | "Point" >> beam.FlatMap(_pointed))


def _feeds_of(item) -> list[str]:
    return sorted({entry.feed_url for entry in (item, *item.also_listed)})


def _wanted(joined):
    _, groups = joined
    if any(True for _ in groups["new"]):
        yield from groups["bodies"]


class FeedsWithNewItems(beam.PTransform):
    """{'bodies': feeds read anew, as Pages; 'items': the items to fetch} ->
    the bodies of the feeds that brought at least one of them: a feed whose
    `lastBuildDate` alone changed is not archived on every poll."""

    def expand(self, inputs):
        new = inputs["items"] | "FeedsOfItems" >> beam.FlatMap(lambda item: [(url, True) for url in
                                                                             _feeds_of(item)])
        bodies = inputs["bodies"] | "ByFeed" >> beam.Map(lambda body: (body.item.feed_url, body))
        return ({"bodies": bodies, "new": new}
                | "Join" >> beam.CoGroupByKey()
                | "Wanted" >> beam.FlatMap(_wanted))

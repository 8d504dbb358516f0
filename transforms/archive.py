"""Archive stage: every fetched page, and every feed read anew, as it came,
into the raw archive.

    DIR/raw/date=YYYY-MM-DD/<run>-<shard>.warc.gz     (YYYY-MM-DD: the fetch day)

Pages are grouped by fetch day and, by a hash of their URL, into a few
shards; each shard is one WARC file (transforms/warc.py), written hidden
like the tables' files and published by the same commit, so an archive file
is visible exactly when the rows pointing into it are. Each page leaves
with where its records start, which `articles.warc_file`/`warc_offset`
keep: one page is read back with a seek, no scan. A file's name depends
on the run (or window), day and shard only, and its pages are written in
URL order, so a retried write makes the same file again.
"""
from __future__ import annotations

import zlib
from dataclasses import replace

import apache_beam as beam
from apache_beam.io.filesystems import CompressionTypes, FileSystems

from schemas.layout import archive_file, flush_to_disk, hidden_path
from schemas.records import Page
from schemas.tables import utc_date

from .metrics import counter
from .warc import file_header, page_records
from .windows import window_run_id

# What an archived body is: a page (flows on to the clean stage) or a feed.
_PAGE, _FEED = "page", "feed"


def shard_key(page: Page, shards: int) -> tuple[str, int]:
    """(fetch day, shard): which archive file a page goes to."""
    return utc_date(page.fetched_at), zlib.crc32(page.final_url.encode("utf-8")) % max(1, shards)


class _WriteArchiveFn(beam.DoFn):
    FILES = "files"

    def __init__(self, out_dir: str, run_id: str):
        self.out_dir, self.run_id = out_dir, run_id
        self.archived, self.size = counter("archive/pages"), counter("archive/bytes")  # pages and feeds

    def process(self, grouped, window=beam.DoFn.WindowParam):
        (day, shard), kept = grouped
        kept = sorted(kept, key=lambda pair: (pair[0], pair[1].final_url, pair[1].item.url))
        name = f"{window_run_id(self.run_id, window)}-{shard:05d}.warc.gz"
        relative = archive_file(day, name)
        final = FileSystems.join(self.out_dir, relative)
        placed = []
        with FileSystems.create(hidden_path(final), compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            header = file_header(name)
            handle.write(header)
            offset = len(header)
            for kind, page in kept:
                records = page_records(page, entry=kind == _PAGE)
                if kind == _PAGE:
                    placed.append(replace(page, warc_file=relative, warc_offset=offset))
                handle.write(records)
                offset += len(records)
        flush_to_disk(hidden_path(final))
        self.archived.inc(len(kept))
        self.size.inc(offset)
        yield beam.pvalue.TaggedOutput(self.FILES, (final, ()))
        yield from placed


def _keyed(page: Page, kind: str, shards: int):
    return shard_key(page, shards), (kind, page)


class ArchivePages(beam.PTransform):
    """{'pages': Page, 'feeds' (optional): feed bodies as Pages} -> the pages, each told
    where the archive keeps it; `files`: (hidden file's final path, ())
    pairs for the write stage's commit. Feeds are archived, not passed on."""

    def __init__(self, out_dir: str, run_id: str, shards: int):
        super().__init__()
        self.out_dir, self.run_id, self.shards = out_dir, run_id, shards

    def expand(self, inputs):
        keyed = [inputs["pages"] | "KeyPages" >> beam.Map(_keyed, _PAGE, self.shards)]
        if inputs.get("feeds") is not None:
            keyed.append(inputs["feeds"] | "KeyFeeds" >> beam.Map(_keyed, _FEED, self.shards))
        written = (tuple(keyed)
                   | "Together" >> beam.Flatten()
                   | "Group" >> beam.GroupByKey()
                   | "WriteWarc" >> beam.ParDo(_WriteArchiveFn(self.out_dir, self.run_id)).with_outputs(
                       _WriteArchiveFn.FILES, main="pages"))
        return written.pages, written.files

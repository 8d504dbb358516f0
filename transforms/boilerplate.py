"""Boilerplate learned across sources: the stock lines of CMSs and plugins.

"Leave a Reply", "Your email address will not be published", a plugin's
share prompt: such lines are the site template (`transforms/templates.py`)
of many unrelated sources. A site's template is only learned once a few of
its articles have been seen; a line that is already the template of
`cross_source_min_sources` other sources is known boilerplate on a source's
very first article. Syndicated wire text never becomes a source's template
(it would have to stand in most of that source's stories), so it is never
counted here.

Two memories are read:
- the starting one shipped in `schemas/data/boilerplate.txt` (built by
  `scripts/build_boilerplate.py` from the development corpus), loaded by
  `transforms/clutter.py` and applied to every page, `extract` included;
- the dataset's, under DIR/_state/boilerplate/: line hashes and hashed
  source names, bounded in lines and sources per line, rewritten by each
  run with the template lines it learned. A missing or unreadable file
  costs only this evidence (with a warning), never the run.

Either removes a line only when it is short (`cross_source_max_words`).
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from schemas.layout import BOILERPLATE, matching_files, replaced_by, write_parquet
from schemas.records import BoilerplateLine
from schemas.settings import CleanSettings
from schemas.tables import BOILERPLATE_MEMORY, record_row

from .quarantine import require_regular_file
from .windows import window_run_id

_LOG = logging.getLogger(__name__)


def source_hash(source: str) -> str:
    return hashlib.blake2b(source.encode("utf-8"), digest_size=8).hexdigest()


def remember_sightings(stored: list[BoilerplateLine], sightings: Iterable[tuple[str, str]],
                       now: datetime, settings: CleanSettings) -> list[BoilerplateLine]:
    """The memory after this run's (line hash, source hash) template lines:
    each line's newest sources, lines unseen too long forgotten, the most
    widely seen lines kept when there are too many."""
    sources = {row.line: list(row.sources) for row in stored}
    last_seen = {row.line: row.last_seen for row in stored}
    for line, source in sightings:
        known = sources.setdefault(line, [])
        if source in known:
            known.remove(source)
        known.append(source)
        del known[:-settings.cross_source_max_sources]
        last_seen[line] = now
    horizon = now - timedelta(days=settings.template_memory_days)
    rows = [BoilerplateLine(line, tuple(found), last_seen[line])
            for line, found in sources.items() if last_seen[line] >= horizon]
    rows.sort(key=lambda row: (-len(row.sources), -row.last_seen.timestamp(), row.line))
    return sorted(rows[:settings.cross_source_max_lines], key=lambda row: row.line)


def known_boilerplate(rows: Iterable[BoilerplateLine], settings: CleanSettings) -> frozenset[str]:
    """Hashes of the lines that are the template of enough sources."""
    return frozenset(row.line for row in rows if len(row.sources) >= settings.cross_source_min_sources)


def _memory_files(out_dir: str) -> list[str]:
    return matching_files(out_dir, *BOILERPLATE, "lines-*.parquet")


def _read_memory(path: str) -> list[BoilerplateLine]:
    require_regular_file(path)  # a FIFO would block the read forever
    with FileSystems.open(path) as handle:
        rows = pq.read_table(handle).cast(BOILERPLATE_MEMORY).to_pylist()
    return [BoilerplateLine(row["line"], tuple(row["sources"]), row["last_seen"])
            for row in rows if _is_whole(row)]


class _ReadMemoryFn(beam.DoFn):
    """On each trigger, the newest readable memory file; an unreadable one is
    named in a warning and passed over (the next write removes it)."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def process(self, _tick):
        for path in reversed(_memory_files(self.out_dir)):
            try:
                memory = _read_memory(path)
            except Exception as error:  # learned evidence only: clean without this file
                _LOG.warning("the cross-source boilerplate memory %s is unreadable (%s: %s); passed "
                             "over, and this run writes a new one", path, type(error).__name__,
                             str(error)[:200])
                continue
            yield from memory
            return


def _is_whole(row: dict) -> bool:
    """A stored row with every field (a file of another schema fails the cast)."""
    return bool(row["line"]) and row["last_seen"] is not None and None not in (row["sources"] or [None])


class ReadBoilerplateMemory(beam.PTransform):
    """trigger (once per run or window) -> the BoilerplateLine rows earlier
    runs remembered in `out_dir`."""

    def __init__(self, out_dir: str):
        super().__init__()
        self.out_dir = out_dir

    def expand(self, trigger):
        return trigger | "Read" >> beam.ParDo(_ReadMemoryFn(self.out_dir))


class KnownBoilerplate(beam.PTransform):
    """BoilerplateLine rows -> one frozenset of known boilerplate line hashes
    (none when the memory is empty), for use as a side input."""

    def __init__(self, settings: CleanSettings):
        super().__init__()
        self.settings = settings

    def expand(self, rows):
        settings = self.settings
        return (rows
                | "All" >> beam.combiners.ToList().without_defaults()
                | "Known" >> beam.Map(lambda found: known_boilerplate(found, settings)))


class _WriteMemoryFn(beam.DoFn):
    def __init__(self, out_dir: str, run_id: str, settings: CleanSettings):
        self.out_dir, self.run_id, self.settings = out_dir, run_id, settings

    def process(self, tagged, window=beam.DoFn.WindowParam):
        stored = [row for kind, row in tagged if kind == "stored"]
        sightings = [row for kind, row in tagged if kind == "seen"]
        if not sightings:
            return
        rows = remember_sightings(stored, sightings, datetime.now(UTC), self.settings)
        directory = FileSystems.join(self.out_dir, *BOILERPLATE)
        written = write_parquet(directory, f"lines-{window_run_id(self.run_id, window)}.parquet",
                                [record_row(row, BOILERPLATE_MEMORY) for row in rows], BOILERPLATE_MEMORY,
                                publish=False)
        now = datetime.now(UTC)
        yield written, tuple(path for path in _memory_files(self.out_dir) if replaced_by(path, written, now))


class WriteBoilerplateMemory(beam.PTransform):
    """{"stored": BoilerplateLine rows, "seen": (line hash, source hash)}
    -> (hidden file of the memory with this run's template lines, older
    ones it replaces), for the write stage to publish in the run's commit."""

    def __init__(self, out_dir: str, run_id: str, settings: CleanSettings):
        super().__init__()
        self.out_dir, self.run_id, self.settings = out_dir, run_id, settings

    def expand(self, inputs):
        return ((inputs["stored"] | "TagStored" >> beam.Map(lambda row: ("stored", row)),
                 inputs["seen"] | "TagSeen" >> beam.Map(lambda seen: ("seen", seen)))
                | "Both" >> beam.Flatten()
                | "All" >> beam.combiners.ToList().without_defaults()
                | "Write" >> beam.ParDo(_WriteMemoryFn(self.out_dir, self.run_id, self.settings)))

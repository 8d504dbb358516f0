"""`news-ingest reprocess`: a dataset's stored articles tagged -- or cleaned
and tagged -- again with today's gazetteer, event types and code, as one
Beam pipeline (transforms/reprocess.py), so a large dataset reprocesses on
a cluster as `run` ingests on one. Nothing is fetched.

    --what tags   classification again, from the stored text (no archive needed)
    --what text   each page again from the raw archive (DIR/raw/): cleaned, then classified

The caller holds the run lock: no run writes meanwhile. After `text`
changed texts, the dataset memory (text hashes and signatures) is rebuilt
from the tables, so later runs compare new pages with the new texts.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

import apache_beam as beam

from schemas.layout import ACTOR_TABLES, dataset_files, new_run_id
from schemas.settings import Settings
from transforms.boilerplate import ReadBoilerplateMemory
from transforms.memory import MANIFEST, memory_path, read_manifest
from transforms.reprocess import (
    CleanArchivedPages,
    FindCopies,
    JoinStored,
    ReadArchivedPages,
    ReadStoredDays,
    RetagArticles,
    RewriteDays,
    RewriteDuplicates,
)
from transforms.workers import open_pool
from transforms.write import PublishFiles

# The counters of transforms/reprocess.py a summary states (below `reprocess/`).
COUNTED = ("articles", "changed", "text-changed", "moved", "demoted", "duplicates-repointed",
           "days-rewritten", "files-replaced",
           "files-written", "kept/not-archived", "kept/archive-unreadable", "kept/not-an-article",
           "kept/no-new-text", "copies-outside-lookback")


def days_to_reprocess(out_dir: str, since: date | None, until: date | None) -> list[str]:
    """The publication days (YYYY-MM-DD) with stored articles, within the range."""
    days = set()
    for path in dataset_files(out_dir, "articles"):
        part = next((part[5:] for part in path.split("/") if part.startswith("date=")), "")
        try:
            day = date.fromisoformat(part)
        except ValueError:
            continue  # not a day the writer makes: `verify` names it
        if (since is None or day >= since) and (until is None or day <= until):
            days.add(part)
    return sorted(days)


def build_reprocess_pipeline(pipeline: beam.Pipeline, days: list[str], out_dir: str, stem: str,
                             what: str, settings: Settings, now: datetime | None = None,
                             duplicates_files: list[str] | None = None):
    """Add the reprocessing graph to `pipeline`; return the published paths.
    With `duplicates_files` (every file of `duplicates`: --redo-dedup),
    articles that are now copies of another move to `duplicates`."""
    text = what == "text"
    stored = pipeline | "Days" >> beam.Create(days) | "ReadStored" >> ReadStoredDays(out_dir)
    articles = stored.articles
    if text:
        boilerplate = (pipeline | "Start" >> beam.Create([stem])
                       | "ReadBoilerplateMemory" >> ReadBoilerplateMemory(out_dir))
        pages = articles | "ReadArchive" >> ReadArchivedPages(out_dir)
        cleaned = pages | "Clean" >> CleanArchivedPages(settings.clean, boilerplate)
        articles = {"stored": articles, "cleaned": cleaned} | "Join" >> JoinStored()
    retag = RetagArticles(settings.classify, settings.dedup, settings.write, text, now, settings.clean)
    retagged = articles | "Retag" >> retag
    copies, written = None, []
    if duplicates_files is not None:
        copies = retagged.articles | "FindCopies" >> FindCopies(settings.dedup)
        files = pipeline | "DuplicatesFiles" >> beam.Create(duplicates_files)
        written.append({"copies": copies, "files": files}
                       | "RewriteDuplicates" >> RewriteDuplicates(out_dir, stem, settings.write))
    stale = (memory_path(out_dir, MANIFEST),) if text or copies is not None else ()
    written.append({"outcomes": retagged.outcomes, "days": stored.days}
                   | "RewriteDays" >> RewriteDays(out_dir, stem, settings.write, stale, copies))
    return (tuple(written)
            | "AllWritten" >> beam.Flatten()
            | "Commit" >> PublishFiles(out_dir, f"reprocess-{stem}"))


@dataclass
class ReprocessSummary:
    what: str
    days: int
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    memory: str = ""
    lookback_days: int = 0
    workers: int = 1  # processes that cleaned pages (--what text)
    worker_peak_rss_mib: list[float] = field(default_factory=list)

    def count(self, name: str) -> int:
        return self.counts.get(f"reprocess/{name}", 0)

    def actors(self) -> list[tuple[str, int, int]]:
        """(actor, articles naming it before, after) for every actor whose count changed."""
        before, after = Counter(), Counter()
        for name, value in self.counts.items():
            for prefix, into in (("reprocess/before/", before), ("reprocess/after/", after)):
                if name.startswith(prefix):
                    into[name[len(prefix):]] += value
        return sorted(((actor, before[actor], after[actor]) for actor in before.keys() | after.keys()
                       if before[actor] != after[actor]),
                      key=lambda entry: (-abs(entry[2] - entry[1]), entry[0]))

    def line(self) -> str:
        changed = self.count("changed")
        text = f", text of {self.count('text-changed'):,}" if self.what == "text" else ""
        return (f"reprocess {self.what}: {self.count('articles'):,} articles of {self.days:,} days; "
                f"{changed:,} changed{text} ({self.count('moved'):,} to another primary actor), "
                f"{self.count('days-rewritten'):,} days rewritten "
                f"({self.count('files-replaced'):,} files -> {self.count('files-written'):,}) "
                f"in {self.seconds:.1f} s")

    def format(self) -> str:
        lines = [self.line()]
        changes = self.actors()
        if changes:
            lines.append("  actors (articles naming each, before -> after):")
            lines += [f"    {actor} {_change(was, now)}" for actor, was, now in changes]
        elif self.count("articles"):
            lines.append("  no actor's count changed")
        reasons = {"not-archived": "ingested without the raw archive",
                   "archive-unreadable": "their archived page unreadable (-v says which)",
                   "not-an-article": "no longer an article when cleaned again (-v says why)"}
        why = [f"{self.count(f'kept/{name}'):,} {text}" for name, text in reasons.items()
               if self.count(f"kept/{name}")]
        if self.count("kept/no-new-text"):
            kept = self.count("kept/no-new-text")
            lines.append(f"  kept as they were: {kept:,} articles with no new text: " + "; ".join(why))
        if self.count("demoted"):
            lines.append(f"  now copies of another article: {self.count('demoted'):,}, moved to "
                         f"duplicates ({self.count('duplicates-repointed'):,} duplicates rows repointed "
                         "to the one kept)")
        if self.count("copies-outside-lookback"):
            apart = self.count("copies-outside-lookback")
            lines.append(f"  left as articles: {apart:,} copies fetched more than {self.lookback_days} days "
                         "apart from the one kept (the runs' look-back: no run compared them)")
        if self.memory:
            lines.append(f"  {self.memory}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"what": self.what, "days": self.days, "seconds": round(self.seconds, 3),
                **{name.replace("/", "_").replace("-", "_"): self.count(name) for name in COUNTED},
                "actors": {actor: {"before": was, "after": now} for actor, was, now in self.actors()},
                "memory": self.memory or None,
                "workers": {"processes": self.workers,
                            "peak_rss_mib": [round(mib) for mib in self.worker_peak_rss_mib]}}


def _change(was: int, now: int) -> str:
    if not was:
        return f"new {now:,}"
    if not now:
        return f"{was:,} -> gone"
    return f"{was:,} -> {now:,}"


def reprocess(options, out_dir: str, what: str, since: date | None, until: date | None,
              settings: Settings, redo_dedup: bool = False) -> ReprocessSummary:
    """Run the reprocessing pipeline over the days in range (hold the run lock)."""
    from .lock import remove_empty_folders
    from .summary import counters_of

    started = time.monotonic()
    days = days_to_reprocess(out_dir, since, until)
    # The runs' look-back (kept in the memory's manifest): --redo-dedup pairs only articles
    # fetched within it, as runs did, and the memory is rebuilt keeping as many days.
    kept_days = (read_manifest(out_dir) or {}).get("texts_days", settings.dedup.lookback_days)
    settings = replace(settings, dedup=replace(settings.dedup, lookback_days=kept_days))
    summary = ReprocessSummary(what, len(days), lookback_days=kept_days)
    if days:
        pipeline = beam.Pipeline(options=options)
        build_reprocess_pipeline(pipeline, days, out_dir, new_run_id(), what, settings, datetime.now(UTC),
                                 dataset_files(out_dir, "duplicates") if redo_dedup else None)
        result = pipeline.run()
        result.wait_until_finish()
        summary.counts = counters_of(result)
        if (pool := open_pool()) is not None:
            summary.workers, summary.worker_peak_rss_mib = pool.workers, pool.peak_rss_mib()
        if "://" not in out_dir:  # the folders of actors no article has any more
            for table in ACTOR_TABLES:
                remove_empty_folders(Path(out_dir, table))
        if summary.count("text-changed") or summary.count("demoted"):
            summary.memory = _rebuild_memory(out_dir, settings)
    summary.seconds = time.monotonic() - started
    return summary


def _rebuild_memory(out_dir: str, settings: Settings) -> str:
    """The memory made anew from the rewritten tables (whose commit deleted
    its manifest: a run meeting it so rebuilds it first, should this fail)."""
    from .rebuild import rebuild_memory

    later = "the next run rebuilds it (or `news-ingest memory --rebuild`)"
    try:
        built = rebuild_memory(out_dir, settings.memory, settings.dedup)
    except KeyboardInterrupt:
        raise MemoryInterrupted(f"interrupted while rebuilding the dataset memory; the tables are "
                                f"rewritten, and {later}") from None
    except Exception as error:  # noqa: BLE001 -- the tables are rewritten already: say how it ends
        return f"warning: the dataset memory could not be rebuilt ({type(error).__name__}: {error}); {later}"
    return f"dataset memory rebuilt from {built.line()}"


class MemoryInterrupted(Exception):
    """Ctrl-C after the tables were rewritten, while the memory was rebuilt."""

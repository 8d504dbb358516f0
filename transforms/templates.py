"""Site templates, learned per source from the stream itself (part of clean).

A promo box, a standard disclaimer or a newsroom plug that a site puts into
every article is not news, even when no clutter pattern names it. Such lines
repeat across the articles of one source; real sentences do not. So, per
source, the template keys of its recent articles (this run's and those
remembered under DIR/_state/templates/) are counted, and a line whose key
occurs in enough of them (CleanSettings.template_*) is removed from this
run's articles. The window of recent articles is written back for the next
run: a site's template is learned once and stays learned.

The state holds hashes of line keys, never text, and a bounded number of
articles per source.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from schemas.layout import TEMPLATES, matching_files, replaced_by, write_parquet
from schemas.records import Article, SourceHistory, rejects_for
from schemas.settings import CleanSettings
from schemas.tables import TEMPLATE_HISTORY, record_row

from .boilerplate import KnownBoilerplate, source_hash
from .clutter import line_hash
from .metrics import counter
from .quarantine import quarantine, require_regular_file
from .textnorm import content_hash, word_count
from .windows import window_run_id


def article_history(article: Article) -> SourceHistory:
    keys = {line_hash(line) for line in article.text.split("\n\n") if line.strip()}
    return SourceHistory(article.source, article.article_id, article.fetched_at, tuple(sorted(keys)))


def recent_window(rows: list[SourceHistory], size: int) -> list[SourceHistory]:
    """The newest `size` distinct articles of a source, oldest first. An
    article counts once however many URLs carried it (same id, or the same
    lines): a story the site lists three times must not look like its template."""
    seen: set = set()
    window: list[SourceHistory] = []
    for row in sorted(rows, key=lambda row: row.seen_at, reverse=True):
        if row.article_id in seen or row.keys in seen:
            continue
        seen.update((row.article_id, row.keys))
        window.append(row)
        if len(window) == size:
            break
    return window[::-1]


def stories(window: list[SourceHistory], same_story: float) -> list[frozenset[str]]:
    """The window's articles grouped into stories: versions of one story (an
    update, a copy under another URL) share most of their lines. Returns the
    union of line hashes per story."""
    grouped: list[tuple[frozenset[str], set[str]]] = []  # (first version's lines, all lines)
    for row in reversed(window):
        lines = frozenset(row.keys)
        for first, union in grouped:
            if lines and len(lines & first) / len(lines | first) >= same_story:
                union.update(lines)
                break
        else:
            grouped.append((lines, set(lines)))
    return [frozenset(union) for _, union in grouped]


def learn_templates(window: list[SourceHistory], settings: CleanSettings) -> frozenset[str]:
    """Line hashes that are this source's template: in enough of its stories,
    each story counted once however many versions of it the site published."""
    story_lines = stories(window, settings.template_same_story)
    needed = max(settings.template_min_articles,
                 math.ceil(settings.template_min_share * len(story_lines)))
    counts = Counter(key for lines in story_lines for key in lines)
    return frozenset(key for key, count in counts.items() if count >= needed)


def strip_templates(article: Article, templates: frozenset[str], boilerplate: frozenset[str] = frozenset(),
                    max_boilerplate_words: int = 0) -> Article:
    """The article without its source's template lines and without short
    lines known as boilerplate across sources (each removal recorded)."""
    def kind(line: str, key: str) -> str | None:
        if key in templates:
            return "site-template"
        if key in boilerplate and len(line.split()) <= max_boilerplate_words:
            return "cross-source"
        return None

    return _without_lines(article, kind)


def strip_lines_as_stored(article: Article, stored: tuple[str, ...]) -> Article:
    """The article without the lines this step removed from it when it was
    ingested (`Article.template_lines`, "<kind> <line hash>"): `reprocess
    --what text` strips what the site's template was then, not what it is now."""
    kinds = dict(reversed(entry.split(" ", 1)) for entry in stored if " " in entry)
    return _without_lines(article, lambda line, key: kinds.get(key))


def _without_lines(article: Article, kind_of) -> Article:
    """The article without the lines `kind_of(line, hash)` names a kind for,
    each removal recorded (kind in `clutter_removed`, kind and hash in
    `template_lines`)."""
    kept, removed, hashes = [], [], []
    for line in article.text.split("\n\n"):
        key = line_hash(line)
        kind = kind_of(line, key)
        if kind is None:
            kept.append(line)
        else:
            removed.append(kind)
            hashes.append(f"{kind} {key}")
    if not removed:
        return article
    text = "\n\n".join(kept)
    return replace(article, text=text, content_hash=content_hash(text), word_count=word_count(text),
                   clutter_removed=article.clutter_removed + tuple(removed),
                   template_lines=article.template_lines + tuple(hashes))


class _StripTemplatesFn(beam.DoFn):
    """Per source: this run's articles and the remembered window -> articles
    without template lines, and the new window."""

    def __init__(self, settings: CleanSettings):
        self.settings = settings
        self.stripped = counter("clean/site_template_lines")
        self.boilerplate = counter("clean/cross_source_lines")

    def process(self, grouped, known=()):
        source, groups = grouped
        boilerplate = known[0] if known else frozenset()
        articles, past = list(groups["articles"]), list(groups["history"])
        now = datetime.now(UTC)
        window = recent_window(past + [article_history(article) for article in articles],
                               self.settings.template_window)
        # A source silent for months is forgotten.
        if not articles and now - window[-1].seen_at > timedelta(days=self.settings.template_memory_days):
            return
        for row in window:
            yield beam.pvalue.TaggedOutput(LearnSiteTemplates.HISTORY, row)
        templates = learn_templates(window, self.settings) if articles else frozenset()
        seen_as = source_hash(source)
        for line in sorted(templates):
            yield beam.pvalue.TaggedOutput(LearnSiteTemplates.SIGHTINGS, (line, seen_as))
        for article in articles:
            stripped = strip_templates(article, templates, boilerplate, self.settings.cross_source_max_words)
            added = stripped.clutter_removed[len(article.clutter_removed):]
            self.stripped.inc(added.count("site-template"))
            self.boilerplate.inc(added.count("cross-source"))
            if stripped.word_count < self.settings.min_words:
                counter("clean/rejected/template-only").inc()
                for reject in rejects_for(article.item, "clean", "template-only",
                                          "only the site's template or cross-source boilerplate "
                                          "is left", None, now):
                    yield beam.pvalue.TaggedOutput(LearnSiteTemplates.REJECTS, reject)
            else:
                yield stripped


class LearnSiteTemplates(beam.PTransform):
    """Article -> Article without its source's template lines, nor the
    lines known as boilerplate across sources.

    `history` is the remembered window (SourceHistory rows, see
    ReadTemplateHistory); `boilerplate` the cross-source memory's rows
    (ReadBoilerplateMemory), or None. Outputs: articles, `history` (the new
    window, for WriteTemplateHistory), `sightings` ((line hash, source hash)
    of each source's template lines, for WriteBoilerplateMemory) and
    `rejects` (articles that were nothing but template).
    """

    HISTORY = "history"
    SIGHTINGS = "sightings"
    REJECTS = "rejects"

    def __init__(self, history, settings: CleanSettings, boilerplate=None):
        super().__init__()
        self.history, self.settings, self.boilerplate = history, settings, boilerplate

    def expand(self, articles):
        known = () if self.boilerplate is None else (
            beam.pvalue.AsList(self.boilerplate | "KnownBoilerplate" >> KnownBoilerplate(self.settings)),)
        return (
            {"articles": articles | "BySource" >> beam.Map(lambda article: (article.source, article)),
             "history": self.history | "HistoryBySource" >> beam.Map(lambda row: (row.source, row))}
            | "Group" >> beam.CoGroupByKey()
            | "Strip" >> beam.ParDo(_StripTemplatesFn(self.settings), *known).with_outputs(
                self.HISTORY, self.SIGHTINGS, self.REJECTS, main="articles")
        )


def _history_files(out_dir: str) -> list[str]:
    return matching_files(out_dir, *TEMPLATES, "history-*.parquet")


def newest_history_file(out_dir: str) -> str | None:
    """The latest written window (file names sort by run, runs by time)."""
    paths = _history_files(out_dir)
    return paths[-1] if paths else None


class _ReadHistoryFn(beam.DoFn):
    """On each trigger, the newest readable history file's rows; a damaged
    one is quarantined (the sources' templates are then learned again from
    new articles)."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def process(self, _tick):
        out_dir = self.out_dir
        for path in reversed(_history_files(out_dir)):
            try:
                rows = _read_history(path)
            except FileNotFoundError:  # replaced by a newer window's as it was listed: not damage
                continue
            except Exception as error:  # noqa: BLE001 -- any damage: without it, not stopped by it
                quarantine(out_dir, path, error, "the site templates earlier runs learned are "
                                                 "unavailable; they are learned again from new articles")
                continue
            yield from rows
            return


def _read_history(path: str) -> list[SourceHistory]:
    require_regular_file(path)  # a FIFO would block the read forever
    with FileSystems.open(path) as handle:
        rows = pq.read_table(handle, columns=TEMPLATE_HISTORY.names).to_pylist()
    return [SourceHistory(row["source"], row["article_id"], row["seen_at"], tuple(row["keys"]))
            for row in rows]


class ReadTemplateHistory(beam.PTransform):
    """trigger (once per run or window) -> the recent articles per source
    that earlier runs remembered in `out_dir`."""

    def __init__(self, out_dir: str):
        super().__init__()
        self.out_dir = out_dir

    def expand(self, trigger):
        return trigger | "Read" >> beam.ParDo(_ReadHistoryFn(self.out_dir))


class _WriteHistoryFn(beam.DoFn):
    def __init__(self, out_dir: str, run_id: str):
        self.out_dir, self.run_id = out_dir, run_id

    def process(self, rows, window=beam.DoFn.WindowParam):
        rows = sorted(rows, key=lambda row: (row.source, row.seen_at, row.article_id))
        directory = FileSystems.join(self.out_dir, *TEMPLATES)
        written = write_parquet(directory, f"history-{window_run_id(self.run_id, window)}.parquet",
                                [record_row(row, TEMPLATE_HISTORY) for row in rows], TEMPLATE_HISTORY,
                                publish=False)
        now = datetime.now(UTC)
        yield written, tuple(path for path in _history_files(self.out_dir) if replaced_by(path, written, now))


class WriteTemplateHistory(beam.PTransform):
    """The new window -> (hidden history file, older ones it replaces), for
    the write stage to publish in the run's commit: a run that fails
    leaves the remembered window as it was."""

    def __init__(self, out_dir: str, run_id: str):
        super().__init__()
        self.out_dir, self.run_id = out_dir, run_id

    def expand(self, rows):
        return (rows
                | "All" >> beam.combiners.ToList().without_defaults()
                | "Write" >> beam.ParDo(_WriteHistoryFn(self.out_dir, self.run_id)))

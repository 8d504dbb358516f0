"""Reprocess stage: stored articles tagged -- or cleaned and tagged -- again
with today's rules and code; the publication days where anything changed
are written anew.

    days -> ReadStoredDays -> (text: ReadArchivedPages -> CleanArchivedPages -> JoinStored)
         -> RetagArticles -> RewriteDays -> PublishFiles (one commit for all days)

A publication day is the unit of rewriting: an article and its `mentions`
rows all sit under that day's `date=` folders, so a day where an article
changed has all its `articles` and `mentions` files replaced by new ones,
in the one commit that ends the pipeline (transforms/write.py): readers see
the old files or the new ones, and a crash before the commit list leaves
only hidden files, which the next start removes. What identifies a row
stays as stored (`article_id`, URLs, times, `run_id`, the archive
pointer); an article whose primary actor changed is written under its new
`actor=` folder. A row that comes out the same is kept as it was, with its
`code_version`; a changed one gets today's, and `reprocessed_at`.
"""
from __future__ import annotations

import logging
import zlib
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import CompressionTypes, FileSystems

from schemas.layout import RAW, matching_files, partition_folder, safe_partition_value, write_parquet
from schemas.records import Article, Page
from schemas.settings import ClassifySettings, CleanSettings, DedupSettings, WriteSettings
from schemas.tables import DUPLICATES, SCHEMAS, article_from_row, mention_rows, record_row, utc_date

from .boilerplate import KnownBoilerplate
from .clean import CleaningFn
from .cleaner import CleanError
from .dedup import DeduplicateArticles, signed
from .metrics import counter
from .neardup import Signer, signature_values
from .quarantine import DamagedFile, require_regular_file
from .tagging import Classifier
from .templates import (
    article_history,
    learn_templates,
    recent_window,
    strip_lines_as_stored,
    strip_templates,
)
from .warc import ArchiveError, read_page

_LOG = logging.getLogger(__name__)

@dataclass(frozen=True)
class StoredArticle:
    """One stored article: its row, the actor folder it was found in, and its
    mentions rows with theirs."""

    day: str
    actor: str
    row: dict
    mentions: tuple[tuple[str, dict], ...]


@dataclass(frozen=True)
class StoredDay:
    """A day's files, all replaced if anything of the day changes, and the
    mentions rows no article of the day owns (kept as they are)."""

    files: tuple[str, ...]
    unowned: tuple[tuple[str, dict], ...]


@dataclass(frozen=True)
class Outcome:
    """An article's rows after reprocessing, each with its partition."""

    rows: tuple[tuple[tuple[str, str, str], dict], ...]
    changed: bool
    text_changed: bool = False


def _actor_of(path: str) -> str:
    return next((part[6:] for part in path.split("/") if part.startswith("actor=")), "")


def _read_rows(path: str) -> list[dict]:
    require_regular_file(path)  # a FIFO would block the read forever
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            return pq.ParquetFile(handle).read().to_pylist()
    except Exception as error:
        raise OSError(f"{path} cannot be read ({type(error).__name__}); `news-ingest verify --repair` "
                      "sets a damaged file aside") from error


class _ReadDayFn(beam.DoFn):
    DAYS = "days"

    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def process(self, day: str):
        found = {table: matching_files(self.out_dir, table, f"date={day}", "actor=*", "*.parquet")
                 for table in ("articles", "mentions")}
        owned: dict[str, list[tuple[str, dict]]] = defaultdict(list)
        for path in found["mentions"]:
            for row in _read_rows(path):
                owned[row["article_id"]].append((_actor_of(path), row))
        for path in found["articles"]:
            for row in _read_rows(path):
                counter("reprocess/articles").inc()
                mentions = tuple(owned.pop(row["article_id"], ()))
                yield day, StoredArticle(day, _actor_of(path), row, mentions)
        unowned = tuple(mention for mentions in owned.values() for mention in mentions)
        files = tuple(found["articles"] + found["mentions"])
        yield beam.pvalue.TaggedOutput(self.DAYS, (day, StoredDay(files, unowned)))


class ReadStoredDays(beam.PTransform):
    """Publication days (YYYY-MM-DD) -> (day, StoredArticle) per article, and
    on `days` (day, StoredDay)."""

    def __init__(self, out_dir: str):
        super().__init__()
        self.out_dir = out_dir

    def expand(self, days):
        return (days
                | "Spread" >> beam.Reshuffle()
                | "Read" >> beam.ParDo(_ReadDayFn(self.out_dir)).with_outputs(_ReadDayFn.DAYS,
                                                                              main="articles"))


class _ReadPageFn(beam.DoFn):
    """A stored article's page from the raw archive, told which article it is."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def process(self, keyed):
        _, stored = keyed
        warc_file, offset = stored.row.get("warc_file"), stored.row.get("warc_offset")
        if not warc_file or offset is None:
            counter("reprocess/kept/not-archived").inc()
            return
        where = f"{warc_file} at byte {offset}"
        path = FileSystems.join(self.out_dir, warc_file)
        try:
            if not _in_archive(warc_file):
                raise ArchiveError(f"{warc_file} is not a file of DIR/{RAW}/")
            require_regular_file(path)  # a FIFO would block the read forever
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
                handle.seek(offset)
                page = read_page(handle, where)
        except (ArchiveError, DamagedFile, FileNotFoundError, IsADirectoryError) as error:
            # what the archive holds is gone or damaged; other I/O errors fail the bundle, which is retried
            counter("reprocess/kept/archive-unreadable").inc()
            _LOG.warning("article %s kept as it was: %s", stored.row["article_id"], error)
            return
        yield replace(page, warc_file=warc_file, warc_offset=offset)


def _in_archive(warc_file: str) -> bool:
    """A pointer the archive stage could have written: below raw/, no way up."""
    parts = warc_file.split("/")
    return parts[0] == RAW and len(parts) == 3 and ".." not in parts and "\\" not in warc_file


class ReadArchivedPages(beam.PTransform):
    """(day, StoredArticle) -> the Page the archive keeps for it; an article
    without one (ingested without the archive, or its record unreadable) is
    counted and left out: the join keeps it as it was."""

    def __init__(self, out_dir: str):
        super().__init__()
        self.out_dir = out_dir

    def expand(self, stored):
        return stored | "ReadPage" >> beam.ParDo(_ReadPageFn(self.out_dir))


class _CleanPageFn(CleaningFn):
    """A page cleaned on its own (transforms/cleaner.py), on the worker
    processes when they are open; one that no longer yields an article is
    counted, and its stored article kept."""

    def emit(self, page: Page, result):
        if isinstance(result, CleanError):  # or an odd page (internal-error): the stored row stays
            counter("reprocess/kept/not-an-article").inc()
            _LOG.info("%s is no article when cleaned again (%s: %s); kept as stored", page.final_url,
                      result.error_type, result)
            return
        yield result


def fetching_run(article: Article) -> str:
    """The run that fetched an article's page: the stem of its archive file's name."""
    return (article.warc_file or "").rsplit("/", 1)[-1].rsplit("-", 1)[0]


class _TemplatesPerRunFn(beam.DoFn):
    """A source's articles, by the run that fetched them -> the templates in
    force for each run: learned, as that run learned them, from the window
    of the source's articles up to it (not from today's window)."""

    def __init__(self, settings: CleanSettings):
        self.settings = settings

    def process(self, grouped):
        source, rows = grouped
        by_run: dict[str, list] = defaultdict(list)
        for run, row in rows:
            by_run[run].append(row)
        window: list = []
        for run in sorted(by_run, key=lambda run: (max(row.seen_at for row in by_run[run]), run)):
            window = recent_window(window + by_run[run], self.settings.template_window)
            yield (source, run), learn_templates(window, self.settings)


class _StripFn(beam.DoFn):
    def __init__(self, settings: CleanSettings):
        self.settings = settings

    def process(self, joined, known=()):
        _, groups = joined
        templates = next(iter(groups["templates"]), frozenset())
        boilerplate = known[0] if known else frozenset()
        for article in groups["articles"]:
            yield Cleaned(article, strip_templates(article, templates, boilerplate,
                                                   self.settings.cross_source_max_words))


@dataclass(frozen=True)
class Cleaned:
    """A page cleaned again: as the page alone gives it, and without the
    template lines learned again for its run (for rows stored without the
    lines ingestion removed)."""

    alone: Article
    learned: Article


class CleanArchivedPages(beam.PTransform):
    """Page -> Cleaned: cleaned as a run cleans it, and stripped with each
    source's templates learned again as its run knew them (the source's
    articles up to it) and the cross-source boilerplate known today
    (`boilerplate`: ReadBoilerplateMemory's rows). RetagArticles strips a
    stored row's own `template_lines` instead where it has them."""

    def __init__(self, settings: CleanSettings, boilerplate):
        super().__init__()
        self.settings, self.boilerplate = settings, boilerplate

    def expand(self, pages):
        cleaned = pages | "Clean" >> beam.ParDo(_CleanPageFn(self.settings))
        templates = (cleaned
                     | "Keys" >> beam.Map(lambda article: (article.source,
                                                           (fetching_run(article), article_history(article))))
                     | "BySource" >> beam.GroupByKey()
                     | "PerRun" >> beam.ParDo(_TemplatesPerRunFn(self.settings)))
        known = beam.pvalue.AsList(self.boilerplate | "Known" >> KnownBoilerplate(self.settings))
        return ({"articles": cleaned | "ByRun" >> beam.Map(lambda article: ((article.source,
                                                                            fetching_run(article)), article)),
                 "templates": templates}
                | "Together" >> beam.CoGroupByKey()
                | "Strip" >> beam.ParDo(_StripFn(self.settings), known))


def _pair(joined):
    """(url, {stored, cleaned}) -> (day, stored, cleaned article or None)."""
    _, groups = joined
    cleaned = list(groups["cleaned"])
    for day, stored in groups["stored"]:
        yield day, stored, (cleaned[0] if cleaned else None)


class JoinStored(beam.PTransform):
    """{'stored': (day, StoredArticle), 'cleaned': Article} -> (day, stored,
    its cleaned article or None), matched by the feed link the article came
    from (its `url`)."""

    def expand(self, inputs):
        stored = inputs["stored"] | "StoredByUrl" >> beam.Map(lambda kept: (kept[1].row["url"], kept))
        cleaned = inputs["cleaned"] | "CleanedByUrl" >> beam.Map(lambda pair: (pair.alone.url, pair))
        return ({"stored": stored, "cleaned": cleaned}
                | "ByUrl" >> beam.CoGroupByKey()
                | "Pair" >> beam.FlatMap(_pair))


def _compared(article: Article) -> tuple:
    return (article.title, article.text, tuple(article.authors), article.section,
            tuple(article.clutter_removed), article.language, tuple(article.actors), article.primary_actor,
            tuple(article.event_types), frozenset(article.mentions), article.source_country,
            article.is_accessible_for_free)


class _RetagFn(beam.DoFn):
    ARTICLES = "articles"

    def __init__(self, settings: ClassifySettings, dedup: DedupSettings, write: WriteSettings,
                 text: bool, now: datetime, clean: CleanSettings):
        self.settings, self.dedup, self.write, self.text, self.now = settings, dedup, write, text, now
        self.clean = clean

    def setup(self):
        self.classifier = Classifier(self.settings)
        self.signer = Signer(self.dedup)

    def process(self, element):
        day, stored, again = element if self.text else (*element, None)
        before = article_from_row(stored.row, list(stored.mentions))
        cleaned = self._stripped(stored, again) if again is not None else None
        if self.text and cleaned is None:
            counter("reprocess/kept/no-new-text").inc()
            after = before
        else:
            candidate = before if cleaned is None else replace(
                before, title=cleaned.title, text=cleaned.text, content_hash=cleaned.content_hash,
                word_count=cleaned.word_count, authors=cleaned.authors, section=cleaned.section,
                clutter_removed=cleaned.clutter_removed, template_lines=cleaned.template_lines,
                is_accessible_for_free=cleaned.is_accessible_for_free)
            after = self.classifier.classify(candidate)
        for actor in before.actors:
            counter(f"reprocess/before/{actor}").inc()
        for actor in after.actors:
            counter(f"reprocess/after/{actor}").inc()
        yield beam.pvalue.TaggedOutput(self.ARTICLES, after)  # as it now reads, for --redo-dedup
        if _compared(after) == _compared(before):
            yield day, Outcome(self._as_stored(day, stored), changed=False)
            return
        counter("reprocess/changed").inc()
        if after.primary_actor != before.primary_actor:
            counter("reprocess/moved").inc()
        text_changed = self.text and after.text != before.text
        if text_changed:
            counter("reprocess/text-changed").inc()
            after = signed(after, self.signer)
        rows = self._as_changed(day, stored, replace(after, reprocessed_at=self.now))
        yield day, Outcome(rows, changed=True, text_changed=text_changed)

    def _stripped(self, stored: StoredArticle, again: Cleaned) -> Article | None:
        """The text cleaned again without the lines the template step removed at
        ingestion (the row's `template_lines`), or -- for a row stored before
        they were kept -- those learned again; None when too little is left."""
        lines = stored.row.get("template_lines")
        article = again.learned if lines is None else strip_lines_as_stored(again.alone, tuple(lines))
        if article.word_count < self.clean.min_words:
            counter("reprocess/kept/not-an-article").inc()
            return None
        return article

    def _key(self, table: str, day: str, actor: str) -> tuple[str, str, str]:
        return table, day, safe_partition_value(actor, self.write.max_partition_chars)

    def _as_stored(self, day: str, stored: StoredArticle):
        return (((("articles", day, stored.actor), stored.row),)
                + tuple((("mentions", day, actor), row) for actor, row in stored.mentions))

    def _as_changed(self, day: str, stored: StoredArticle, article: Article):
        fresh = {"language": article.language, "language_confidence": article.language_confidence,
                 "actors": list(article.actors), "primary_actor": article.primary_actor,
                 "event_types": list(article.event_types), "code_version": article.code_version,
                 "reprocessed_at": article.reprocessed_at, "source_country": article.source_country}
        if self.text:
            fresh.update(title=article.title, text=article.text, content_hash=article.content_hash,
                         word_count=article.word_count, authors=list(article.authors),
                         section=article.section, clutter_removed=list(article.clutter_removed),
                         template_lines=list(article.template_lines),
                         is_accessible_for_free=article.is_accessible_for_free,
                         minhash=signature_values(article.signature), numbers=sorted(article.numbers))
        row = {**stored.row, **fresh}
        mentions = mention_rows(article, stored.row["run_id"])
        return ((self._key("articles", day, article.primary_actor), row),
                *((self._key("mentions", day, actor), mention) for actor, mention in mentions))


class RetagArticles(beam.PTransform):
    """(day, StoredArticle) -- with `text`, (day, StoredArticle, cleaned
    Article or None) -- -> `outcomes`: (day, Outcome), tagged again with the
    current gazetteer and event types, compared with what is stored; and
    `articles`: each Article as it now reads (for FindCopies)."""

    def __init__(self, settings: ClassifySettings, dedup: DedupSettings, write: WriteSettings, text: bool,
                 now: datetime | None = None, clean: CleanSettings | None = None):
        super().__init__()
        self.settings, self.dedup, self.write, self.text = settings, dedup, write, text
        self.now, self.clean = now or datetime.now(UTC), clean or CleanSettings()

    def expand(self, stored):
        retag = _RetagFn(self.settings, self.dedup, self.write, self.text, self.now, self.clean)
        return stored | "Retag" >> beam.ParDo(retag).with_outputs(_RetagFn.ARTICLES, main="outcomes")


class _RewriteDayFn(beam.DoFn):
    def __init__(self, out_dir: str, stem: str, settings: WriteSettings, stale: tuple[str, ...]):
        self.out_dir, self.stem, self.settings, self.stale = out_dir, stem, settings, stale

    def process(self, grouped, demoted=None):
        day, parts = grouped
        outcomes = [part for kind, part in parts if kind == "article"]
        days = [part for kind, part in parts if kind == "day"]
        copies = {id(outcome) for outcome in outcomes if outcome.rows[0][1]["article_id"] in (demoted or {})}
        if not (copies or any(outcome.changed for outcome in outcomes)) or not days:
            return
        rows: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
        for outcome in outcomes:
            if id(outcome) in copies:  # now a copy of another article: its rows go, a duplicates row comes
                counter("reprocess/demoted").inc()
                for actor in outcome.rows[0][1].get("actors") or ():
                    counter(f"reprocess/after/{actor}").inc(-1)
                continue
            for key, row in outcome.rows:
                rows[key].append(row)
        for actor, row in days[0].unowned:
            rows[("mentions", day, actor)].append(row)
        finals = []
        for (table, _, actor), table_rows in sorted(rows.items()):
            table_rows.sort(key=lambda row: (row["article_id"], str(row.get("run_id"))))
            directory = FileSystems.join(self.out_dir, *partition_folder(table, day, actor))
            limit = self.settings.max_rows_per_file
            finals += [write_parquet(directory, f"reprocessed-{self.stem}-{number:05d}.parquet",
                                     table_rows[start:start + limit], SCHEMAS[table], publish=False)
                       for number, start in enumerate(range(0, len(table_rows), limit))]
        counter("reprocess/days-rewritten").inc()
        counter("reprocess/files-replaced").inc(len(days[0].files))
        counter("reprocess/files-written").inc(len(finals))
        stale = self.stale if copies or any(outcome.text_changed for outcome in outcomes) else ()
        yield finals[0], days[0].files + stale
        for final in finals[1:]:
            yield final, ()


class RewriteDays(beam.PTransform):
    """{'outcomes': (day, Outcome), 'days': (day, StoredDay)} -> (hidden
    file's final path, files it replaces) for every day with a change, for
    PublishFiles to make visible in one commit. `stale`: files that commit
    also deletes once a text changed (the dataset memory's manifest: the
    memory is then rebuilt, by reprocess or by the next run, never left
    describing the old texts). `copies` (FindCopies): articles left out, now
    copies of another."""

    def __init__(self, out_dir: str, stem: str, settings: WriteSettings, stale: tuple[str, ...] = (),
                 copies=None):
        super().__init__()
        self.out_dir, self.stem, self.settings, self.stale = out_dir, stem, settings, tuple(stale)
        self.copies = copies

    def expand(self, inputs):
        outcomes = inputs["outcomes"] | "AsArticle" >> beam.MapTuple(lambda day, it: (day, ("article", it)))
        days = inputs["days"] | "AsDay" >> beam.MapTuple(lambda day, it: (day, ("day", it)))
        return ((outcomes, days)
                | "Together" >> beam.Flatten()
                | "ByDay" >> beam.GroupByKey()
                | "Rewrite" >> beam.ParDo(_RewriteDayFn(self.out_dir, self.stem, self.settings, self.stale),
                                          *_as_dict(self.copies)))



def _as_dict(copies) -> tuple:
    """FindCopies' Duplicates as a side input: article id -> its row."""
    if copies is None:
        return ()
    return (beam.pvalue.AsDict(copies | "CopyById" >> beam.Map(lambda row: (row.article_id, row))),)


class _NothingStored:
    """The dataset memory as FindCopies shows it to dedup: empty, for every
    stored article of the days reprocessed is among the articles compared."""

    @staticmethod
    def key_lookup():
        return beam.FlatMap(_nothing)

    @staticmethod
    def lookalike_lookup():
        return beam.FlatMap(_nothing)


def _nothing(_):
    return ()


def fetched_apart(copy: datetime, kept: datetime, lookback_days: int) -> bool:
    """Whether two articles were fetched further apart than a run looks back
    (`--dedup-days`; 0: no limit), so no run would have compared them."""
    return lookback_days > 0 and abs(copy - kept) > timedelta(days=lookback_days)


class _WithinLookbackFn(beam.DoFn):
    def __init__(self, lookback_days: int):
        self.lookback_days = lookback_days

    def process(self, grouped):
        _, found = grouped
        kept = list(found["kept"])
        for copy, fetched_at in found["copies"]:
            if kept and not fetched_apart(fetched_at, kept[0], self.lookback_days):
                yield copy
            else:
                counter("reprocess/copies-outside-lookback").inc()


class FindCopies(beam.PTransform):
    """Article (every article of the days reprocessed, as it now reads) ->
    a Duplicate for each that is now an exact or near copy of another of
    them, pointing at the one kept (the earliest published, as a run keeps
    within one run). As a run, it pairs only articles fetched at most
    `lookback_days` apart: a story republished a year later stays an article."""

    def __init__(self, settings: DedupSettings):
        super().__init__()
        self.settings = settings

    def expand(self, articles):
        found = articles | "Dedup" >> DeduplicateArticles(_NothingStored(), self.settings)
        copies = found[DeduplicateArticles.DUPLICATES] | "Copies" >> beam.Filter(
            lambda row: row.method in ("exact", "near") and row.duplicate_of not in ("", row.article_id))
        fetched = articles | "FetchedAt" >> beam.Map(lambda article: (article.article_id, article.fetched_at))
        return (
            {"copies": ({"row": copies | "ById" >> beam.Map(lambda row: (row.article_id, row)),
                         "fetched": fetched}
                        | "WithOwnTime" >> beam.CoGroupByKey()
                        | "ByKept" >> beam.FlatMap(_by_kept)),
             "kept": fetched}
            | "WithKeptTime" >> beam.CoGroupByKey()
            | "WithinLookback" >> beam.ParDo(_WithinLookbackFn(self.settings.lookback_days)))


def _by_kept(grouped):
    """(copy id, {row, fetched}) -> (kept id, (row, the copy's fetch time))."""
    _, found = grouped
    fetched = list(found["fetched"])
    for row in found["row"]:
        yield row.duplicate_of, (row, fetched[0])


class _RepointFn(beam.DoFn):
    """A `duplicates` file naming a demoted article as kept -> the same rows
    pointing at the article kept now, as a new file replacing it."""

    def __init__(self, out_dir: str, stem: str):
        self.out_dir, self.stem = out_dir, stem

    def process(self, path: str, copies):
        rows = _read_rows(path)
        if not any(row["duplicate_of"] in copies for row in rows):
            return
        for row in rows:
            if row["duplicate_of"] in copies:
                row["duplicate_of"] = copies[row["duplicate_of"]].duplicate_of
                counter("reprocess/duplicates-repointed").inc()
        directory, _ = FileSystems.split(path)
        name = f"reprocessed-{self.stem}-{zlib.crc32(path.encode('utf-8')):08x}.parquet"
        yield write_parquet(directory, name, rows, SCHEMAS["duplicates"], publish=False), (path,)


class _NewCopiesFn(beam.DoFn):
    def __init__(self, out_dir: str, stem: str, settings: WriteSettings):
        self.out_dir, self.stem, self.settings = out_dir, stem, settings

    def process(self, grouped):
        day, copies = grouped
        rows = sorted((record_row(copy, DUPLICATES, run_id=self.stem) for copy in copies),
                      key=lambda row: row["article_id"])
        directory = FileSystems.join(self.out_dir, *partition_folder("duplicates", day, ""))
        limit = self.settings.max_rows_per_file
        for number, start in enumerate(range(0, len(rows), limit)):
            yield write_parquet(directory, f"reprocessed-{self.stem}-{number:05d}.parquet",
                                rows[start:start + limit], SCHEMAS["duplicates"], publish=False), ()


class RewriteDuplicates(beam.PTransform):
    """{'copies': FindCopies' Duplicates, 'files': every `duplicates` file}
    -> (hidden file's final path, files it replaces): the new copies' rows,
    and the files whose rows pointed at an article now a copy, pointing at
    the one kept instead (no row ever points at an article not stored)."""

    def __init__(self, out_dir: str, stem: str, settings: WriteSettings):
        super().__init__()
        self.out_dir, self.stem, self.settings = out_dir, stem, settings

    def expand(self, inputs):
        copies = inputs["copies"]
        max_chars = self.settings.max_partition_chars
        added = (copies
                 | "ByDay" >> beam.Map(lambda row: (safe_partition_value(
                     utc_date(row.published_at or row.detected_at), max_chars), row))
                 | "Group" >> beam.GroupByKey()
                 | "Write" >> beam.ParDo(_NewCopiesFn(self.out_dir, self.stem, self.settings)))
        repointed = inputs["files"] | "Repoint" >> beam.ParDo(_RepointFn(self.out_dir, self.stem),
                                                              *_as_dict(copies))
        return (added, repointed) | "Both" >> beam.Flatten()

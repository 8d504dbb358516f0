"""`news-ingest report`: what a dataset holds, read with DuckDB.

The dataset's tables are read as hive-partitioned Parquet; --since/--until
select by the `date` partition (publication day; for rejects the day of the
failure). The result is a typed `Report`: headline figures, the daily series
of the top actors, titled tables, and the latest articles for the page's
list; pipelines/report_text.py prints it and pipelines/report_html.py renders
it as a self-contained page.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from schemas import load_data
from schemas.layout import ACTOR_TABLES, STATE, TABLES
from schemas.records import FeedState
from schemas.tables import SCHEMAS
from transforms.feedstate import INTERVAL_BUCKETS, DamagedState, interval_bucket, read_states

TOP_ACTORS = 8
TOP_ROWS = 15
LISTED = 50_000  # articles the page lists: a page of 50,000 stays quick to open and filter
MOST_LISTED = 10_000_000  # the most --list may ask for (a page of that many would not open)
MOST_TOP = 1_000  # the most --top may ask for (a gazetteer has tens of actors)


class ReportError(ValueError):
    """The dataset cannot be reported on (missing, not a dataset, not local)."""


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: list[tuple]
    empty: str = "none"  # said instead of an empty table
    # What the page's article list is filtered by when a cell of each leading
    # column is clicked ("actor", "source", "language"; None: not clickable).
    filters: tuple[str | None, ...] = ()
    # For a cross table: the filter that the headers of the columns after
    # `filters` are values of (their cells filter by row and column at once).
    across: str | None = None


@dataclass(frozen=True)
class ListedArticle:
    """One article of the page's list."""
    title: str | None
    url: str
    source: str
    published_at: datetime | None
    day: date  # the `date` partition: what --since/--until and the page's date filter select
    language: str | None
    actors: tuple[str, ...]
    event_types: tuple[str, ...]


@dataclass
class Report:
    out_dir: str
    since: date | None
    until: date | None
    first_day: date | None
    last_day: date | None
    articles: int
    duplicates: int
    rejects: int
    sources: int
    languages: int
    # Articles mentioning each top actor, per day from first_day to last_day (zeros included).
    days: list[date] = field(default_factory=list)
    series: dict[str, list[int]] = field(default_factory=dict)
    actor_names: dict[str, str] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    # Parquet files outside the writer's layout (copies, stray folders): not read.
    skipped_files: list[str] = field(default_factory=list)
    # Files that cannot be read whole (truncated, damaged): left out, for `verify --repair`.
    damaged_files: list[str] = field(default_factory=list)
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The latest articles in the range, newest first, for the page (not in the JSON).
    listed: list[ListedArticle] = field(default_factory=list)

    @property
    def duplicate_rate(self) -> float:
        """Share of the stories seen that were copies of one already kept."""
        seen = self.articles + self.duplicates
        return self.duplicates / seen if seen else 0.0

    def table(self, title: str) -> Table:
        return next(table for table in self.tables if table.title == title)

    def as_dict(self) -> dict:
        # Rows are the dataset's to give (query it: README, Query the data); not copied only to be dropped.
        data = asdict(replace(self, listed=[]))
        del data["listed"]
        data["generated_at"] = self.generated_at.isoformat()
        data["duplicate_rate"] = round(self.duplicate_rate, 4)
        return json.loads(json.dumps(data, default=str))


def build_report(out_dir: str, since: date | None = None, until: date | None = None,
                 top: int = TOP_ACTORS, listed: int = LISTED) -> Report:
    """Read the dataset at `out_dir` (a local folder) and sum it up, with
    the latest `listed` articles for the page."""
    root = _dataset_root(out_dir)
    with contextlib.chdir(root):  # files by relative path: see _layout_files
        return _build(root, since, until, top, listed)


def _build(root: Path, since: date | None, until: date | None, top: int, listed: int) -> Report:
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")  # times are printed as stored, whatever the machine's zone
    con.execute("set enable_progress_bar = false")
    # Rows are only aggregated: keeping files' row order costs half the time and memory.
    con.execute("set preserve_insertion_order = false")
    files = {table: _layout_files(root, table, since, until) for table in TABLES}
    damaged = [path for table in TABLES for path in _load(con, table, files[table].in_range)]

    def rows(sql: str, *params) -> list[tuple]:
        return con.execute(sql, list(params)).fetchall()

    first_day, last_day = rows("select min(date), max(date) from articles")[0]
    gazetteer = load_data("gazetteer.yaml")["actors"]
    names = {actor["id"]: actor["name"] for actor in gazetteer}
    wikidata = {actor["id"]: actor.get("wikidata", "") for actor in gazetteer}
    articles, sources, languages = rows(
        "select count(*), count(distinct source), count(distinct language) from articles")[0]
    report = Report(
        out_dir=str(root), since=since, until=until, first_day=first_day, last_day=last_day,
        articles=articles, duplicates=rows("select count(*) from duplicates")[0][0],
        rejects=rows("select count(*) from rejects")[0][0], sources=sources, languages=languages,
        actor_names=names,
        skipped_files=sorted(path for table in TABLES for path in files[table].skipped),
        damaged_files=sorted(damaged))
    top_actors = rows("""
        select actor, count(distinct article_id) as articles,
               count(distinct article_id) filter (where is_primary),
               count(distinct article_id) filter (where in_title)
        from mentions group by actor order by articles desc, actor limit ?""", top)
    if top_actors:
        first, last = rows("select min(date), max(date) from mentions")[0]
        report.days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        report.series = {actor: [0] * len(report.days) for actor, *_ in top_actors}
        for actor, day, count in rows("""
                select actor, date, count(distinct article_id) from mentions
                where actor in (select unnest(?)) group by all""", list(report.series)):
            report.series[actor][(day - first).days] = count
    top_ids = [actor for actor, *_ in top_actors]
    sources_table = Table(
        "Sources", ("source", "articles", "copies dropped", "first day", "last day"), rows("""
            with kept as (select source, count(*) as articles, min(date) as first_day,
                                 max(date) as last_day from articles group by source),
                 copies as (select source, count(*) as copies from duplicates group by source)
            select kept.source, kept.articles, coalesce(copies.copies, 0), first_day, last_day
            from kept left join copies using (source)
            order by kept.articles desc, kept.source limit ?""", TOP_ROWS), filters=("source",))
    report.tables = [
        Table("Top actors", ("actor", "name", "articles", "as primary", "in title", "wikidata"),
              [(actor, names.get(actor, ""), *counts, wikidata.get(actor, ""))
               for actor, *counts in top_actors],
              filters=("actor",)),
        _named_together(con, top_ids),
        sources_table,
        _sources_by_actor(con, [row[0] for row in sources_table.rows], top_ids),
        Table("Languages", ("language", "articles", "share"), [
            (language, count, f"{count / articles:.1%}") for language, count in rows(
                "select language, count(*) from articles group by language order by 2 desc, 1")],
              filters=("language",)),
        Table("Duplicates by method", ("method", "copies"), rows(
            "select method, count(*) from duplicates group by method order by 2 desc, 1")),
        Table("Largest syndication clusters", ("copies", "sources", "title", "kept from"),
              _clusters(con, files["articles"].every),
              empty="no story was published by more than one source"),
        Table("Rejects by stage and error type", ("stage", "error type", "rejects", "urls", "last (UTC)"),
              rows("""
            select stage, error_type, count(*), count(distinct url),
                   strftime(max(rejected_at), '%Y-%m-%d %H:%M')
            from rejects group by all order by 3 desc, 1, 2""")),
        _feed_health(root),
        _feeds_by_interval(root),
    ]
    report.listed = _latest(con, listed)
    return report


def check_writable(path: str) -> None:
    """ReportError unless `path` can be written (checked before anything is)."""
    target = Path(path)
    if target.is_dir():
        raise ReportError(f"cannot write the report to {target}: it is a folder")
    folder = target.resolve().parent
    if not folder.is_dir():
        raise ReportError(f"cannot write the report to {target}: no folder {folder}")
    if not os.access(folder if not target.exists() else target, os.W_OK):
        raise ReportError(f"cannot write the report to {target}: not writable")


def write_text(path: str, text: str) -> None:
    """Write a regular file atomically (aside, then renamed, so a reader never
    sees half a page); anything else -- a link, a device, a pipe -- in place."""
    target = Path(path)
    if target.is_symlink() or (target.exists() and not target.is_file()):
        with target.open("w", encoding="utf-8") as handle:
            handle.write(text)
        return
    partial = target.with_name(f".{target.name}.inprogress")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _dataset_root(out_dir: str) -> Path:
    if "://" in out_dir:
        raise ReportError(f"report reads a local dataset; copy {out_dir} to a local folder first "
                          "(e.g. gsutil -m cp -r), or query it in place with DuckDB's httpfs")
    root = Path(out_dir).resolve()
    if root.exists() and not root.is_dir():
        raise ReportError(f"--out {root} is a file, not a dataset folder")
    if not root.is_dir():
        raise ReportError(f"no dataset at {root}: nothing was written there yet "
                          f"(news-ingest run --out {out_dir} writes one)")
    if not any((root / name).is_dir() for name in (*TABLES, STATE)):
        raise ReportError(f"{root} is not a news-ingest dataset (it has no articles/, rejects/ "
                          "or _state/ folder)")
    return root


# The columns the report reads: each table is read once, into memory, with
# only these (the text of articles is most of a dataset's bytes).
COLUMNS = {"articles": ("article_id", "source", "language", "title", "url", "published_at", "actors",
                         "event_types"),
           "mentions": ("article_id", "is_primary", "in_title"),
           "duplicates": ("duplicate_of", "source", "method"),
           "rejects": ("stage", "error_type", "url", "rejected_at")}
# The folders the writer makes (schemas/layout.py) and what their values may be.
PARTITIONS = {table: ("date", "actor") if table in ACTOR_TABLES else ("date",) for table in TABLES}
_PARTITION_TYPES = {"date": pa.date32(), "actor": pa.string()}
_ACTOR_VALUE = re.compile(r"[a-z0-9._-]+")
_FILE_NAME = re.compile(r"[A-Za-z0-9._-]+\.parquet")  # nothing DuckDB would take for a pattern


@dataclass(frozen=True)
class _Files:
    in_range: list[str]  # the table's files in --since/--until
    every: list[str]  # all of its files
    skipped: list[str]  # Parquet files outside the writer's layout: copies, stray folders


def _layout_files(root: Path, table: str, since: date | None, until: date | None) -> _Files:
    """The table's files in the writer's layout, relative to the dataset
    folder: DuckDB, reading them from there, neither globs the dataset's own
    path (which may hold `*` or `[`) nor takes a `key=value` parent folder for
    a partition. Days outside the range are not opened at all."""
    names = PARTITIONS[table]
    in_range, every, skipped = [], [], []
    for path in sorted((root / table).rglob("*.parquet")):
        parts = path.relative_to(root / table).parts
        if parts[-1].startswith((".", "_")):  # hidden: a run still writing, or not ours
            continue
        if not path.is_file():  # a FIFO or a device would block the read forever
            skipped.append(str(path))
            continue
        values = dict(part.partition("=")[::2] for part in parts[:-1])
        day = _day(values.get("date", ""))
        if (len(parts) != len(names) + 1 or tuple(values) != names or day is None
                or not _ACTOR_VALUE.fullmatch(values.get("actor", "none"))
                or not _FILE_NAME.fullmatch(parts[-1])):
            skipped.append(str(path))
            continue
        relative = str(path.relative_to(root))
        every.append(relative)
        if (since is None or day >= since) and (until is None or day <= until):
            in_range.append(relative)
    return _Files(in_range, every, skipped)


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def _load(con, table: str, files: list[str]) -> list[str]:
    """The table's report columns and partition values from `files` (paths
    relative to the dataset, the working folder) into an in-memory table.
    Returns the files left out because they cannot be read whole."""
    try:
        _load_files(con, table, files)
        return []
    except ReportError:
        damaged = [path for path in files if not _readable(path)]
        if not damaged:
            raise
    _load_files(con, table, [path for path in files if path not in set(damaged)])
    return damaged


def _readable(path: str) -> bool:
    """Whether every row group of a Parquet file decodes (only asked once a read failed)."""
    try:
        pq.ParquetFile(path).read()
    except (pa.ArrowException, OSError, EOFError, ValueError):
        return False
    return True


def _load_files(con, table: str, files: list[str]) -> None:
    partitions = {name: str(_PARTITION_TYPES[name]).upper().replace("DATE32[DAY]", "DATE")
                  for name in PARTITIONS[table]}
    wanted = COLUMNS[table] + PARTITIONS[table]
    # The table's columns, typed as the schema says, with no rows: what an
    # empty table is, and what gives a column no file has its type.
    con.register(f"{table}_none", pa.schema(
        [SCHEMAS[table].field(name) for name in COLUMNS[table]]
        + [(name, _PARTITION_TYPES[name]) for name in PARTITIONS[table]]).empty_table())
    if not files:
        con.execute(f"create table {table} as select * from {table}_none")
        return
    options = f"hive_partitioning=true, hive_types={partitions!r}"
    types = dict(con.execute(f"select column_name, column_type from (describe {table}_none)").fetchall())

    def load(reading: str, present) -> None:
        # Each column as the schema types it: a value of a file's other type converts, or is null.
        columns = ", ".join(f"try_cast({name} as {types[name]}) as {name}"
                            for name in wanted if name in present)
        con.execute(f"create table {table} as select * from {table}_none union all by name "
                    f"select {columns} from {reading}", [files])

    try:
        try:
            load(f"read_parquet(?, {options})", wanted)
        except (duckdb.BinderException, duckdb.InvalidInputException):
            # Files from before a column existed (or a damaged one, which fails here
            # too): match columns by name, nulls where a file lacks one (slower, so
            # not always).
            every = f"read_parquet(?, {options}, union_by_name=true)"
            present = {row[0] for row in con.execute(f"describe select * from {every}", [files]).fetchall()}
            load(every, present)
    except duckdb.Error as error:
        message = " ".join(str(error).split())[:300]
        raise ReportError(f"cannot read {table} of {Path.cwd()}: {message}") from error


def _named_together(con, actors: list[str]) -> Table:
    """How many articles name both actors of each pair of the top actors (the
    diagonal: the actor at all)."""
    together = dict(((a, b), n) for a, b, n in con.execute("""
        with top as (select * from mentions where actor in (select unnest(?)))
        select one.actor, other.actor, count(distinct article_id)
        from top as one join top as other using (article_id) group by all""", [actors]).fetchall())
    return Table("Actors named together", ("actor", *actors),
                 [(one, *(together.get((one, other), 0) for other in actors)) for one in actors],
                 filters=("actor",), across="with")


def _sources_by_actor(con, sources: list[str], actors: list[str]) -> Table:
    """Articles of each top source naming each top actor."""
    counts = dict(((source, actor), n) for source, actor, n in con.execute("""
        select articles.source, mentions.actor, count(distinct article_id)
        from articles join mentions using (article_id)
        where articles.source in (select unnest(?)) and mentions.actor in (select unnest(?))
        group by all""",
        [sources, actors]).fetchall())
    articles = dict(con.execute("select source, count(*) from articles where source in (select unnest(?)) "
                                "group by source", [sources]).fetchall())
    return Table("Sources by actor", ("source", "articles", *actors),
                 [(source, articles.get(source, 0), *(counts.get((source, actor), 0) for actor in actors))
                  for source in sources],
                 filters=("source", None), across="actor")


def _latest(con, limit: int) -> list[ListedArticle]:
    """The latest `limit` articles, newest first (by publication day, then time)."""
    found = con.execute("""
        select title, url, source, published_at, date, language,
               coalesce(actors, []), coalesce(event_types, [])
        from articles order by date desc, published_at desc nulls last, article_id limit ?""",
                        [limit]).fetchall()
    return [ListedArticle(title, url, source, published_at, day, language, tuple(actors), tuple(events))
            for title, url, source, published_at, day, language, actors, events in found]


def _clusters(con, article_files: list[str], limit: int = 10) -> list[tuple]:
    """The stories with the most `exact` or `near` copies: copies, the
    copies' sources, and the title and source of the copy kept (looked up
    in the whole dataset when it was published outside the range)."""
    largest = con.execute("""
        select duplicate_of, count(*) as copies, string_agg(distinct source, ', ' order by source)
        from duplicates where method in ('exact', 'near')
        group by duplicate_of order by copies desc, duplicate_of limit ?""", [limit]).fetchall()
    ids = [row[0] for row in largest]
    lookup = "select article_id, title, source from {} where article_id in (select unnest(?))"
    kept = {article_id: (title, source)
            for article_id, title, source in con.execute(lookup.format("articles"), [ids]).fetchall()}
    missing = [article_id for article_id in ids if article_id not in kept]
    if missing and article_files:
        with contextlib.suppress(duckdb.Error):  # titles are a nicety: a file that fails leaves them out
            kept |= {article_id: (title, source) for article_id, title, source in con.execute(
                lookup.format("read_parquet(?)"), [article_files, missing]).fetchall()}
    return [(copies, sources, *kept.get(article_id, (None, None)))
            for article_id, copies, sources in largest]


def _feed_health(root: Path) -> Table:
    """Feeds whose last poll failed, or that are disabled, from the feed state."""
    columns = ("feed", "last status", "failures in a row", "disabled", "next poll (UTC)", "last error")
    try:
        states = read_states(str(root))
    except DamagedState as error:
        return Table("Feeds failing or disabled", columns, [], empty=f"feed state unreadable: {error}")
    rows = [(state.url, state.last_status, state.failures, "DISABLED" if state.disabled else "",
             state.next_poll_at.strftime("%Y-%m-%d %H:%M") if state.next_poll_at else "",
             (state.last_error or "")[:120])
            for state in states.values() if state.failures or state.disabled]
    rows.sort(key=lambda row: (row[3] == "", -row[2], row[0]))
    healthy = len(states) - len(rows)
    return Table("Feeds failing or disabled", columns, rows,
                 empty=f"none: all {healthy} feeds answered on their last poll" if states
                 else "no feed state yet")


def _feeds_by_interval(root: Path) -> Table:
    """Feeds by the wait until their next poll (adaptive polling), with why, from the feed state."""
    columns = ("next poll within", "feeds", "for example", "why")
    try:
        states = read_states(str(root))
    except DamagedState as error:
        return Table("Feeds by polling interval", columns, [], empty=f"feed state unreadable: {error}")
    buckets: dict[str, list[FeedState]] = {}
    for state in sorted(states.values(), key=lambda state: state.url):
        if not state.failures:  # a failing feed waits for its back-off (the table above)
            buckets.setdefault(interval_bucket(state), []).append(state)
    order = [label for _, label in INTERVAL_BUCKETS] + ["longer", "every-run"]
    rows = [(label, len(buckets[label]), buckets[label][0].url, buckets[label][0].interval_reason or "")
            for label in order if label in buckets]
    return Table("Feeds by polling interval", columns, rows, empty="no feed state yet")

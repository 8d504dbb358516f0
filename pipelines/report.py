"""`news-ingest report`: what a dataset holds, read with DuckDB.

The dataset's tables are read as hive-partitioned Parquet; --since/--until
select by the `date` partition (publication day; for rejects the day of the
failure). The result is a typed `Report`: headline figures, the daily series
of the top actors, and titled tables, printed as text here and rendered as
a self-contained page by pipelines/report_html.py.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb

from schemas import load_data
from transforms.feedstate import DamagedState, read_states

TABLES = ("articles", "mentions", "duplicates", "rejects")
TOP_ACTORS = 8
TOP_ROWS = 15
TEXT_DAYS = 14  # days of the daily table printed as text (the chart has all)
TEXT_CELL = 80  # characters of a cell printed as text (the page has all)


class ReportError(ValueError):
    """The dataset cannot be reported on (missing, not a dataset, not local)."""


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: list[tuple]
    empty: str = "none"  # said instead of an empty table


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

    @property
    def duplicate_rate(self) -> float:
        """Share of the stories seen that were copies of one already kept."""
        seen = self.articles + self.duplicates
        return self.duplicates / seen if seen else 0.0

    def table(self, title: str) -> Table:
        return next(table for table in self.tables if table.title == title)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["duplicate_rate"] = round(self.duplicate_rate, 4)
        return json.loads(json.dumps(data, default=str))

    def format(self) -> str:
        span = f"{self.first_day} to {self.last_day}" if self.first_day else "no articles"
        wanted = (f"; asked for {self.since or 'the start'} to {self.until or 'the end'}"
                  if self.since or self.until else "")
        lines = [f"news-ingest report: {self.out_dir}  ({span}{wanted})",
                 f"  articles {self.articles} from {_plural(self.sources, 'source')} in "
                 f"{_plural(self.languages, 'language')}; "
                 f"duplicates {self.duplicates} ({self.duplicate_rate:.1%} of stories seen); "
                 f"rejects {self.rejects}"]
        if self.series:
            lines += ["", *_text_table(_daily_table(self, TEXT_DAYS))]
        for table in self.tables:
            lines += ["", *_text_table(table)]
        return "\n".join(lines)


def build_report(out_dir: str, since: date | None = None, until: date | None = None,
                 top: int = TOP_ACTORS) -> Report:
    """Read the dataset at `out_dir` (a local folder) and sum it up."""
    root = _dataset_root(out_dir)
    con = duckdb.connect()
    present = {table for table in TABLES if _register(con, root, table, since, until)}
    count = _counter(con, present)
    first_day, last_day = (con.execute("select min(date), max(date) from articles").fetchone()
                           if "articles" in present else (None, None))
    names = {actor["id"]: actor["name"] for actor in load_data("gazetteer.yaml")["actors"]}
    report = Report(
        out_dir=str(root), since=since, until=until, first_day=first_day, last_day=last_day,
        articles=count("select count(*) from articles", "articles"),
        duplicates=count("select count(*) from duplicates", "duplicates"),
        rejects=count("select count(*) from rejects", "rejects"),
        sources=count("select count(distinct source) from articles", "articles"),
        languages=count("select count(distinct language) from articles", "articles"),
        actor_names=names)
    query = _querier(con, present)
    top_actors = query("articles", "mentions", sql="""
        select m.actor, count(distinct m.article_id) as articles,
               count(distinct m.article_id) filter (where m.is_primary) as primary_in,
               count(distinct m.article_id) filter (where m.in_title) as in_title
        from mentions m group by m.actor order by articles desc, m.actor limit ?""", params=[top])
    if top_actors and first_day is not None:
        report.days = [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]
        daily = query("mentions", sql="""
            select actor, date, count(distinct article_id) from mentions
            where actor in (select unnest(?)) group by all""", params=[[row[0] for row in top_actors]])
        index = {day: n for n, day in enumerate(report.days)}
        report.series = {actor: [0] * len(report.days) for actor, *_ in top_actors}
        for actor, day, articles in daily:
            report.series[actor][index[day]] = articles
    report.tables = [
        Table("Top actors", ("actor", "name", "articles", "as primary", "in title"),
              [(actor, names.get(actor, ""), *counts) for actor, *counts in top_actors]),
        Table("Sources", ("source", "articles", "copies dropped", "first day", "last day"), query(
            "articles", sql="""
            with kept as (select source, count(*) as articles, min(date) as first_day,
                                 max(date) as last_day from articles group by source),
                 copies as (select source, count(*) as copies from duplicates group by source)
            select kept.source, kept.articles, coalesce(copies.copies, 0), first_day, last_day
            from kept left join copies using (source)
            order by kept.articles desc, kept.source limit ?""", params=[TOP_ROWS],
            when_missing={"duplicates": "select null as source, 0 as copies where false"})),
        Table("Languages", ("language", "articles", "share"), [
            (language, articles, f"{articles / report.articles:.1%}") for language, articles in query(
                "articles", sql="select language, count(*) from articles group by language "
                                "order by 2 desc, 1")]),
        Table("Duplicates by method", ("method", "copies"), query(
            "duplicates", sql="select method, count(*) from duplicates group by method order by 2 desc, 1")),
        Table("Largest syndication clusters", ("copies", "sources", "title", "kept from"),
              _clusters(con, query), empty="no story was published by more than one source"),
        Table("Rejects by stage and error type", ("stage", "error type", "rejects", "urls", "last"), query(
            "rejects", sql="""
            select stage, error_type, count(*), count(distinct url),
                   strftime(max(rejected_at), '%Y-%m-%d %H:%M')
            from rejects group by all order by 3 desc, 1, 2""")),
        _feed_health(root),
    ]
    return report


def write_json(report: Report, path: str) -> None:
    _write_atomically(Path(path), json.dumps(report.as_dict(), indent=2))


def write_html(report: Report, path: str) -> None:
    from .report_html import render

    _write_atomically(Path(path), render(report))


def _dataset_root(out_dir: str) -> Path:
    if "://" in out_dir:
        raise ReportError(f"report reads a local dataset; copy {out_dir} to a local folder first "
                          "(e.g. gsutil -m cp -r), or query it in place with DuckDB's httpfs")
    root = Path(out_dir).resolve()
    if not root.is_dir():
        raise ReportError(f"no dataset at {root}: nothing was written there yet "
                          f"(news-ingest run --out {out_dir} writes one)")
    if not any((root / name).is_dir() for name in (*TABLES, "_state")):
        raise ReportError(f"{root} is not a news-ingest dataset (it has no articles/, rejects/ "
                          "or _state/ folder)")
    return root


# The columns the report reads: each table is read once, into memory, with
# only these (the text of articles is most of a dataset's bytes).
COLUMNS = {"articles": "article_id, source, language, date",
            "mentions": "article_id, actor, is_primary, in_title, date",
            "duplicates": "duplicate_of, source, method, date",
            "rejects": "stage, error_type, url, rejected_at, date"}


def _register(con, root: Path, table: str, since: date | None, until: date | None) -> bool:
    """The table's rows in the date range, as a table of the connection;
    False if it has no visible files. `all_articles` is a view of every
    article, for the titles of syndicated stories kept outside the range."""
    files = sorted(str(path) for path in (root / table).rglob("*.parquet")
                   if not path.name.startswith("."))
    if not files:
        return False
    relation = con.read_parquet(files, hive_partitioning=True)
    if table == "articles":
        relation.create_view("all_articles")
    bounds = [f"date >= '{since.isoformat()}'"] if since else []
    bounds += [f"date <= '{until.isoformat()}'"] if until else []
    (relation.filter(" and ".join(bounds)) if bounds else relation).project(COLUMNS[table]).create(table)
    return True


def _counter(con, present: set[str]):
    def count(sql: str, table: str) -> int:
        return con.execute(sql).fetchone()[0] if table in present else 0
    return count


def _querier(con, present: set[str]):
    """Rows of `sql`, or none when a table it needs has no files. Tables it
    can do without get the stand-in given in `when_missing`."""
    def query(*needs: str, sql: str, params=None, when_missing: dict[str, str] | None = None) -> list[tuple]:
        if not set(needs) <= present:
            return []
        for table, stand_in in (when_missing or {}).items():
            if table.removeprefix("all_") not in present:
                con.execute(f"create or replace temp view {table} as {stand_in}")
        return con.execute(sql, params or []).fetchall()
    return query


def _clusters(con, query, limit: int = 10) -> list[tuple]:
    """The stories with the most `exact` or `near` copies: copies, the
    copies' sources, and the title and source of the copy kept."""
    largest = query("duplicates", sql="""
        select duplicate_of, count(*) as copies, string_agg(distinct source, ', ' order by source)
        from duplicates where method in ('exact', 'near')
        group by duplicate_of order by copies desc, duplicate_of limit ?""", params=[limit])
    if not largest:
        return []
    kept = dict.fromkeys((row[0] for row in largest), (None, None))
    if con.execute("select count(*) from duckdb_views() where view_name = 'all_articles'").fetchone()[0]:
        kept |= {article_id: (title, source) for article_id, title, source in con.execute(
            "select article_id, title, source from all_articles where article_id in (select unnest(?))",
            [list(kept)]).fetchall()}
    return [(copies, sources, *kept[article_id]) for article_id, copies, sources in largest]


def _feed_health(root: Path) -> Table:
    """Feeds whose last poll failed, or that are disabled, from the feed state."""
    columns = ("feed", "last status", "failures in a row", "disabled", "next poll", "last error")
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


def _daily_table(report: Report, last_days: int) -> Table:
    """The latest days that have articles, one column per top actor."""
    actors = list(report.series)
    busy = [n for n in range(len(report.days)) if any(report.series[actor][n] for actor in actors)]
    rows = [(report.days[n].isoformat(), *(report.series[actor][n] for actor in actors))
            for n in busy[-last_days:]]
    return Table(f"Articles per day mentioning the top actors (latest {len(rows)} days with any)",
                 ("date", *actors), rows)


def _text_table(table: Table) -> list[str]:
    if not table.rows:
        return [table.title, f"  {table.empty}"]
    cells = [[_cell(value)[:TEXT_CELL] for value in row] for row in table.rows]
    widths = [max(len(column), *(len(row[n]) for row in cells)) for n, column in enumerate(table.columns)]
    numeric = [all(isinstance(row[n], int | float) for row in table.rows) for n in range(len(widths))]

    def line(values) -> str:
        return "  " + "  ".join(value.rjust(width) if right else value.ljust(width)
                                for value, width, right in zip(values, widths, numeric, strict=True)).rstrip()
    return [table.title, line(table.columns), *(line(row) for row in cells)]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _cell(value) -> str:
    if value is None:
        return ""
    return str(value)  # dates as YYYY-MM-DD


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.inprogress")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)

"""The report as text and as JSON; the HTML page is report_html.py's.

The model (pipelines/report.py) only reads and sums the dataset; these
renderings decide what a terminal shows: the latest days only, cells cut
short, control characters a feed smuggled in made harmless.
"""
from __future__ import annotations

import json
import shlex

from .report import Report, Table

TEXT_DAYS = 14  # days of the daily table printed as text (the chart has all)
TEXT_CELL = 80  # characters of a cell printed as text (the page has all)


def render(report: Report) -> str:
    """The report as the text `news-ingest report` prints."""
    span = f"{report.first_day} to {report.last_day}" if report.first_day else "no articles"
    wanted = (f"; asked for {report.since or 'the start'} to {report.until or 'the end'}"
              if report.since or report.until else "")
    lines = [f"news-ingest report: {report.out_dir}  ({span}{wanted})",
             f"  articles {report.articles} from {_plural(report.sources, 'source')} in "
             f"{_plural(report.languages, 'language')}; "
             f"duplicates {report.duplicates} ({report.duplicate_rate:.1%} of stories seen); "
             f"rejects {report.rejects}"]
    if report.skipped_files:
        lines.append(f"  left out {_plural(len(report.skipped_files), 'file')} outside the dataset's "
                     f"folders, e.g. {_cell(report.skipped_files[0])}")
    if report.damaged_files:
        folder = _cell(shlex.quote(report.out_dir))
        lines.append(f"  left out {_plural(len(report.damaged_files), 'damaged file')}, e.g. "
                     f"{_cell(report.damaged_files[0])}: `news-ingest verify --out {folder} "
                     f"--repair` sets them aside (keeping what can be read of articles and "
                     f"duplicates)")
    if report.series:
        lines += ["", *_text_table(_daily_table(report, TEXT_DAYS))]
    for table in report.tables:
        lines += ["", *_text_table(table)]
    return "\n".join(lines)


def json_text(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2)


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
    """A value as table text: dates as YYYY-MM-DD; control characters (a
    feed's newline or terminal escape) as spaces, so they cannot reach the terminal."""
    if value is None:
        return ""
    return "".join(char if char.isprintable() else " " for char in str(value))

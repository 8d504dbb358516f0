"""The report as one self-contained HTML page: the figures, a chart of
articles per day for the top actors, the latest articles as a list to filter,
and the report's tables, whose actors, sources and languages filter the list.

Plotly (a well-kept charting library) draws the chart; its JavaScript, the
list's (report_page.js) and the style (report_page.css) are inlined, so the
page needs no network to be viewed, mailed or archived. The figure and the
listed articles are kept as JSON (`<script id="chart-data">`,
`<script id="articles-data">`), which a reader or a test can take out
without running the page.
"""
from __future__ import annotations

import html
import json
from importlib.resources import files

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from .report import Report, Table

CHART_ID = "articles-per-day"
PROSE = 40  # characters of a cell beyond which its column is let wrap
_ASSETS = files(__package__)


def render(report: Report) -> str:
    """The whole page."""
    title = f"news-ingest report: {report.out_dir}"
    span = (f"{report.first_day} to {report.last_day}" if report.first_day
            else "no articles in this range")
    asked = (f" (asked for {report.since or 'the start'} to {report.until or 'the end'})"
             if report.since or report.until else "")
    clickable_chart = bool(report.listed and report.series)
    generated = f"Generated {report.generated_at:%Y-%m-%d %H:%M} UTC from {report.out_dir}. "
    figures = [(_noun("article", report.articles), report.articles),
               (_noun("source", report.sources), report.sources),
               (_noun("language", report.languages), report.languages),
               (_noun("duplicate", report.duplicates), report.duplicates),
               ("duplicate rate", f"{report.duplicate_rate:.1%}"),
               (_noun("reject", report.rejects), report.rejects)]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_text(title)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{_asset('report_page.css')}</style>",
        "</head><body>",
        f"<h1>{_text(title)}</h1>",
        f'<p class="meta">{_text(generated + span + asked)}</p>',
        *([f'<p class="meta">Left out {len(report.skipped_files)} Parquet files outside the dataset\'s '
           f"folders, e.g. {_text(report.skipped_files[0])}</p>"] if report.skipped_files else []),
        *([f'<p class="meta">Left out {len(report.damaged_files)} damaged files, e.g. '
           f"{_text(report.damaged_files[0])}: <code>news-ingest verify --repair</code> sets them "
           f"aside (keeping what can be read of articles and duplicates)</p>"]
          if report.damaged_files else []),
        '<ul class="figures">' + "".join(f"<li><b>{_text(value)}</b>{_text(name)}</li>"
                                         for name, value in figures) + "</ul>",
        f"<h2>Articles mentioning each top actor, per {bar_period(len(report.days))[1]}</h2>",
        '<p class="meta">An article naming two actors counts for both, so a bar can be taller than '
        f"the articles of its period.{' Click a bar to list its articles.' if clickable_chart else ''}</p>",
        _chart(report),
        _listing(report),
        *(_table(table, clickable=bool(report.listed)) for table in report.tables),
        f'<script type="application/json" id="articles-data">{_script_json(listing_data(report))}</script>',
        f"<script>{_asset('report_page.js')}</script>",
        "</body></html>",
    ]
    return "\n".join(parts)


def listing_data(report: Report) -> dict:
    """The listed articles as compact rows: [title, url, source, published
    (UTC, to the minute), language, actors, event types], where sources,
    languages, actors and event types are positions in lists given once."""
    positions: dict[str, dict[str, int]] = {"sources": {}, "languages": {}, "actors": {}, "events": {}}

    def at(kind: str, value: str | None) -> int | None:
        return None if value is None else positions[kind].setdefault(value, len(positions[kind]))

    rows = [[article.title, article.url, at("sources", article.source),
             f"{article.published_at:%Y-%m-%d %H:%M}" if article.published_at else article.day.isoformat(),
             at("languages", article.language), [at("actors", actor) for actor in article.actors],
             [at("events", event) for event in article.event_types]]
            for article in report.listed]
    return {**{kind: list(values) for kind, values in positions.items()},
            "names": {actor: report.actor_names[actor] for actor in positions["actors"]
                      if actor in report.actor_names},
            "total": report.articles, "partial": bool(report.damaged_files), "rows": rows}


def _listing(report: Report) -> str:
    heading = '<h2 id="articles-list">Articles</h2>'
    if not report.listed:
        said = "No article in this range." if not report.articles else "Not listed (--list 0)."
        return f'{heading}\n<p class="empty">{said}</p>'
    shown = len(report.listed)
    scope = (f"All {shown:,} articles in this range, newest first." if shown == report.articles else
             f"The newest {shown:,} of the {report.articles:,} articles in this range "
             "(<code>--list N</code>, <code>--since</code> and <code>--until</code> choose others).")
    choices = "".join(f'<label>{label}<select name="{name}"><option value="">any</option></select></label>'
                      for name, label in (("actor", "actor"), ("with", "and actor"), ("source", "source"),
                                          ("language", "language"), ("event", "event type")))
    columns = "".join(f"<th>{name}</th>" for name in
                      ("title", "source", "published (UTC)", "language", "actors", "event types"))
    return "\n".join([
        heading,
        f'<p class="meta">{scope} Titles search without regard to case or accents; every filter '
        "is kept in the address, so a view can be bookmarked.</p>",
        f'<form id="filters">{choices}'
        '<label>from<input type="date" name="from"></label><label>to<input type="date" name="to"></label>'
        '<label>title has<input type="search" name="q" placeholder="words"></label>'
        '<button type="reset">show all</button></form>',
        '<p id="articles-status" aria-live="polite"></p>',
        f'<div class="scroll"><table id="articles"><thead><tr>{columns}</tr></thead><tbody></tbody>'
        "</table></div>",
        '<nav id="pager" hidden><button type="button" data-page="previous">previous</button><output></output>'
        '<button type="button" data-page="next">next</button></nav>',
    ])


def figure(report: Report) -> go.Figure:
    """Stacked bars of the top actors' articles (an article naming two
    actors counts for both). The traces hold the daily counts; the browser
    sums them into bars of a day, a week or a month, by the span shown:
    a day's bar over three years is too thin to see."""
    days = [day.isoformat() for day in report.days]
    period, label = bar_period(len(days))
    traces = [go.Histogram(x=days, y=counts, name=actor, histfunc="sum", xbins={"size": period},
                           hovertemplate=f"{html.escape(report.actor_names.get(actor, actor))}"
                                         f"<br>{label} of %{{x}}: %{{y}} articles<extra></extra>")
              for actor, counts in report.series.items()]
    total = sum(sum(counts) for counts in report.series.values())  # no stacked bar is higher
    return go.Figure(traces, layout={
        "barmode": "stack", "bargap": 0.15, "hovermode": "closest", "template": "plotly_white",
        "margin": {"l": 50, "r": 20, "t": 30, "b": 40},
        "xaxis": {"type": "date", "rangeslider": {"visible": len(days) > 60}},
        # Whole articles only: small counts would otherwise get ticks at 0.2, 0.4, ...
        "yaxis": {"title": {"text": f"articles mentioning the actor, per {label}"}, "rangemode": "tozero",
                  **({"dtick": 1} if total <= 10 else {})}})


def bar_period(days: int) -> tuple[str | int, str]:
    """Plotly's bin size (milliseconds, or "M1" for calendar months) and its name."""
    if days <= 92:
        return 86_400_000, "day"
    if days <= 2 * 366:
        return 7 * 86_400_000, "week"
    return "M1", "month"


def _chart(report: Report) -> str:
    if not report.series:
        return '<p class="empty">No article in this range mentions an actor: nothing to chart.</p>'
    return "\n".join([
        f'<div id="{CHART_ID}"></div>',
        f'<script type="application/json" id="chart-data">{_script_json(figure(report).to_json())}</script>',
        f"<script>{get_plotlyjs()}</script>",
        "<script>const figure = JSON.parse(document.getElementById('chart-data').textContent);"
        # A phone has no room beside the bars for the legend: it goes above them.
        "if (innerWidth < 700) Object.assign(figure.layout, {legend: {orientation: 'h', x: 0, y: 1, "
        "yanchor: 'bottom'}, margin: {l: 40, r: 10, t: 90, b: 30}});"
        f"Plotly.newPlot('{CHART_ID}', figure.data, figure.layout, "
        "{responsive: true, displaylogo: false});</script>",
    ])


def _table(table: Table, clickable: bool = True) -> str:
    """A table; with an article list on the page, cells of its filter
    columns, and of its cross columns, are buttons that filter it."""
    heading = f"<h2>{_text(table.title)}</h2>"
    if not table.rows:
        return f'{heading}\n<p class="empty">{_text(table.empty)}</p>'
    numeric = [all(isinstance(row[n], int | float) for row in table.rows) for n in range(len(table.columns))]
    # Columns of sentences (names, titles, errors) wrap; the others stay on one line each.
    prose = [any(len(str(row[n])) > PROSE for row in table.rows) for n in range(len(table.columns))]
    keys = len(table.filters)
    # Shades compare the cells across; a diagonal (an actor with itself) would pale them all.
    crossed = [value for row in table.rows for n, value in enumerate(row[keys:], keys)
               if row[0] != table.columns[n]] if table.across else []
    most = max(crossed, default=0) or 1
    head = "".join(f'<th{" class=n" if right else ""}>{_text(column)}</th>'
                   for column, right in zip(table.columns, numeric, strict=True))

    def cell(row: tuple, n: int) -> str:
        value = row[n]
        if n < keys:
            choice = {table.filters[n]: value} if table.filters[n] else {}
        elif table.across:
            choice = {name: row[k] for k, name in enumerate(table.filters) if name}
            choice[table.across] = table.columns[n]
        else:
            choice = {}
        classes = ["n"] if numeric[n] else ["prose"] if prose[n] else []
        style = ""
        if n >= keys and table.across:
            if not value:
                classes.append("zero")
            else:
                style = f' style="background: rgba(11, 92, 173, {0.06 + 0.34 * min(1, value / most):.2f})"'
        shown = _text(value)
        if clickable and choice and value not in (None, "", 0):
            shown = (f'<button type="button" class="pick" data-filter="{_text(json.dumps(choice))}">'
                     f"{shown}</button>")
        attributes = f' class="{" ".join(classes)}"' if classes else ""
        return f"<td{attributes}{style}>{shown}</td>"

    body = "".join("<tr>" + "".join(cell(row, n) for n in range(len(row))) + "</tr>" for row in table.rows)
    return (f'{heading}\n<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


def _script_json(data: dict | str) -> str:
    """JSON safe inside a script element: no `<` at all, so neither `</script`
    nor `<!--` in a feed's title can end or bend it (`<` only occurs in strings)."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c")


def _noun(noun: str, count: int) -> str:
    return noun if count == 1 else f"{noun}s"


def _text(value) -> str:
    return "" if value is None else html.escape(str(value))


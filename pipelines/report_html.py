"""The report as one self-contained HTML page: a chart of articles per day
for the top actors, and the report's tables.

Plotly (a well-kept charting library) draws the chart; its JavaScript is
inlined, so the page needs no network to be viewed, mailed or archived.
The figure itself is kept as JSON in `<script id="chart-data">`, which a
reader (or a test) can take out without running the page.
"""
from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from .report import Report, Table

CHART_ID = "articles-per-day"

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem;
       color: #1d2327; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.figures { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; padding: 0; }
.figures li { list-style: none; background: #f3f5f7; border-radius: 6px; padding: .5rem .9rem; }
.figures b { display: block; font-size: 1.3rem; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { padding: .25rem .7rem; border-bottom: 1px solid #e1e4e8; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.empty, .meta { color: #586069; }
#articles-per-day { height: 430px; }
"""


def render(report: Report) -> str:
    """The whole page."""
    title = f"news-ingest report: {report.out_dir}"
    span = (f"{report.first_day} to {report.last_day}" if report.first_day
            else "no articles in this range")
    asked = (f" (asked for {report.since or 'the start'} to {report.until or 'the end'})"
             if report.since or report.until else "")
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
        f"<style>{_STYLE}</style>",
        "</head><body>",
        f"<h1>{_text(title)}</h1>",
        f'<p class="meta">{_text(span + asked)}</p>',
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
        "the articles of its period.</p>",
        _chart(report),
        *(_table(table) for table in report.tables),
        "</body></html>",
    ]
    return "\n".join(parts)


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
    data = figure(report).to_json().replace("</", "<\\/")  # safe inside a script element
    return "\n".join([
        f'<div id="{CHART_ID}"></div>',
        f'<script type="application/json" id="chart-data">{data}</script>',
        f"<script>{get_plotlyjs()}</script>",
        "<script>const figure = JSON.parse(document.getElementById('chart-data').textContent);"
        f"Plotly.newPlot('{CHART_ID}', figure.data, figure.layout, "
        "{responsive: true, displaylogo: false});</script>",
    ])


def _table(table: Table) -> str:
    heading = f"<h2>{_text(table.title)}</h2>"
    if not table.rows:
        return f'{heading}\n<p class="empty">{_text(table.empty)}</p>'
    numeric = [all(isinstance(row[n], int | float) for row in table.rows) for n in range(len(table.columns))]
    head = "".join(f"<th>{_text(column)}</th>" for column in table.columns)
    body = "".join("<tr>" + "".join(f'<td{" class=n" if right else ""}>{_text(value)}</td>'
                                    for value, right in zip(row, numeric, strict=True)) + "</tr>"
                   for row in table.rows)
    return f"{heading}\n<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _noun(noun: str, count: int) -> str:
    return noun if count == 1 else f"{noun}s"


def _text(value) -> str:
    return "" if value is None else html.escape(str(value))


"""How long `news-ingest report` takes, and how its page behaves, from a
handful of articles to a dataset years deep.

For each size: writes a synthetic dataset with the project's schemas (one
run a day, a file per day and actor as the writer lays them out), then, in
this process: the whole report (every query, the text, the page), and the
baseline -- DuckDB, as a user would call it, loading the columns the report
reads from every table: its unavoidable input. Prints seconds, peak RSS after
each (the report's first, as it runs first), the ratio and the page's size.
Where Playwright and Chromium are installed (`make test-browser`), also opens
the page: seconds until the article list shows, against the same page with
no list (`--list 0`), and seconds for a filter and a title search to redraw it.

    .venv/bin/python bench/bench_report.py --articles 5 --articles 50000 --days 730
"""
from __future__ import annotations

import argparse
import random
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.report import COLUMNS, PARTITIONS, build_report, write_text  # noqa: E402
from pipelines.report_html import render as html_text  # noqa: E402
from pipelines.report_text import render as plain_text  # noqa: E402
from schemas import load_data  # noqa: E402
from schemas.layout import TABLES  # noqa: E402
from schemas.tables import ARTICLES, DUPLICATES, MENTIONS, REJECTS  # noqa: E402

WORDS = "the coalition forces said on monday that militia fighters near the border town".split()  # noqa: SIM905


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(out: Path, articles: int, days: int, seed: int = 7) -> int:
    """Write the dataset; the number of Parquet files."""
    rng = random.Random(seed)
    actors = [actor["id"] for actor in load_data("gazetteer.yaml")["actors"]]
    weights = [1 / (rank + 1) for rank in range(len(actors))]  # a few actors dominate, as in news
    sources = [f"source{n}.example" for n in range(200)]
    events = list(load_data("event_types.yaml")["event_types"])
    first = date.today() - timedelta(days=days)
    files, article_id = 0, 0
    for offset in range(days):
        per_day = articles * (offset + 1) // days - articles * offset // days
        day = first + timedelta(days=offset)
        moment = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        run_id = f"{day:%Y%m%d}T120000Z-bench"
        by_actor: dict[str, list[dict]] = {}
        mentions: dict[str, list[dict]] = {}
        duplicates, rejects = [], []
        for _ in range(per_day):
            article_id += 1
            ident = f"{article_id:016x}"
            named = sorted(set(rng.choices(actors, weights, k=rng.randint(1, 3))), key=actors.index)
            source = rng.choice(sources)
            by_actor.setdefault(named[0], []).append({
                "article_id": ident, "url": f"https://{source}/{ident}",
                "canonical_url": f"https://{source}/{ident}", "source": source,
                "feed_url": f"https://{source}/feed",
                "title": f"{named[0]} {' '.join(rng.choices(WORDS, k=10))} {ident}",
                "text": " ".join(rng.choices(WORDS, k=60)), "published_at": moment, "date_source": "feed",
                "fetched_at": moment, "language": rng.choice(["en", "en", "en", "ar", "fr"]),
                "language_confidence": 0.99, "actors": named, "primary_actor": named[0],
                "event_types": sorted(set(rng.choices(events, k=rng.randint(0, 3)))),
                "content_hash": ident, "word_count": 60, "authors": [], "section": None,
                "clutter_removed": [], "run_id": run_id, "minhash": [], "numbers": []})
            for actor in named:
                mentions.setdefault(actor, []).append({
                    "article_id": ident, "count": 1, "in_title": actor == named[0],
                    "is_primary": actor == named[0], "published_at": moment, "run_id": run_id})
            if rng.random() < 0.25:
                duplicates.append({"article_id": f"d{ident}", "url": f"https://{rng.choice(sources)}/{ident}",
                                   "source": rng.choice(sources), "feed_url": None, "published_at": moment,
                                   "duplicate_of": ident, "method": rng.choice(["exact", "near", "url"]),
                                   "similarity": 1.0, "detected_at": moment, "run_id": run_id})
            if rng.random() < 0.05:
                rejects.append({"stage": "fetch", "url": f"https://{source}/x{ident}", "feed_url": None,
                                "error_type": rng.choice(["timeout", "http-status", "too-short"]),
                                "message": "", "http_status": None, "rejected_at": moment, "run_id": run_id})
        for table, schema, groups in (("articles", ARTICLES, by_actor), ("mentions", MENTIONS, mentions)):
            for actor, rows in groups.items():
                files += _write(out / table / f"date={day}" / f"actor={actor}", run_id, schema, rows)
        files += _write(out / "duplicates" / f"date={day}", run_id, DUPLICATES, duplicates)
        files += _write(out / "rejects" / f"date={day}", run_id, REJECTS, rejects)
    (out / "_state").mkdir(parents=True, exist_ok=True)
    return files


def _write(folder: Path, run_id: str, schema: pa.Schema, rows: list[dict]) -> int:
    if not rows:
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / f"part-{run_id}-00000.parquet")
    return 1


def baseline(out: Path) -> int:
    """DuckDB loading, over the hive layout, the columns the report reads
    from every table (its unavoidable input); the number of rows."""
    con = duckdb.connect()
    tables = [table for table in TABLES if any((out / table).rglob("*.parquet"))]
    for table in tables:
        columns = ", ".join(COLUMNS[table] + PARTITIONS[table])
        con.execute(f"create table {table} as select {columns} from "
                    f"read_parquet('{out}/{table}/**/*.parquet', hive_partitioning=true)")
    return sum(con.execute(f"select count(*) from {table}").fetchone()[0] for table in tables)


def browse(page: Path) -> tuple[float, float, float] | None:
    """Seconds until the page's article list shows, then until choosing an
    actor redraws it, then a title search; None without Playwright or Chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if chromium is None:
        return None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1400, "height": 900})
        started = time.perf_counter()
        tab.goto(page.as_uri())
        tab.wait_for_function("document.getElementById('articles-status')?.textContent "
                              "|| document.querySelector('#articles-list + .empty')")
        shown = time.perf_counter() - started
        if not tab.query_selector("#filters"):
            browser.close()
            return shown, 0.0, 0.0
        status = tab.text_content("#articles-status")
        actor = tab.eval_on_selector("select[name=actor]", "select => select.options[2].value")
        started = time.perf_counter()
        tab.select_option("select[name=actor]", actor)
        tab.wait_for_function(f"document.getElementById('articles-status').textContent != {status!r}")
        filtered = time.perf_counter() - started
        status = tab.text_content("#articles-status")
        started = time.perf_counter()
        tab.fill("input[name=q]", "militia border")
        tab.wait_for_function(f"document.getElementById('articles-status').textContent != {status!r}")
        searched = time.perf_counter() - started
        browser.close()
    return shown, filtered, searched


def measure(out: Path, articles: int, days: int) -> None:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    files = generate(out, articles, days)
    print(f"dataset: {articles:,} articles over {days} days, {files:,} Parquet files "
          f"(written in {time.perf_counter() - started:.1f} s)")

    started = time.perf_counter()
    report = build_report(str(out))
    plain_text(report)
    write_text(str(out / "report.html"), html_text(report))
    report_s = time.perf_counter() - started
    size = (out / "report.html").stat().st_size
    print(f"  report (queries, text, page)      {report_s:6.2f} s   peak RSS {peak_rss_mib():5.0f} MiB")

    started = time.perf_counter()
    rows = baseline(out)
    base_s = time.perf_counter() - started
    print(f"  baseline: DuckDB loads {rows:,} rows    {base_s:6.2f} s   "
          f"peak RSS {peak_rss_mib():5.0f} MiB (the process's, so far)")
    print(f"  ratio of report to baseline: {report_s / base_s:.2f}")
    print(f"  page {size / 2**20:.1f} MiB, chart of {len(report.series)} actors x {len(report.days)} days, "
          f"{len(report.listed):,} articles listed")

    opened = browse(out / "report.html")
    if opened is None:
        print("  (no Playwright or Chromium: `make test-browser` installs both to time the page)")
    else:
        write_text(str(out / "bare.html"), html_text(build_report(str(out), listed=0)))
        bare = browse(out / "bare.html")
        shown, filtered, searched = opened
        print(f"  page in Chromium: list shown {shown:.2f} s (without the list {bare[0]:.2f} s, "
              f"ratio {shown / bare[0]:.2f}); an actor chosen {filtered:.2f} s; a title search "
              f"{searched:.2f} s")
    shutil.rmtree(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, action="append",
                        help="articles in a dataset; repeat for several (default: 5, 5000, 50000, 100000)")
    parser.add_argument("--days", type=int, default=730, help="days the articles span (at most one "
                        "article a day for fewer articles than days)")
    parser.add_argument("--out", default="/tmp/news-ingest-bench-report")
    args = parser.parse_args()
    sizes = args.articles or [5, 5_000, 50_000, 100_000]
    if len(sizes) == 1:
        measure(Path(args.out), sizes[0], min(args.days, sizes[0]))
        return
    for articles in sizes:  # each in a process of its own: peak RSS is the size's own
        subprocess.run([sys.executable, __file__, "--articles", str(articles), "--days", str(args.days),
                        "--out", args.out], check=True)


if __name__ == "__main__":
    main()

"""Whole-run throughput against bare extraction, on every core and on one.

Serves N saved pages on loopback behind RSS feeds, spread over many loopback
addresses (127.0.0.2, .3, ... -- each a site with its own per-host limits,
as real pages come from many sites), from a process of its own (real sites
are remote: serving is not the run's work), then times, in this process:

  1. bare     trafilatura.extract() on every page body, on one core (the
              irreducible cost, and the yardstick of every ratio),
  2. extract  `news-ingest extract` over the pages (clean + classify, no
              Beam), with one process and with the default workers,
  3. run      a whole `news-ingest run` over the feeds (poll, fetch, clean,
              dedup, classify, write Parquet) into a fresh folder, with
              `--workers 1` and with the default (a worker per core), and
              its time per stage as Beam measured it,
  4. the same with --workers W when W is neither (optional),

and prints pages/s for each, the ratios to bare extraction, and memory: how
much the one-process run added to this process's peak, the peak RSS of the
default run in a process of its own (`python -c ... pipelines.cli run`),
and each of its workers' (the run's --summary-json says).
Several -n give one block per size (cost should grow linearly).

It also times, on the same pages, each part of the extract command's work
on its own, on one core (parse, trafilatura's extraction, our lead rule,
metadata, byline, classification ...), and prints our own work against
parse plus extraction; and a run over a feed with no items: the fixed cost
of a run (Beam's start-up, graph, bundles).

    python bench/bench_run.py --pages DIR [-n 300 -n 3000] [--workers 4]

DIR is a folder of saved .html pages, e.g. the unpacked development corpus
(`make bench` unpacks ../shared/corpus into /tmp). Pages are cycled when DIR
has fewer than N, but each is served once per cycle under its own URL, so
repeated pages count as fetched and cleaned and then dropped as duplicates.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import io
import itertools
import json
import logging
import multiprocessing
import multiprocessing.connection
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trafilatura  # noqa: E402

from pipelines.cli import main as cli_main  # noqa: E402
from pipelines.extract import extract_pages  # noqa: E402
from pipelines.jobs import RunJobs  # noqa: E402
from schemas.records import FeedItem, Page  # noqa: E402
from schemas.settings import Settings  # noqa: E402
from tests.loopback import LoopbackSite, rss  # noqa: E402
from transforms.cleaner import Cleaner, CleanError, main_text  # noqa: E402
from transforms.metadata import byline, page_metadata  # noqa: E402
from transforms.recall import EXTRACT_OPTIONS  # noqa: E402
from transforms.tagging import (  # noqa: E402
    Classifier,
    _language_identifier,
    detect_language,
    event_types_of,
    tag_actors,
)
from transforms.workers import WorkerPool, cores  # noqa: E402

PAGES_PER_SITE = 10


def load_pages(folder: Path, count: int) -> list[bytes]:
    files = sorted(folder.glob("*.html"))
    if not files:
        raise SystemExit(f"no .html pages in {folder}")
    return [path.read_bytes() for path in itertools.islice(itertools.cycle(files), count)]


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resident_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def serve(bodies: list[bytes], stack: contextlib.ExitStack, work: Path) -> tuple[Path, list[LoopbackSite]]:
    """Sites on loopback addresses, PAGES_PER_SITE pages and one feed each; the feed list."""
    sites, feed_urls = [], []
    for first in range(0, len(bodies), PAGES_PER_SITE):
        site = stack.enter_context(LoopbackSite(f"127.0.0.{2 + len(sites) % 250}"))
        sites.append(site)
        numbers = range(first, min(first + PAGES_PER_SITE, len(bodies)))
        for number in numbers:  # cycled pages get distinct URLs, so each is fetched and cleaned
            site.add(f"/p/{number}.html", bodies[number])
        feed_urls.append(site.add("/feed.xml", rss([{"link": f"/p/{n}.html"} for n in numbers]),
                                  content_type="application/rss+xml"))
    feed_list = work / "feeds.txt"
    feed_list.write_text("\n".join(feed_urls))
    return feed_list, sites


def _serve_until_told(work: Path, channel, load, *load_args) -> None:
    """In the server process: serve the pages, send the feed list, serve until told to stop."""
    with contextlib.ExitStack() as stack:
        feed_list, sites = serve(load(*load_args), stack, work)
        channel.send((feed_list, len(sites)))
        channel.recv()


@contextlib.contextmanager
def served_elsewhere(work: Path, load, *load_args, timeout: float = 300):
    """(feed list, number of sites) of `serve`, the sites in a process of their own.

    `load(*load_args)` gives the page bodies there (a module-level function: it is
    pickled for the spawned process)."""
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(
        target=_serve_until_told, args=(work, theirs, load, *load_args), daemon=True)
    server.start()
    theirs.close()  # the child's end: a child that dies then shows as end of file
    try:
        ready = multiprocessing.connection.wait([ours, server.sentinel], timeout=timeout)
        started = None
        if ours in ready:
            with contextlib.suppress(EOFError):  # the server died before it sent anything
                started = ours.recv()
        if started is None:
            raise SystemExit("the loopback sites did not start (see the server's error above)")
        yield started
    finally:
        with contextlib.suppress(OSError):
            ours.send("stop")
        server.join(10)
        if server.is_alive():
            server.terminate()


def whole_run(feed_list: Path, out: Path, *beam_args: str) -> tuple[float, dict]:
    """Seconds of `news-ingest run` and its summary, with the CPU seconds
    this process and its workers spent (`cpu`: main, workers)."""
    summary_file = out.with_suffix(".json")
    codes = []
    before = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    with contextlib.redirect_stdout(io.StringIO()):
        seconds = timed(lambda: codes.append(cli_main([
            "run", "-q", "--feeds", str(feed_list), "--out", str(out), "--allow-private-network",
            "--summary-json", str(summary_file), *beam_args])))
    if codes != [0]:
        raise SystemExit("the run failed: no throughput to report")
    after = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = [(end.ru_utime + end.ru_stime) - (start.ru_utime + start.ru_stime)
           for start, end in zip(before, after, strict=True)]
    return seconds, {**json.loads(summary_file.read_text()), "cpu": cpu}


# Runs the CLI, then prints the process's own high-water RSS (VmHWM): the
# children's ru_maxrss would also count the parent's pages, as Linux keeps
# the forked copy's peak across exec.
_RUN_AND_REPORT_PEAK = """
import sys
from pipelines.cli import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read().split("VmHWM:")[1]
print(int(status.split()[0]) // 1024, file=sys.stderr)
sys.exit(code)
"""


def run_alone_peak_mib(feed_list: Path, out: Path) -> float:
    """Peak RSS of `news-ingest run` in a process of its own (the served
    pages stay in this one)."""
    finished = subprocess.run(
        [sys.executable, "-c", _RUN_AND_REPORT_PEAK, "run", "-q", "--feeds", str(feed_list),
         "--out", str(out), "--allow-private-network"],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return float(finished.stderr.strip().splitlines()[-1])


def extract_parts(bodies: list[bytes]) -> Counter:
    """Seconds of each part of the extract command's work over `bodies`:
    the clean stage's steps in its order (parse, metadata, extraction, the
    rest), then each classification; their sum is a little below `extract`,
    which also reads the files and prints JSON. The byline search, part of
    the rest, is timed once more on its own, on a fresh tree."""
    settings = Settings()
    cleaner, classifier = Cleaner(settings.clean), Classifier(settings.classify)
    seconds: Counter = Counter()

    def clock(part: str, work, *args):
        started = time.perf_counter()
        try:
            return work(*args)
        finally:
            seconds[part] += time.perf_counter() - started

    for number, body in enumerate(bodies):
        url = f"http://site.example/{number}.html"
        page = Page(item=FeedItem(url=url, feed_url=""), final_url=url, status=200,
                    content_type="text/html", body=body, fetched_at=datetime.now(UTC))
        try:
            tree = clock("parse", cleaner.parse, page)
            metadata = clock("metadata", page_metadata, tree, url)
            bare_extraction = functools.partial(trafilatura.bare_extraction, url=url, **EXTRACT_OPTIONS)
            clock("extraction", bare_extraction, tree)
            document = clock("extraction and ours", main_text, tree, url)
            article = clock("rest", cleaner.article, page, tree, metadata, document)
        except CleanError:  # a page clean rejects: what it cost so far is counted
            continue
        if not metadata.author:  # the pages whose byline clean searched for
            seconds["byline pages"] += 1
            clock("byline", byline, cleaner.parse(page))  # timed alone: the parse is done first
        clock("language", detect_language, article.text, settings.classify)
        clock("actors", tag_actors, article.title, article.text, classifier.gazetteer,
              settings.classify.title_weight)
        clock("event types", event_types_of, article.title, article.text, classifier.event_types)
    _language_identifier.cache_clear()
    clock("language model", _language_identifier, settings.classify.languages)
    return seconds


def print_extract_parts(parts: Counter, bare: float, extract: float) -> None:
    rows = [("parse the HTML, once", parts["parse"]),
            ("trafilatura's extraction", parts["extraction"]),
            ("our lead and recall rules", parts["extraction and ours"] - parts["extraction"]),
            ("metadata and date", parts["metadata"]),
            ("title, clutter, date, authors, hashes", parts["rest"]),
            (f"  of which byline search ({parts['byline pages']:.0f} pages)", parts["byline"]),
            ("language", parts["language"]),
            ("actors", parts["actors"]),
            ("event types", parts["event types"]),
            ("language model, loaded once", parts["language model"])]
    print(f"  where the extract command's time goes, one process ({extract:.1f} s), each part timed alone:")
    for part, seconds in rows:
        print(f"    {part:<40} {seconds:6.2f} s")
    extraction = parts["parse"] + parts["extraction"]
    ours = sum(seconds for part, seconds in rows[2:] if not part.startswith(" "))
    print(f"  our own work beside parse and extraction: {ours:.2f} s per {extraction:.2f} s, "
          f"{ours / extraction:.2f}x (target: at most 0.5x)")


def fixed_cost(stack: contextlib.ExitStack, work: Path) -> float:
    """Seconds of a run over one feed with no items (the process is warm),
    in one process: what any run pays before and besides its pages."""
    site = stack.enter_context(LoopbackSite("127.0.0.1"))
    feed_list = work / "empty-feed.txt"
    feed_list.write_text(site.add("/feed.xml", rss([]), content_type="application/rss+xml"))
    return min(whole_run(feed_list, work / f"out-empty-{attempt}", "--workers", "1")[0]
               for attempt in range(3))


def pool_start_seconds() -> float:
    """Seconds to open and close a run's workers (one per core), forked with
    their jobs built, as `run` opens them: the price workers must repay."""
    settings = Settings()
    RunJobs(settings)  # what the run has built before: the model loaded, the data read
    return min(timed(lambda: WorkerPool(cores(), settings, RunJobs).close()) for _ in range(3))


def bench(pages: Path, count: int, workers: int) -> None:
    bodies = load_pages(pages, count)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        feed_list, sites = stack.enter_context(served_elsewhere(work, load_pages, pages, count))
        print(f"{len(bodies)} pages from {pages}, on {sites} loopback sites (served by another process); "
              f"{cores()} cores, so {cores()} workers by default")
        pages_dir = work / "pages"
        pages_dir.mkdir()
        page_files = [pages_dir / f"{number}.html" for number in range(len(bodies))]
        for path, body in zip(page_files, bodies, strict=True):
            path.write_bytes(body)

        bare = timed(lambda: [trafilatura.extract(body) for body in bodies])
        extracts = {count: extract_seconds(page_files, count) for count in sorted({1, cores(), workers})}
        held = resident_mib()  # the pages and what extraction left
        # The default run first: a run leaves its download threads ending for a
        # moment, and workers opened beside other threads start as fresh processes.
        run, summary = whole_run(feed_list, work / "out")
        one, _ = whole_run(feed_list, work / "out-one", "--workers", "1")
        after_run = peak_mib()
        more = (whole_run(feed_list, work / "out-more", "--workers", str(workers))
                if workers not in (1, cores()) else None)
        parts = extract_parts(bodies)
        starting = pool_start_seconds()
        fixed = fixed_cost(stack, work)
        alone = run_alone_peak_mib(feed_list, work / "out-alone")

    items = summary["items"]
    print(f"  accounted: {items['seen']} seen, {items['articles']} articles, {items['duplicates']} "
          f"duplicates, {items['rejected']} rejected, adds up: {summary['adds_up']}")
    print(f"  bare extraction, one core        {count / bare:7.1f} pages/s")
    for processes, seconds in extracts.items():
        label = f"extract, {processes} worker{'s' if processes > 1 else ''}" + (
            " (default)" if processes == cores() else "")
        print(f"  {label:<32} {count / seconds:7.1f} pages/s   ratio {bare / seconds:.2f}")
    print(f"  {'whole run, --workers 1':<32} {count / one:7.1f} pages/s   ratio {bare / one:.2f}")
    default = f"whole run, {cores()} workers (default)"
    print(f"  {default:<32} {count / run:7.1f} pages/s   ratio {bare / run:.2f}")
    if more:
        print(f"  {f'whole run, --workers {workers}':<32} {count / more[0]:7.1f} pages/s   "
              f"ratio {bare / more[0]:.2f}")
    print(f"  peak RSS         {after_run:7.0f} MiB after the runs; {held:.0f} MiB were resident "
          f"before them (the pages), so they took at most {after_run - held:.0f} MiB more")
    main_cpu, workers_cpu = summary["cpu"]
    print(f"  CPU of the default run: main process {main_cpu:.1f} s ({1000 * main_cpu / count:.0f} ms "
          f"a page: polls, downloads, dedup, Parquet, Beam), workers {workers_cpu:.1f} s "
          f"({1000 * workers_cpu / count:.0f} ms a page: clean, sign, classify, archive records)")
    peaks = summary["workers"]["peak_rss_mib"]
    print(f"  peak RSS of the default run in a process of its own: {alone:.0f} MiB; its "
          f"{summary['workers']['processes']} workers': {', '.join(f'{mib} MiB' for mib in peaks) or '-'} "
          f"(shared pages counted in each)")
    print_extract_parts(parts, bare, extracts[1])
    print(f"  a run over a feed with no items takes {fixed:.1f} s (Beam's start-up, graph and bundles, "
          f"one process); {cores()} workers take {starting:.2f} s to start and stop")
    stages = summary["stage_seconds"]
    total = sum(stages.values()) or 1
    print(f"  time per stage of the default run (Beam's measure, {total:.1f} s in all; wall {run:.1f} s):")
    for stage, seconds in stages.items():
        print(f"    {stage:<22} {seconds:7.2f} s  {seconds / total:6.1%}")


def extract_seconds(page_files: list[Path], workers: int) -> float:
    """Seconds of `news-ingest extract` over the files with this many workers,
    the language model loaded as the command loads it (once per process)."""
    _language_identifier.cache_clear()
    return timed(lambda: extract_pages([str(path) for path in page_files], None, io.BytesIO(),
                                       io.StringIO(), io.StringIO(), workers=workers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=Path, required=True, help="folder of saved .html pages")
    parser.add_argument("-n", type=int, action="append", help="pages to serve (default 300; repeatable)")
    parser.add_argument("--workers", type=int, default=1,
                        help="also run and extract with this many worker processes")
    args = parser.parse_args()
    logging.getLogger("trafilatura").setLevel(logging.ERROR)  # as the CLI does
    for count in args.n or [300]:
        bench(args.pages, count, args.workers)


if __name__ == "__main__":
    main()

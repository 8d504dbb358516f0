"""Whole-run throughput against bare extraction, in one process.

Serves N saved pages on a loopback HTTP server behind RSS feeds, then times,
in this order and in this process:

  1. bare   trafilatura.extract() on every page body (the irreducible cost),
  2. extract  the `news-ingest extract` path (clean + classify, no Beam),
  3. run    a whole `news-ingest run` over the feeds (poll, fetch, clean,
            dedup, classify, write Parquet) into a fresh folder,

and prints pages/s for each and the ratios to bare extraction, plus peak RSS.

    python bench/bench_run.py --pages DIR [-n 300]

DIR is a folder of saved .html pages, e.g. the unpacked development corpus
(`make bench` unpacks ../shared/corpus into /tmp). Pages are cycled when DIR
has fewer than N, but each is served once per cycle under its own URL, so
repeated pages count as fetched and cleaned and then dropped as duplicates.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trafilatura  # noqa: E402

from pipelines.cli import main as cli_main  # noqa: E402
from pipelines.extract import extract_pages  # noqa: E402
from tests.loopback import LoopbackSite, rss  # noqa: E402

ITEMS_PER_FEED = 100


def load_pages(folder: Path, count: int) -> list[bytes]:
    files = sorted(folder.glob("*.html"))
    if not files:
        raise SystemExit(f"no .html pages in {folder}")
    return [path.read_bytes() for path in itertools.islice(itertools.cycle(files), count)]


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=Path, required=True, help="folder of saved .html pages")
    parser.add_argument("-n", type=int, default=300, help="pages to serve (default 300)")
    args = parser.parse_args()
    logging.getLogger("trafilatura").setLevel(logging.ERROR)  # as the CLI does
    bodies = load_pages(args.pages, args.n)
    print(f"{len(bodies)} pages from {args.pages}")

    with LoopbackSite() as site, tempfile.TemporaryDirectory() as work:
        work = Path(work)
        for number, body in enumerate(bodies):
            # Cycled pages get distinct URLs, so each is fetched and cleaned.
            site.add(f"/p/{number}.html", body)
        feed_urls = []
        for start in range(0, len(bodies), ITEMS_PER_FEED):
            items = [{"link": f"/p/{n}.html"} for n in range(start, min(start + ITEMS_PER_FEED, len(bodies)))]
            feed_urls.append(site.add(f"/feeds/{start}.xml", rss(items),
                                      content_type="application/rss+xml"))
        feed_list = work / "feeds.txt"
        feed_list.write_text("\n".join(feed_urls))
        pages_dir = work / "pages"
        pages_dir.mkdir()
        page_files = []
        for number, body in enumerate(bodies):
            page_files.append(pages_dir / f"{number}.html")
            page_files[-1].write_bytes(body)

        bare = timed(lambda: [trafilatura.extract(body) for body in bodies])
        extract = timed(lambda: extract_pages(
            [str(path) for path in page_files], None, io.BytesIO(), io.StringIO(), io.StringIO()))
        summary = io.StringIO()
        with contextlib.redirect_stdout(summary):
            codes = []
            run = timed(lambda: codes.append(cli_main([
                "run", "--feeds", str(feed_list), "--out", str(work / "out"),
                "--allow-private-network"])))
        print("    " + summary.getvalue().rstrip().replace("\n", "\n    "))
        if codes != [0]:
            raise SystemExit("the run failed: no throughput to report")

    count = len(bodies)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"bare extraction  {count / bare:7.1f} pages/s")
    print(f"extract command  {count / extract:7.1f} pages/s   ratio {bare / extract:.2f}")
    print(f"whole run        {count / run:7.1f} pages/s   ratio {bare / run:.2f}")
    print(f"peak RSS         {peak_mib:7.0f} MiB")


if __name__ == "__main__":
    main()

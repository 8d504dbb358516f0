"""What polling costs: latency to queryable under `news-ingest stream`, and a
poll of unchanged feeds against the first poll of the same feeds.

1. latency  A real `news-ingest stream --interval 5s` subprocess watches one
            loopback feed. Items are added to the feed at points spread over
            the poll cycle; for each, the time until DuckDB sees it in the
            dataset (articles, duplicates or rejects: every item lands in one).
2. poll     100 loopback feeds, each listing a few corpus pages, polled with
            `news-ingest run` in this process: first poll (baseline), then
            unchanged polls answered 304 (feeds with ETags) and unchanged
            bodies re-sent in full (feeds without validators). Requests,
            response bytes and seconds for each, and ratios to the first.

    python bench/bench_stream.py --pages DIR [--interval 5s] [--items 6] [--feeds 100]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import logging
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from pipelines.cli import main as cli_main  # noqa: E402
from pipelines.options import parse_interval  # noqa: E402
from schemas.settings import FetchSettings  # noqa: E402
from tests.loopback import LoopbackSite, rss  # noqa: E402
from transforms.feedstate import load_states  # noqa: E402
from transforms.httpclient import Fetcher  # noqa: E402

TABLES = ("articles", "duplicates", "rejects")


def load_pages(folder: Path, count: int) -> list[bytes]:
    files = sorted(folder.glob("*.html"))
    if not files:
        raise SystemExit(f"no .html pages in {folder}")
    return [path.read_bytes() for path in itertools.islice(itertools.cycle(files), count)]


def rows_landed(out: Path) -> int:
    """Rows readers can see in the three item tables (hidden .inprogress files excluded)."""
    total = 0
    for table in TABLES:
        if any((out / table).rglob("*.parquet")):
            sql = f"select count(*) from read_parquet('{out}/{table}/**/*.parquet', hive_partitioning=true)"
            total += duckdb.connect().execute(sql).fetchone()[0]
    return total


def stream_latency(pages: list[bytes], interval: str, items: int) -> None:
    period = parse_interval(interval).total_seconds()
    with LoopbackSite() as site, tempfile.TemporaryDirectory() as work:
        out = Path(work) / "out"
        for number, body in enumerate(pages):
            site.add(f"/p/{number}.html", body)
        listed = [{"link": "/p/0.html"}]

        def publish() -> None:
            site.add("/live.xml", rss(listed), content_type="application/rss+xml",
                     etag=f'"v{len(listed)}"')

        publish()
        command = [sys.executable, "-m", "pipelines.cli", "stream", "--feeds", site.url("/live.xml"),
                   "--out", str(out), "--interval", interval, "--allow-private-network"]
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        polls: queue.Queue[float] = queue.Queue()
        threading.Thread(target=lambda: [polls.put(time.monotonic()) for line in process.stdout
                                         if "feeds polled" in line], daemon=True).start()
        first_poll = polls.get(timeout=120)
        latencies = []
        for number in range(1, items + 1):
            # Spread arrivals over the cycle: just after a poll, mid-way, just before the next.
            target = first_poll + number * period + (number % items) * period / items
            time.sleep(max(0.0, target - time.monotonic()))
            expected = rows_landed(out) + 1
            listed.append({"link": f"/p/{number}.html"})
            published = time.monotonic()
            publish()
            while rows_landed(out) < expected:
                if time.monotonic() - published > 4 * period + 60:
                    raise SystemExit(f"item {number} never landed")
                time.sleep(0.05)
            latencies.append(time.monotonic() - published)
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=120)
    print(f"latency under `stream --interval {interval}`, {items} items published at spread "
          f"points of the cycle (stream exited {code} on SIGINT):")
    print(f"  min {min(latencies):5.1f} s   median {statistics.median(latencies):5.1f} s   "
          f"max {max(latencies):5.1f} s   max/interval {max(latencies) / period:.2f}")


def poll_cost(pages: list[bytes], feeds: int, per_feed: int) -> None:
    with LoopbackSite() as site, tempfile.TemporaryDirectory() as work:
        work = Path(work)
        lists = {}
        for kind, validators in (("etag", True), ("plain", False)):
            urls = []
            for feed in range(feeds):
                items = [{"link": f"/p/{feed * per_feed + n}.html"} for n in range(per_feed)]
                route = {"etag": f'"{kind}-{feed}"'} if validators else {}
                urls.append(site.add(f"/{kind}/{feed}.xml", rss(items, title=f"Feed {feed}"),
                                     content_type="application/rss+xml", **route))
            lists[kind] = work / f"{kind}.txt"
            lists[kind].write_text("\n".join(urls))
        for number, body in enumerate(pages[:feeds * per_feed]):
            site.add(f"/p/{number}.html", body)

        def poll(kind: str) -> tuple[int, int, float]:
            requests, sent = sum(site.hits.values()), site.bytes_sent
            with contextlib.redirect_stdout(io.StringIO()):
                started = time.perf_counter()
                code = cli_main(["run", "--feeds", str(lists[kind]), "--out", str(work / "out"),
                                 "--allow-private-network"])
                seconds = time.perf_counter() - started
            if code != 0:
                raise SystemExit(f"poll of {kind} feeds failed ({code})")
            return sum(site.hits.values()) - requests, site.bytes_sent - sent, seconds

        def conditional_gets_alone() -> tuple[int, int, float]:
            """The same 304 round trips without the pipeline around them."""
            states = load_states(str(work / "out"))
            feed_urls = lists["etag"].read_text().split()
            requests, sent = sum(site.hits.values()), site.bytes_sent
            fetcher = Fetcher(FetchSettings(allow_private_network=True))
            started = time.perf_counter()
            with ThreadPoolExecutor(FetchSettings().concurrency) as pool:
                list(pool.map(lambda url: fetcher.get(url, max_bytes=2**20, allow_file=False,
                                                      etag=states[url].etag, last_modified=None),
                              feed_urls))
            return sum(site.hits.values()) - requests, site.bytes_sent - sent, time.perf_counter() - started

        rows = [("first poll, ETag feeds", poll("etag"))]
        rows.append(("unchanged, answered 304", poll("etag")))
        rows.append(("  its HTTP alone", conditional_gets_alone()))
        poll("plain")  # its items are already ingested: this only records the bodies
        rows.append(("unchanged, full body sent", poll("plain")))
    base = rows[0][1]
    print(f"a poll of {feeds} feeds ({per_feed} items each; first poll fetches the pages):")
    print(f"  {'':26} {'requests':>8} {'bytes':>11} {'seconds':>8}   ratio to first (req, bytes, s)")
    for name, (requests, sent, seconds) in rows:
        print(f"  {name:26} {requests:8d} {sent:11,d} {seconds:8.2f}   "
              f"{requests / base[0]:.3f}, {sent / base[1]:.4f}, {seconds / base[2]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=Path, required=True, help="folder of saved .html pages")
    parser.add_argument("--interval", default="5s", help="stream interval (default 5s)")
    parser.add_argument("--items", type=int, default=6, help="items published while streaming (default 6)")
    parser.add_argument("--feeds", type=int, default=100, help="feeds in the poll-cost run (default 100)")
    parser.add_argument("--per-feed", type=int, default=3, help="items per feed (default 3)")
    args = parser.parse_args()
    logging.getLogger("trafilatura").setLevel(logging.ERROR)
    pages = load_pages(args.pages, max(args.items + 1, args.feeds * args.per_feed))
    stream_latency(pages, args.interval, args.items)
    poll_cost(pages, args.feeds, args.per_feed)


if __name__ == "__main__":
    main()

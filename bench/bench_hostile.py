"""One `news-ingest run` against the hostile loopback site (tests/hostile.py):
wall time, peak RSS against a run over the same count of well-behaved pages
in the same process, what the server sent, and the run's accounting.

    python bench/bench_hostile.py [--many 3000]

The hostile site serves 200 MB pages, a 1 GB gzip bomb, endless trickles,
resets and broken feeds; memory must stay bounded whatever it sends.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.cli import main as cli_main  # noqa: E402
from tests import hostile  # noqa: E402
from tests.loopback import LoopbackSite, rss  # noqa: E402


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(feed_list: Path, out: Path) -> tuple[float, dict]:
    summary = out.parent / f"{out.name}.json"
    with contextlib.redirect_stdout(io.StringIO()):
        started = time.perf_counter()
        code = cli_main(["run", "--feeds", str(feed_list), "--out", str(out), "--summary-json", str(summary),
                         *hostile.RUN_OPTIONS])
        seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"the run failed ({code})")
    return seconds, json.loads(summary.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--many", type=int, default=3000, help="entries of the long feed (default 3000)")
    args = parser.parse_args()
    with LoopbackSite() as site, tempfile.TemporaryDirectory() as work:
        work = Path(work)
        feed_list, expected = hostile.build(site, work, many=args.many)
        # Baseline: as many good pages as the hostile site has scenarios.
        for number in range(len(expected)):
            site.add(f"/good/{number}", hostile.story(f"Good story {number}"))
        good_feed = rss([{"link": f"/good/{n}"} for n in range(len(expected))])
        good = work / "good.txt"
        good.write_text(site.add("/feeds/good.xml", good_feed, content_type="application/rss+xml"))
        base_seconds, _ = run(good, work / "good")
        base_peak = peak_mib()
        seconds, summary = run(feed_list, work / "hostile")
        peak, sent = peak_mib(), site.bytes_sent
    items = summary["items"]
    print(f"hostile site: {len(expected)} page scenarios, {len(hostile.UNFOLLOWABLE) + 1} unfollowable "
          f"entries, 6 feeds + 1 missing, {args.many} entries in the long feed")
    print(f"  well-behaved run   {base_seconds:6.1f} s   peak RSS {base_peak:5.0f} MiB")
    print(f"  hostile run        {seconds:6.1f} s   peak RSS {peak:5.0f} MiB   "
          f"(ratios {seconds / base_seconds:.2f}, {peak / base_peak:.2f})")
    print(f"  the server sent {sent / 2**20:,.0f} MiB; accounted: {items['seen']} items seen, "
          f"adds up: {summary['adds_up']}")


if __name__ == "__main__":
    main()

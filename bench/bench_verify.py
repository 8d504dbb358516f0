"""How long `news-ingest verify` takes, and how much memory, on a 100,000-article dataset.

`verify` reads every table file whole (footer and every row group) and
checks every URL across articles and duplicates, so its cost grows with the
dataset -- unlike a run's. Its memory must not: row groups are read one at a
time and the identities go to DuckDB on disk. This script synthesises the
history of about `--articles` articles as bench/bench_history.py does (runs
15 minutes apart, one file per table and partition a run touches, 25% of
items duplicates, 5% rejects), then measures `verify` in a process of its
own -- wall time, CPU, peak RSS (resource.getrusage) and, for scale, the
peak of the same process with only the imports done -- twice: on the files
as runs wrote them, and after `news-ingest compact` (the daily state).

    .venv/bin/python bench/bench_verify.py                    # 100,000 articles
    .venv/bin/python bench/bench_verify.py --articles 20000 --keep

Data goes to --work (default /tmp/news-ingest-verify), deleted afterwards unless --keep.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_history import ARTICLES_PER_RUN, synthesise  # noqa: E402

# Run in a fresh process: `python -c _MEASURE DIR [--imports-only]`; prints one JSON line last.
_MEASURE = r"""
import io, json, resource, sys, time
from contextlib import redirect_stdout
from pipelines.cli import main
import pipelines.verify
out, imports_only = sys.argv[1], "--imports-only" in sys.argv
code, printed, started = 0, "", time.perf_counter()
if not imports_only:
    captured = io.StringIO()
    with redirect_stdout(captured):
        code = main(["verify", "--out", out])
    printed = captured.getvalue()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"code": code, "printed": printed, "seconds": time.perf_counter() - started,
                  "cpu": usage.ru_utime + usage.ru_stime, "peak_mib": usage.ru_maxrss / 1024}))
"""


def measure(out: Path, imports_only: bool = False) -> dict:
    """`verify` (or only its imports) in a child process: its own figures."""
    argv = [sys.executable, "-c", _MEASURE, str(out), *(["--imports-only"] if imports_only else [])]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compact(out: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "compact", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[0]


def table_files(out: Path) -> int:
    return sum(1 for table in ("articles", "mentions", "duplicates", "rejects")
               for _ in (out / table).rglob("*.parquet"))


def report(label: str, out: Path, figures: dict, imports: dict) -> None:
    verdict = figures["printed"].strip().splitlines()[-1]
    print(f"  {label:<13}{table_files(out):>9,} files  {figures['seconds']:7.1f} s wall  "
          f"{figures['cpu']:7.1f} s CPU  peak RSS {figures['peak_mib']:6.0f} MiB "
          f"(imports alone {imports['peak_mib']:.0f} MiB)  exit {figures['code']}: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000,
                        help="about how many articles (default 100,000)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/news-ingest-verify"))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="synthesising processes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the dataset in --work")
    args = parser.parse_args()
    out = args.work / "data"
    shutil.rmtree(args.work, ignore_errors=True)
    runs = math.ceil(args.articles / ARTICLES_PER_RUN)
    print(f"synthesising {runs:,} runs (~{args.articles:,} articles) into {out} ...", flush=True)
    made = synthesise(out, runs, args.seed, args.workers, datetime.now(UTC))
    print(f"  {made['rows']} rows, {sum(made['files'].values()):,} files, "
          f"{made['bytes'] / 2**20:,.0f} MiB in {made['seconds']:.0f} s")
    imports = measure(out, imports_only=True)
    print(f"news-ingest verify --out {out}")
    report("as written", out, measure(out), imports)
    print(f"  ({compact(out)})")
    report("compacted", out, measure(out), imports)
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""What the raw archive and `news-ingest reprocess` cost, on a whole run's dataset.

Serves N pages of the development corpus on loopback behind RSS feeds, as
bench/bench_run.py does (ten pages and one feed per site, the sites on
127.0.0.2, .3, ..., served by a process of its own), then measures, each
command in a process of its own, one after the other:

  1. run      `news-ingest run` over the feeds into a new dataset: the raw
              archive on (the default for a new dataset);
  2. run --no-archive, the same pages into another new dataset: the archive's
              cost in time (1 / 2), and its size -- the bytes of
              DIR/raw/**/*.warc.gz per 1,000 pages fetched and per 1,000
              articles, and against the Parquet tables;
  3. reprocess --what tags on the dataset of 1, with a gazetteer that adds one
              actor (`tanf-garrison`, aliases as in the README's example,
              `Tanf` among them) just below `actors:`. No page of the corpus
              names Tanf, so this measures reading and classifying every
              article and rewriting nothing; hence also
  3b. reprocess --what tags again, the new actor also given a word many pages
              have (`--wide-alias`, default Berlin, in some 10 % of them): the
              same, with the changed days rewritten and articles moved;
  4. reprocess --what text on the same dataset (the gazetteer of 3b: only the
              new texts can change tags), cleaning in a worker process per
              core (the default), and
  4b. the same with --workers 1, on a copy of the dataset as 4 found it.

For each: wall time, CPU (user + sys) and peak RSS -- the largest process
of the command's tree (getrusage(RUSAGE_CHILDREN) of a small launcher
process that runs only that command) and the sum over the tree, sampled
every 0.2 s (the same for the default one-process runner) -- and, for the
reprocess commands, the articles changed (`--summary-json`) and the ratio of
their time to the run's. After each reprocess the tables are checked: the
same article ids, each once, as before; the DuckDB-style count of articles
naming `tanf-garrison` (read with pyarrow) against what reprocess said.

The corpus has about 900 pages; past them pages are cycled. By default a
cycled copy is made a distinct article (`--copies distinct`): every sixth
word of its visible text is replaced by another word of the same page, a
different choice per cycle, so it is neither an exact nor a near copy (half
its 3-word shingles change; the near-copy threshold is 0.7) and N pages give
about N articles, each as costly to clean as the page it came from.
`--copies exact` serves the copies unchanged, as bench_run.py does: they are
fetched, cleaned and dropped as exact duplicates (about 900 articles at most).

    .venv/bin/python bench/bench_reprocess.py                 # 10,000 pages, about 37 minutes
    .venv/bin/python bench/bench_reprocess.py --pages 300     # smoke run, about 1.5 minutes
    .venv/bin/python bench/bench_reprocess.py --pages 3000 --json /tmp/reprocess.json --keep

(on 2 cores; the largest peak RSS at 10,000 pages is the archived run's, 2.6 GiB.)

The corpus is ../shared/corpus/trafilatura-eval.tar.gz, unpacked into
/tmp/news-ingest-corpus when it is not there yet (as `make bench` does), or
--corpus DIR (a folder of saved .html pages). The datasets go to --work
(default /tmp/news-ingest-reprocess), deleted afterwards unless --keep.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pyarrow.parquet as pq  # noqa: E402
from bench_run import served_elsewhere  # noqa: E402  (the sites and feeds of bench_run.py)

from schemas.layout import dataset_files  # noqa: E402

DEFAULT_PAGES = 10_000
CORPUS_TAR = ROOT.parent / "shared" / "corpus" / "trafilatura-eval.tar.gz"
CORPUS_DIR = Path("/tmp/news-ingest-corpus")
WORK = Path("/tmp/news-ingest-reprocess")
# The actor the edited gazetteer adds (the README's "Change the gazetteer, then reprocess").
NEW_ACTOR = """\
  - id: tanf-garrison
    name: Coalition garrison at al-Tanf
    type: military
    aliases: [Tanf garrison, At Tanf base, al-Tanf base, Tanf]
"""
NEW_ACTOR_ID = "tanf-garrison"
# Every fetch at full speed: loopback sites are this machine.
LOOPBACK = ("--allow-private-network", "--host-delay", "0", "--per-host", "16")
TABLES = ("articles", "mentions", "duplicates", "rejects")


# --------------------------------------------------------------------------------------------
# The pages.

def corpus_folder(given: Path | None) -> Path:
    """A folder of saved .html pages: --corpus, or the corpus unpacked into /tmp."""
    if given is not None:
        return given
    folder = CORPUS_DIR / "eval"
    if not any(folder.glob("*.html")):
        if not CORPUS_TAR.exists():
            raise SystemExit(f"no corpus: {CORPUS_TAR} is missing; give --corpus DIR")
        CORPUS_DIR.mkdir(parents=True, exist_ok=True)
        with tarfile.open(CORPUS_TAR) as archive:
            archive.extractall(CORPUS_DIR, filter="data")
    return folder


# The parts of a page: markup not to touch (scripts, styles, comments, tags) or text.
_PARTS = re.compile(r"(<script\b.*?</script\s*>|<style\b.*?</style\s*>|<!--.*?-->|<[^>]*>)|([^<]+)",
                    re.DOTALL | re.IGNORECASE)
# Words in text; entities (&amp; &#8217;) are matched to be left as they are.
_WORDS = re.compile(r"&#?\w+;|\w+")
REPLACE_EVERY = 6


def variant(body: bytes, cycle: int) -> bytes:
    """`body` with every sixth word of its text replaced by another of its words
    (which ones depends on `cycle`): the same page, layout and language, but
    another text for the dedup stage. Bytes that are not UTF-8 are kept as they are."""
    if cycle == 0:
        return body
    html = body.decode("utf-8", errors="surrogateescape")
    parts = [(markup, text) for markup, text in _PARTS.findall(html)]
    words = [word for _, text in parts if text for word in _WORDS.findall(text) if word[0] != "&"]
    if len(words) < 2:
        return body
    position = 0

    def swap(match: re.Match) -> str:
        nonlocal position
        word = match.group()
        if word[0] == "&":
            return word
        position += 1
        if (position + cycle) % REPLACE_EVERY:
            return word
        return words[(position * 7919 + cycle * 104_729) % len(words)]

    return "".join(markup or _WORDS.sub(swap, text) for markup, text in parts).encode(
        "utf-8", errors="surrogateescape")


def page_bodies(folder: Path, count: int, copies: str) -> list[bytes]:
    """`count` page bodies: the corpus in order, then again (copies made distinct, or not)."""
    files = sorted(folder.glob("*.html"))
    if not files:
        raise SystemExit(f"no .html pages in {folder}")
    bodies = []
    for number in range(count):
        body = files[number % len(files)].read_bytes()
        cycle = number // len(files)
        bodies.append(variant(body, cycle) if copies == "distinct" else body)
    return bodies


# --------------------------------------------------------------------------------------------
# Measuring one command.

# A launcher that runs one command and reports, as JSON on its last stdout
# line: wall seconds, exit code, the largest process's peak RSS among its
# descendants (getrusage RUSAGE_CHILDREN: only that command's tree, as the
# launcher runs nothing else), their CPU, and the tree's summed RSS,
# sampled. The launcher is small, so its own pages (which a child's ru_maxrss
# would inherit across fork and exec) do not count.
_MEASURE = r"""
import json, os, resource, subprocess, sys, threading, time
argv, log = json.loads(sys.argv[1]), sys.argv[2]
page = os.sysconf("SC_PAGE_SIZE")
peak = [0]
done = threading.Event()

def tree_rss(root):
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as stat:
                    parents[int(name)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    tree, grew = {root}, True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            pass
    return total

def sample(root):
    while not done.wait(0.2):
        peak[0] = max(peak[0], tree_rss(root))

with open(log, "wb") as out:
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    sampler = threading.Thread(target=sample, args=(child.pid,), daemon=True)
    sampler.start()
    code = child.wait()
    wall = time.perf_counter() - started
done.set()
sampler.join()
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": code, "seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "peak_rss_mib": usage.ru_maxrss / 1024, "tree_rss_mib": peak[0] / 2**20}))
"""


def measure(name: str, arguments: list[str], work: Path) -> dict:
    """Run `news-ingest ARGUMENTS` in a process of its own; its figures (see _MEASURE)."""
    log = work / f"{name}.log"
    argv = [sys.executable, "-m", "pipelines.cli", *arguments]
    finished = subprocess.run([sys.executable, "-c", _MEASURE, json.dumps(argv), str(log)],
                              cwd=ROOT, check=True, capture_output=True, text=True)
    figures = json.loads(finished.stdout.strip().splitlines()[-1])
    if figures["code"] != 0:
        sys.stdout.write(log.read_text(errors="replace")[-3000:])
        raise SystemExit(f"{name}: `news-ingest {' '.join(arguments)}` exited {figures['code']} "
                         f"(its output: {log})")
    return figures


# --------------------------------------------------------------------------------------------
# The datasets.

def folder_bytes(folder: Path, pattern: str) -> int:
    return sum(path.stat().st_size for path in folder.glob(pattern) if path.is_file()
               and not path.name.startswith("."))


def sizes(out: Path) -> dict:
    """Bytes of the raw archive, of each table's Parquet files, of the whole folder."""
    tables = {table: folder_bytes(out / table, "**/*.parquet") for table in TABLES}
    return {"raw": folder_bytes(out / "raw", "**/*.warc.gz"),
            "raw_files": sum(1 for _ in (out / "raw").glob("**/*.warc.gz")),
            "tables": tables, "tables_total": sum(tables.values()),
            "dataset": folder_bytes(out, "**/*")}


def table_state(out: Path) -> dict:
    """What the checks compare: article ids (with their count), rows and files of
    `articles` and `mentions`, and the articles `mentions` names NEW_ACTOR in."""
    ids: Counter = Counter()
    for path in dataset_files(str(out), "articles"):
        ids.update(pq.read_table(path, columns=["article_id"]).column("article_id").to_pylist())
    mention_files = dataset_files(str(out), "mentions")
    mentions = sum(pq.ParquetFile(path).metadata.num_rows for path in mention_files)
    naming = {row for path in mention_files if f"/actor={NEW_ACTOR_ID}/" in path
              for row in pq.read_table(path, columns=["article_id"]).column("article_id").to_pylist()}
    return {"ids": ids, "articles": sum(ids.values()), "mentions": mentions,
            "files": len(dataset_files(str(out), "articles")) + len(mention_files),
            "naming_new_actor": len(naming)}


def article_rows(out: Path) -> dict[str, dict]:
    """Every article row by id, without `reprocessed_at` (the time of the reprocess)."""
    rows = {}
    for path in dataset_files(str(out), "articles"):
        for row in pq.read_table(path).to_pylist():
            row.pop("reprocessed_at", None)
            rows[row["article_id"]] = row
    return rows


def check(before: dict, after: dict, summary: dict, what: str) -> list[str]:
    """Problems: articles lost, gained or doubled; a count reprocess states that the tables deny."""
    problems = []
    if after["ids"] != before["ids"]:
        lost, gained = before["ids"] - after["ids"], after["ids"] - before["ids"]
        problems.append(f"{what}: article ids differ after reprocess ({sum(lost.values())} rows gone, "
                        f"{sum(gained.values())} new or doubled)")
    if summary.get("articles") != before["articles"]:
        problems.append(f"{what}: reprocess read {summary.get('articles')} articles, the table has "
                        f"{before['articles']}")
    stated = summary.get("actors", {}).get(NEW_ACTOR_ID, {})
    if stated and stated.get("after") != after["naming_new_actor"]:
        problems.append(f"{what}: summary says {stated.get('after')} articles name {NEW_ACTOR_ID}, "
                        f"mentions has {after['naming_new_actor']}")
    return problems


def edited_gazetteer(work: Path, wide_alias: str | None = None) -> Path:
    """The bundled gazetteer with NEW_ACTOR just below `actors:` (given
    `wide_alias` too)."""
    lines = (ROOT / "schemas" / "data" / "gazetteer.yaml").read_text(encoding="utf-8").splitlines(True)
    at = next(number for number, line in enumerate(lines) if line.rstrip() == "actors:")
    actor = NEW_ACTOR if wide_alias is None else NEW_ACTOR.replace(", Tanf]", f", Tanf, {wide_alias}]")
    path = work / ("gazetteer.yaml" if wide_alias is None else "gazetteer-wide.yaml")
    path.write_text("".join(lines[:at + 1]) + actor + "".join(lines[at + 1:]), encoding="utf-8")
    checked = subprocess.run([sys.executable, "-m", "pipelines.cli", "gazetteer", "--check", str(path)],
                             cwd=ROOT, capture_output=True, text=True)
    if checked.returncode != 0 or NEW_ACTOR_ID not in checked.stdout:
        raise SystemExit(f"the edited gazetteer is not accepted:\n{checked.stdout}{checked.stderr}")
    return path


# --------------------------------------------------------------------------------------------

REPROCESSES = (("reprocess_tags", "tags", "--what tags (alias Tanf)"),
               ("reprocess_tags_wide", "tags", "--what tags (+ wide alias)"),
               ("reprocess_text", "text", "--what text"),
               ("reprocess_text_one", "text", "--what text --workers 1"))
# Cleans the same pages as reprocess_text, on a copy of the dataset as it was before it, in one process.
IN_ONE_PROCESS = {"reprocess_text_one": ("--workers", "1")}


def bench(folder: Path, count: int, copies: str, work: Path, wide_alias: str) -> dict:
    feeds_dir = work / "feeds"
    feeds_dir.mkdir(parents=True)
    archived, plain = work / "archive", work / "no-archive"
    figures: dict = {"pages": count, "copies": copies, "corpus": str(folder),
                     "corpus_pages": sum(1 for _ in folder.glob("*.html"))}
    with served_elsewhere(feeds_dir, page_bodies, folder, count, copies, timeout=900) as (feed_list, sites):
        print(f"{count:,} pages from {folder} ({copies} copies past its {figures['corpus_pages']}), "
              f"on {sites} loopback sites (served by another process)", flush=True)
        for name, out, extra in (("run", archived, ()), ("run_no_archive", plain, ("--no-archive",))):
            summary_file = work / f"{name}.json"
            figures[name] = measure(name, ["run", "-q", "--feeds", str(feed_list), "--out", str(out),
                                           *LOOPBACK, "--summary-json", str(summary_file), *extra], work)
            summary = json.loads(summary_file.read_text())
            figures[name].update(items=summary["items"], adds_up=summary["adds_up"],
                                 stage_seconds=summary["stage_seconds"], sizes=sizes(out))
            print(f"  {name}: {figures[name]['seconds']:.1f} s", flush=True)

    gazetteers = {"reprocess_tags": edited_gazetteer(work)}
    gazetteers["reprocess_tags_wide"] = gazetteers["reprocess_text"] = edited_gazetteer(work, wide_alias)
    figures["wide_alias"] = wide_alias
    problems = []
    state = table_state(archived)
    figures["tables_before"] = {key: state[key] for key in ("articles", "mentions", "files",
                                                              "naming_new_actor")}
    gazetteers["reprocess_text_one"] = gazetteers["reprocess_text"]
    copy, before_text = work / "archive-before-text", None
    for name, what, _ in REPROCESSES:
        if name == "reprocess_text":
            shutil.copytree(archived, copy)
            before_text = state
        out = copy if name in IN_ONE_PROCESS else archived
        state = before_text if name in IN_ONE_PROCESS else state
        summary_file = work / f"{name}.json"
        figures[name] = measure(name, ["reprocess", "--out", str(out), "--what", what,
                                       "--gazetteer", str(gazetteers[name]),
                                       "--summary-json", str(summary_file), *IN_ONE_PROCESS.get(name, ())],
                                work)
        summary = json.loads(summary_file.read_text())
        after = table_state(out)
        figures[name].update(summary=summary,
                             ratio_to_run=figures[name]["seconds"] / figures["run"]["seconds"],
                             tables_after={key: after[key] for key in ("articles", "mentions", "files",
                                                                       "naming_new_actor")})
        problems += check(state, after, summary, name)
        state = after
        print(f"  {name}: {figures[name]['seconds']:.1f} s", flush=True)
    if article_rows(copy) != article_rows(archived):
        problems.append("reprocess_text_one: its articles differ from those of reprocess_text (workers)")
    figures["problems"] = problems

    run, no_archive = figures["run"], figures["run_no_archive"]
    raw = run["sizes"]["raw"]
    fetched, articles = run["items"]["fetched"], run["items"]["articles"]
    figures["archive"] = {
        "bytes": raw, "files": run["sizes"]["raw_files"],
        "per_1000_pages_fetched": raw * 1000 / fetched if fetched else None,
        "per_1000_articles": raw * 1000 / articles if articles else None,
        "to_tables": raw / run["sizes"]["tables_total"] if run["sizes"]["tables_total"] else None,
        "time_ratio": run["seconds"] / no_archive["seconds"],
        "cpu_ratio": run["cpu_seconds"] / no_archive["cpu_seconds"],
        "peak_rss_ratio": run["peak_rss_mib"] / no_archive["peak_rss_mib"],
    }
    return figures


def _mib(size: float) -> str:
    return f"{size / 2**20:,.1f} MiB"


def report(figures: dict) -> None:
    run, plain = figures["run"], figures["run_no_archive"]
    items = run["items"]
    print(f"\nrun: {items['seen']:,} items seen, {items['fetched']:,} fetched, "
          f"{items['articles']:,} articles, {items['duplicates']:,} duplicates, {items['rejected']:,} "
          f"rejected (adds up: {run['adds_up']}); "
          f"no-archive run: {plain['items']['articles']:,} articles")
    print(f"{'':40}{'wall s':>9}{'CPU s':>9}{'peak RSS':>10}{'tree RSS':>10}{'changed':>9}{'vs run':>8}")
    rows = (("run (archive on)", run), ("run --no-archive", plain),
            *((f"reprocess {label}", figures[name]) for name, _, label in REPROCESSES))
    for label, row in rows:
        changed = f"{row['summary']['changed']:>9,}" if "summary" in row else f"{'':>9}"
        ratio = row["seconds"] / run["seconds"]
        print(f"  {label:<38}{row['seconds']:9.1f}{row['cpu_seconds']:9.1f}{row['peak_rss_mib']:7.0f} MiB"
              f"{row['tree_rss_mib']:7.0f} MiB{changed}{ratio:8.2f}")
    archive, sized = figures["archive"], run["sizes"]
    print(f"archive: {_mib(archive['bytes'])} in {archive['files']} files; "
          f"{archive['per_1000_pages_fetched'] / 1e6:.2f} MB per 1,000 pages fetched, "
          f"{archive['per_1000_articles'] / 1e6:.2f} MB per 1,000 articles; "
          f"{archive['to_tables']:.1f} x the Parquet tables ({_mib(sized['tables_total'])}: "
          + ", ".join(f"{table} {_mib(size)}" for table, size in sized["tables"].items()) + ")")
    if figures["copies"] == "distinct" and figures["pages"] > figures["corpus_pages"]:
        print(f"  (past the corpus' {figures['corpus_pages']} pages the Parquet tables are flattered: a "
              "page's copies share its publication day, so a file, and compress together; each WARC "
              "record is compressed alone)")
    print(f"archive's cost: run time x {archive['time_ratio']:.2f}, CPU x {archive['cpu_ratio']:.2f}, "
          f"peak RSS x {archive['peak_rss_ratio']:.2f} (against --no-archive)")
    for name, what, label in REPROCESSES:
        summary, after = figures[name]["summary"], figures[name]["tables_after"]
        text = f", text of {summary['text_changed']:,}" if what == "text" else ""
        kept = {name: value for name, value in summary.items() if name.startswith("kept_") and value}
        print(f"reprocess {label}: {summary['articles']:,} articles, {summary['changed']:,} changed{text} "
              f"({summary['moved']:,} moved), {summary['days_rewritten']:,} of {summary['days']:,} days "
              f"rewritten ({summary['files_replaced']:,} files -> {summary['files_written']:,})"
              + (f", kept: {kept}" if kept else "")
              + f"; {NEW_ACTOR_ID} named in {after['naming_new_actor']:,} articles")
        changes = summary.get("actors", {})
        if changes:
            shown = sorted(changes.items(), key=lambda item: -abs(item[1]["after"] - item[1]["before"]))[:6]
            print("  actors " + "; ".join(f"{actor} {value['before']:,} -> {value['after']:,}"
                                          for actor, value in shown)
                  + (f"; ... {len(changes) - 6} more" if len(changes) > 6 else ""))
        if summary.get("memory"):
            print(f"  {summary['memory']}")
    for problem in figures["problems"]:
        print(f"PROBLEM: {problem}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=DEFAULT_PAGES,
                        help=f"pages to serve and ingest (default {DEFAULT_PAGES:,}; 300: a smoke run)")
    parser.add_argument("--copies", choices=("distinct", "exact"), default="distinct",
                        help="pages past the corpus: made distinct articles (default) or served "
                             "unchanged, to be dropped as duplicates (as bench_run.py)")
    parser.add_argument("--wide-alias", default="Berlin", metavar="WORD",
                        help="the alias the second tags reprocess also gives the new actor "
                             "(default: Berlin, in some 10%% of the corpus' pages)")
    parser.add_argument("--corpus", type=Path, help="folder of saved .html pages "
                        f"(default: {CORPUS_TAR.name} unpacked into {CORPUS_DIR})")
    parser.add_argument("--work", type=Path, default=WORK, help=f"where the datasets go (default {WORK})")
    parser.add_argument("--keep", action="store_true", help="keep the datasets and logs in --work")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    if args.pages < 1:
        parser.error("--pages must be at least 1")
    folder = corpus_folder(args.corpus)
    work = args.work / f"pages-{args.pages}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    started = time.perf_counter()
    try:
        figures = bench(folder, args.pages, args.copies, work, args.wide_alias)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    figures["bench_seconds"] = time.perf_counter() - started
    report(figures)
    print(f"(all of it: {figures['bench_seconds']:.0f} s{'; kept in ' + str(work) if args.keep else ''})")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()

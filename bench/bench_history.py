"""How a run's cost grows with the dataset's history.

A run every 15 minutes adds some 30 small files; a year of them is about a
million (10 GiB). A run bringing 10 new articles should cost the same on a
dataset a day, a month or a year deep (GitHub issue: "a run's cost must not
grow with the dataset's history"). For each history size (`--runs N`: N
runs, 15 minutes apart, ending an hour ago) this script:

  1. synthesises the history, in the writer's layout and schemas, as those
     runs would have written it: per run one file per (table, partition) it
     touches, `part-<run id>-00000.parquet`; about 2,000 articles a day,
     25% of items duplicates (url/exact/near, pointing at stored articles)
     and 5% rejects; in worker processes (a year: 10-13 minutes on two
     cores, and a few more to delete). The history is kept pristine beside
     the dataset that is measured (a hard-linked copy), so `--keep` and
     `--reuse` measure the same start again;
  2. builds the dataset memory, `news-ingest memory --rebuild` (the one-time
     upgrade cost), where that command exists;
  3. measures one real `news-ingest run` bringing 10 new articles from a
     loopback site served by another process (--repeat times, each with 10
     articles of its own; the least CPU is kept): wall time, CPU (user + sys),
     peak RSS, and the Parquet files it opened -- counted twice: by an audit
     hook in the run's process (Python's opens, Beam's FileSystems) and by
     the kernel (inotify on the dataset's folders: any process, C++ readers
     such as Arrow's and DuckDB's included);
  4. times the readers: `news-ingest report` and two DuckDB queries (articles
     per actor per day; articles about ISIS in a month, the README's join);
  5. compacts (`news-ingest compact`, where it exists), counts files again,
     and repeats 3 and 4.

The same 10-article run over an empty dataset is the baseline: each run's
CPU is also given as a multiple of it. Every command runs in a process of
its own, after the others, with the page cache warm (the history was just
written): what a run every 15 minutes on a busy machine sees.

    make bench-history                              # 1, 2880 (a month), 35040 (a year) runs
    make bench-history HISTORY_ARGS="--runs 2880"   # one size
    .venv/bin/python bench/bench_history.py --runs 96 --keep --json /tmp/history.json
    .venv/bin/python bench/bench_history.py --runs 35040 --synthesise-only

Data goes to --work (default /tmp/news-ingest-history, a folder per size),
deleted after measuring unless --keep; --reuse takes a complete history left
there by an earlier --keep.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import email.utils
import hashlib
import json
import multiprocessing
import os
import random
import select
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schemas import load_data  # noqa: E402
from schemas.tables import ARTICLES, DUPLICATES, MENTIONS, REJECTS  # noqa: E402
from tests.loopback import LoopbackSite, rss  # noqa: E402

TABLES = {"articles": ARTICLES, "mentions": MENTIONS, "duplicates": DUPLICATES, "rejects": REJECTS}
RUN_EVERY = timedelta(minutes=15)
DEFAULT_RUNS = (1, 2880, 35040)  # one run, a month of runs, a year of runs
ARTICLES_PER_RUN = 2000 / 96  # about 2,000 new articles a day
# Of the items a run accounts for, 25% are duplicates and 5% rejects; the rest (70%) articles.
DUPLICATES_PER_RUN = ARTICLES_PER_RUN * 0.25 / 0.70
REJECTS_PER_RUN = ARTICLES_PER_RUN * 0.05 / 0.70
NEW_ARTICLES = 10
RUNS_PER_JOB = 200
MARK = "BENCH_HISTORY "  # the line a measured child prints its own figures on (stderr)


# --------------------------------------------------------------------------------------------
# 1. The history: what N runs of the writer would have left.

WORDS = ("the a of in on at to and for with from by near after before during while as that this "  # noqa: SIM905
         "forces fighters militia army troops rebels coalition regime government officials residents "
         "civilians families villages town city border road river bridge checkpoint base airport "
         "province district east west north south northern eastern southern western said reported "
         "told announced denied claimed confirmed killed wounded displaced captured seized shelled "
         "attacked withdrew advanced clashed struck bombed evacuated fled returned agreed negotiated "
         "monday tuesday wednesday thursday friday saturday sunday morning night week month "
         "ceasefire truce talks agreement aid convoy camp hospital school market mosque oil field "
         "dozens hundreds thousands several two three four five people children women men fighters "
         "observatory monitor agency statement spokesman commander source sources local activists "
         "drone airstrike raid offensive ambush attack battle fighting shelling strikes operation").split()
SOURCES = tuple(f"news{number}.example" for number in range(120))
LANGUAGES = ("en",) * 8 + ("ar", "fr", "de", "tr")
EVENT_TYPES = ("armed-clash", "airstrike", "arms-transfer", "relocation-displacement", "statement",
               "agreement", "humanitarian")
CLUTTER = ("share-buttons", "newsletter", "related-links", "section", "dateline", "site-template")
REJECTS_KINDS = (("fetch", "timeout", None), ("fetch", "http-status", 404), ("fetch", "http-status", 503),
                 ("fetch", "too-large", None), ("clean", "too-short", None), ("clean", "parse", None),
                 ("item", "no-link", None), ("feed", "parse", None))
REJECTS_WEIGHTS = (25, 20, 10, 5, 20, 8, 10, 2)


def article_id_of(canonical_url: str) -> str:
    """The project's id of an already canonical URL (`transforms.urls.url_id`, without parsing it)."""
    return hashlib.blake2b(canonical_url.encode("utf-8"), digest_size=8).hexdigest()


def history_times(runs: int, now: datetime) -> tuple[datetime, datetime]:
    """(first, last) run slot: `runs` runs 15 minutes apart, the last about an hour before `now`."""
    last = now.replace(second=0, microsecond=0) - timedelta(hours=1)
    last -= timedelta(minutes=last.minute % 15)
    return last - (runs - 1) * RUN_EVERY, last


@dataclass
class Job:
    folder: str
    first_slot: datetime
    start: int  # first run number of the job
    count: int
    seed: int
    actors: tuple[str, ...]


class _Partitions:
    """Writes one file per (table, partition) of a run, as the writer names them."""

    def __init__(self, folder: Path):
        self.folder, self.made = folder, set()
        self.files, self.rows, self.bytes = Counter(), Counter(), 0

    def write(self, table: str, rows: pa.Table, keys: list[tuple[str, ...]], run_id: str) -> None:
        """Write `rows` (keys[i]: the partition of row i, (date,) or (date, actor))."""
        order = sorted(range(len(keys)), key=keys.__getitem__)
        if order != list(range(len(keys))):
            rows = rows.take(pa.array(order, pa.int32()))  # each partition's rows together: slices
        start = 0
        while start < len(order):
            key = keys[order[start]]
            end = start + 1
            while end < len(order) and keys[order[end]] == key:
                end += 1
            directory = os.path.join(self.folder, table, f"date={key[0]}",
                                     *(f"actor={actor}" for actor in key[1:]))
            if directory not in self.made:
                os.makedirs(directory, exist_ok=True)
                self.made.add(directory)
            path = os.path.join(directory, f"part-{run_id}-00000.parquet")
            pq.write_table(rows.slice(start, end - start), path, compression="zstd")
            self.files[table] += 1
            self.rows[table] += end - start
            self.bytes += os.stat(path).st_blocks * 512
            start = end


def _texts(rng: random.Random, count: int) -> list[tuple[str, int, list[str]]]:
    """(text, word count, figures) of `count` texts of 150-300 words from a small vocabulary."""
    texts = []
    for _ in range(count):
        words = rng.choices(WORDS, k=rng.randint(150, 300))
        figures = sorted({str(rng.randint(10, 999)) for _ in range(rng.randint(0, 4))})
        for figure in figures:
            words[rng.randrange(len(words))] = figure
        paragraphs = [" ".join(words[start:start + 60]).capitalize() + "."
                      for start in range(0, len(words), 60)]
        texts.append(("\n\n".join(paragraphs), len(words), figures))
    return texts


def _synthesise_job(job: Job) -> tuple[Counter, Counter, int]:
    """Write runs job.start .. job.start + job.count - 1; (files, rows per table, bytes on disk)."""
    rng = random.Random(job.seed * 1_000_003 + job.start)
    generator = np.random.default_rng([job.seed, job.start])
    out = _Partitions(Path(job.folder))
    texts = _texts(rng, 512)
    actors = job.actors
    weights = [1 / (rank + 1) for rank in range(len(actors))]  # a few actors dominate, as in news
    recent: list[tuple[str, str, str]] = []  # (id, canonical URL, source) of articles stored lately
    for number in range(job.start, job.start + job.count):
        started = job.first_slot + number * RUN_EVERY + timedelta(seconds=rng.randint(0, 20))
        run_id = f"{started:%Y%m%dT%H%M%SZ}-{rng.getrandbits(24):06x}"
        count = int(generator.poisson(ARTICLES_PER_RUN))
        stored, keys, mention_rows, mention_keys = [], [], [], []
        columns: dict[str, list] = {name: [] for name in ARTICLES.names}
        for index in range(count):
            fetched = started + timedelta(seconds=rng.uniform(2, 90))
            moment = fetched - (timedelta(days=rng.randint(1, 4), hours=rng.uniform(0, 12))
                                if rng.random() < 0.08 else timedelta(minutes=rng.uniform(1, 240)))
            source = rng.choice(SOURCES)
            slug = "-".join(rng.choices(WORDS[20:], k=4))
            canonical = f"https://{source}/{moment:%Y/%m/%d}/{slug}-{number:06d}{index:03d}"
            url = canonical + ("?utm_source=rss&utm_medium=feed" if rng.random() < 0.2 else "")
            article_id = article_id_of(canonical)
            named = ([] if rng.random() < 0.12 else
                     list(dict.fromkeys(rng.choices(actors, weights, k=rng.randint(1, 3)))))
            primary = named[0] if named else "none"
            text, word_count, figures = rng.choice(texts)
            row = {
                "article_id": article_id, "url": url, "canonical_url": canonical, "source": source,
                "feed_url": f"https://{source}/feed", "title": " ".join(rng.choices(WORDS[20:], k=8)).title(),
                "text": text, "published_at": moment,
                "date_source": rng.choices(("feed", "page", "fetched"), (70, 25, 5))[0],
                "fetched_at": fetched, "language": rng.choice(LANGUAGES),
                "language_confidence": rng.uniform(0.8, 1.0), "actors": sorted(named),
                "primary_actor": primary,
                "event_types": sorted(set(rng.choices(EVENT_TYPES, k=rng.randint(0, 2)))),
                "content_hash": f"{rng.getrandbits(128):032x}", "word_count": word_count,
                "authors": rng.choice(([], ["Staff"], ["A. Writer"], ["A. Writer", "B. Reporter"])),
                "section": rng.choice((None, "Middle East", "Middle East › War", "World")),
                "clutter_removed": rng.choices(CLUTTER, k=rng.randint(0, 3)), "run_id": run_id,
                "minhash": None, "numbers": figures}
            for name, value in row.items():
                columns[name].append(value)
            stored.append((article_id, canonical, source))
            keys.append((f"{moment:%Y-%m-%d}", primary))
            for position, actor in enumerate(named):
                mention_rows.append({"article_id": article_id,
                                     "count": rng.randint(3, 8) if position == 0 else rng.randint(1, 3),
                                     "in_title": rng.random() < (0.5 if position == 0 else 0.1),
                                     "is_primary": position == 0, "published_at": moment, "run_id": run_id})
                mention_keys.append((f"{moment:%Y-%m-%d}", actor))
        if count:
            signatures = generator.integers(0, 2**32, size=count * 128, dtype=np.uint32)
            columns["minhash"] = pa.ListArray.from_arrays(
                pa.array(np.arange(0, count * 128 + 1, 128, dtype=np.int32)), pa.array(signatures))
            out.write("articles", pa.table(columns, schema=ARTICLES), keys, run_id)
            out.write("mentions", pa.Table.from_pylist(mention_rows, schema=MENTIONS), mention_keys, run_id)
        recent = (recent + stored)[-2000:]
        detected = started + timedelta(seconds=rng.uniform(30, 120))
        copies = int(generator.poisson(DUPLICATES_PER_RUN)) if recent else 0
        rows, keys = [], []
        for _ in range(copies):
            method = rng.choices(("url", "exact", "near"), (40, 35, 25))[0]
            # mostly copies of this run's stories, some of earlier ones
            original, canonical, source = rng.choice(stored if stored and rng.random() < 0.6 else recent)
            moment = None if rng.random() < 0.1 else detected - timedelta(minutes=rng.uniform(1, 600))
            if method == "url":  # the kept article's URL in another form: the same canonical URL and id
                url, own_id = canonical.replace("https://", "http://www.") + "?utm_campaign=social", original
            else:  # the story on another site
                source = rng.choice(SOURCES)
                url = f"https://{source}/{(moment or detected):%Y/%m/%d}/copy-{rng.getrandbits(40):010x}"
                own_id = article_id_of(url)
            rows.append({"article_id": own_id, "url": url,
                         "source": source, "feed_url": f"https://{source}/feed", "published_at": moment,
                         "duplicate_of": original, "method": method,
                         "similarity": 1.0 if method != "near" else rng.uniform(0.7, 0.98),
                         "detected_at": detected, "run_id": run_id})
            keys.append((f"{moment or detected:%Y-%m-%d}",))
        if rows:
            out.write("duplicates", pa.Table.from_pylist(rows, schema=DUPLICATES), keys, run_id)
        rows = []
        for _ in range(int(generator.poisson(REJECTS_PER_RUN))):
            stage, error, status = rng.choices(REJECTS_KINDS, REJECTS_WEIGHTS)[0]
            source = rng.choice(SOURCES)
            rows.append({"stage": stage, "url": f"https://{source}/{rng.getrandbits(40):010x}",
                         "feed_url": f"https://{source}/feed", "error_type": error,
                         "message": f"{error} {status or ''}".strip(), "http_status": status,
                         "rejected_at": detected, "run_id": run_id})
        if rows:
            out.write("rejects", pa.Table.from_pylist(rows, schema=REJECTS),
                      [(f"{detected:%Y-%m-%d}",)] * len(rows), run_id)
    return out.files, out.rows, out.bytes


def synthesise(folder: Path, runs: int, seed: int, workers: int, now: datetime) -> dict:
    """Write the history of `runs` runs into `folder` (in worker processes); its figures."""
    started = time.perf_counter()
    actors = tuple(actor["id"] for actor in load_data("gazetteer.yaml")["actors"])
    first, last = history_times(runs, now)
    jobs = [Job(str(folder), first, start, min(RUNS_PER_JOB, runs - start), seed, actors)
            for start in range(0, runs, RUNS_PER_JOB)]
    files, rows, size = Counter(), Counter(), 0
    # spawn: the workers start clean (no copy of this process's Arrow threads).
    with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        for done, (job_files, job_rows, job_bytes) in enumerate(pool.imap_unordered(_synthesise_job, jobs),
                                                                start=1):
            files += job_files
            rows += job_rows
            size += job_bytes
            if len(jobs) > 4 and done % max(1, len(jobs) // 10) == 0:
                print(f"    {done * 100 // len(jobs):3d}%  {sum(files.values()):,} files  "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
    (folder / "_state").mkdir(parents=True, exist_ok=True)
    return {"runs": runs, "seed": seed, "first_run": first.isoformat(), "last_run": last.isoformat(),
            "files": {table: files[table] for table in TABLES},
            "rows": {table: rows[table] for table in TABLES},
            "bytes": size, "seconds": round(time.perf_counter() - started, 1)}


# --------------------------------------------------------------------------------------------
# Counting the dataset's files.

def dataset_files(folder: Path) -> dict:
    """Parquet files per table, partitions, the most files in one partition, bytes on disk."""
    files, partitions, most, size = Counter(), Counter(), Counter(), 0
    for table in TABLES:
        for directory, _, names in os.walk(folder / table):
            parquet = [name for name in names if name.endswith(".parquet")]
            if parquet:
                files[table] += len(parquet)
                partitions[table] += 1
                most[table] = max(most[table], len(parquet))
                size += sum(os.stat(os.path.join(directory, name)).st_blocks * 512 for name in parquet)
    return {"files": {table: files[table] for table in TABLES},
            "partitions": {table: partitions[table] for table in TABLES},
            "max_per_partition": {table: most[table] for table in TABLES}, "bytes": size}


def dataset_folders(folder: Path) -> list[str]:
    """Every folder of the dataset's tables and state (what OpenWatch watches)."""
    return [directory for part in (*TABLES, "_state") for directory, _, _ in os.walk(folder / part)]


# --------------------------------------------------------------------------------------------
# Measuring a command in a process of its own.

# `python -c _CLI DATASET ARGS...` runs the CLI with ARGS in this process, counting what
# it opens through Python (audit hook: builtins.open, io.open, os.open -- Beam's
# FileSystems among them; not Arrow's or DuckDB's own C++ opens) and the folders of
# DATASET it lists (imports list folders too: those are left out); at exit prints those
# counts and the process's own high-water RSS (VmHWM: ru_maxrss would count the
# parent's pages too, as Linux keeps the forked copy's peak across exec).
_CLI = r"""
import atexit, itertools, json, os, sys
dataset = os.path.join(sys.argv.pop(1), "")
opens, listings, parquet = itertools.count(), itertools.count(), []
def hook(event, args):
    if event == "open":
        next(opens)
        path = args[0]
        if isinstance(path, bytes):
            path = path.decode("utf-8", "replace")
        if isinstance(path, str) and path.endswith(".parquet"):
            parquet.append(path)
    elif event in ("os.scandir", "os.listdir") and args[0] is not None and not isinstance(args[0], int):
        if os.path.join(os.fsdecode(args[0]), "").startswith(dataset):
            next(listings)
sys.addaudithook(hook)
def report():
    hwm = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
    print("MARK" + json.dumps({"opens": next(opens), "listings": next(listings),
                               "parquet_opens": len(parquet), "parquet_files": len(set(parquet)),
                               "peak_mib": int(hwm) / 1024}), file=sys.stderr, flush=True)
atexit.register(report)
from pipelines.cli import main
sys.exit(main(sys.argv[1:]))
""".replace("MARK", MARK)

# One DuckDB query: the rows it returns, its own seconds and the process's peak.
_QUERY = r"""
import json, sys, time
import duckdb
started = time.perf_counter()
rows = duckdb.connect().execute(sys.argv[1]).fetchall()
seconds = time.perf_counter() - started
hwm = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print("MARK" + json.dumps({"rows": len(rows), "query_seconds": seconds, "peak_mib": int(hwm) / 1024}),
      file=sys.stderr, flush=True)
""".replace("MARK", MARK)


@dataclass
class Measure:
    code: int
    wall: float
    cpu: float
    peak_mib: float
    figures: dict = field(default_factory=dict)  # what the child printed on its MARK line
    kernel: dict = field(default_factory=dict)  # Parquet opens the kernel saw (OpenWatch)
    error: str = ""


class OpenWatch:
    """Parquet files opened in the watched folders by any process, as the kernel tells
    (inotify IN_OPEN). Sees the C++ opens the audit hook cannot; a file opened twice in a
    row may be one event, so `files` (distinct) is exact and `opens` a lower bound.
    Folders made after the start (a run's new partitions) are not watched."""

    IN_OPEN, IN_ISDIR, IN_Q_OVERFLOW = 0x20, 0x40000000, 0x4000

    def __init__(self, folders: list[str]):
        self.folders, self.fd = folders, -1
        self.opens, self.names, self.partial, self.overflowed = 0, set(), False, False
        self._stop = threading.Event()

    def __enter__(self) -> OpenWatch:
        if not self.folders:
            return self
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, AttributeError):  # not Linux
            self.fd = -1
        if self.fd < 0:
            return self
        for folder in self.folders:
            if libc.inotify_add_watch(self.fd, os.fsencode(folder), self.IN_OPEN) < 0:
                self.partial = True  # out of watches (fs.inotify.max_user_watches)
                break
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        while True:
            stopping = self._stop.is_set()
            select.select([self.fd], [], [], 0.05)
            try:
                buffer = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                if stopping:
                    return
                continue
            offset = 0
            while offset < len(buffer):
                wd, mask, _, length = struct.unpack_from("iIII", buffer, offset)
                name = buffer[offset + 16:offset + 16 + length].rstrip(b"\0")
                offset += 16 + length
                if mask & self.IN_Q_OVERFLOW:
                    self.overflowed = True
                elif not mask & self.IN_ISDIR and name.endswith(b".parquet"):
                    self.opens += 1
                    self.names.add((wd, name))

    def __exit__(self, *exc) -> None:
        if self.fd >= 0:
            self._stop.set()
            self._thread.join()
            os.close(self.fd)

    def figures(self) -> dict:
        if self.fd < 0:
            return {}
        return {"parquet_files": len(self.names), "parquet_opens": self.opens,
                "partial": self.partial, "overflowed": self.overflowed}


def measure(argv: list[str], log: Path, watch: list[str] | None = None) -> Measure:
    """Run argv (cwd: the repository) with stdout and stderr to `log`.*; its wall time, CPU
    (user + sys, from wait4: this child and what it waited for) and peak RSS."""
    with (open(log.with_suffix(".out"), "wb") as stdout, open(log.with_suffix(".err"), "wb") as stderr,
          OpenWatch(watch or []) as kernel):
        started = time.perf_counter()
        child = subprocess.Popen(argv, cwd=ROOT, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
    lines = log.with_suffix(".err").read_text("utf-8", "replace").splitlines()
    figures = next((json.loads(line[len(MARK):]) for line in reversed(lines) if line.startswith(MARK)), {})
    said = [line for line in lines if line.strip() and not line.startswith(MARK)]
    error = next((line for line in said if "error" in line.lower()), said[-1] if said else "")
    return Measure(child.returncode, wall, usage.ru_utime + usage.ru_stime,
                   figures.get("peak_mib", usage.ru_maxrss / 1024), figures,
                   kernel.figures() if watch else {}, error if child.returncode else "")


def cli(data: Path, *args: str) -> list[str]:
    """`news-ingest ARGS` (working on the dataset `data`) in the counting wrapper."""
    return [sys.executable, "-c", _CLI, str(data), *args]


def has_command(name: str) -> bool:
    """Whether `news-ingest NAME` exists (being written while this benchmark was)."""
    return subprocess.run([sys.executable, "-m", "pipelines.cli", name, "--help"], cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


# --------------------------------------------------------------------------------------------
# 3. The 10 new articles: pages served by a process of its own.

PLACES = ("Deir ez-Zor", "Raqqa", "Idlib", "Aleppo", "Homs", "Palmyra", "Hasakah", "Qamishli", "Manbij",
          "Daraa", "Abu Kamal", "Mayadin", "Sukhnah", "Hajin", "Shaddadi", "Tabqa", "Kobani", "Tal Abyad")
FORCES = ("Islamic State fighters", "ISIS militants", "the Syrian Democratic Forces",
          "Syrian government troops", "Russian warplanes", "the US-led coalition", "Iran-backed militias",
          "Turkish-backed factions")
FIRST = ("Ahmad", "Mahmoud", "Khaled", "Omar", "Hassan", "Yusuf", "Fatima", "Layla", "Rima", "Samir", "Nour",
         "Ibrahim", "Walid", "Hiba", "Tariq", "Zeinab")
LAST = ("al-Khalaf", "al-Hamoud", "Darwish", "al-Ali", "Haddad", "al-Saleh", "Mustafa", "al-Jasim",
        "Qassem", "al-Hussein", "Barakat", "al-Obeid", "Nasser", "al-Fayyad")
ROLES = ("local council member", "farmer", "teacher", "doctor at the main hospital", "shop owner",
         "aid worker", "former fighter", "tribal elder", "journalist", "mechanic")
TARGETS = ("checkpoint", "supply route", "weapons depot", "command post", "oil field", "bridge",
           "grain silo", "water station", "village school", "desert outpost")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ADJECTIVES = ("heavy", "sporadic", "intense", "renewed", "overnight", "fierce", "prolonged", "sudden")
SENTENCES = (
    "{force} attacked positions held by {force2} near {place} on {day}, {person} said.",
    "At least {n} people were killed and {m} wounded when {force} struck a {target} outside {place}.",
    "{person}, a {role} in {place}, said {force} had reached the {target} by {day} evening.",
    "The {adjective} fighting forced {n} families to leave {place} for camps near {place2}.",
    "According to {person}, {force} now control {n} villages east of {place}.",
    "Residents of {place} reported {adjective} shelling for {m} nights in a row.",
    "{force2} said in a statement that {m} of its members died defending the {target}.",
    "Aid groups warned that {n} civilians in {place} had no clean water after the {target} was hit.",
    "Islamic State cells carried out {m} attacks around {place} since the start of the year, {person} said.",
    "A convoy of {n} trucks carrying flour reached {place2} on {day} after a {m}-day delay.",
    "{person}, a {role}, described the road from {place} to {place2} as {adjective} and unsafe.",
    "Officials in Damascus did not comment on the reports from {place}.",
    "The {target} near {place2} changed hands {m} times during the {adjective} week.",
    "{force} brought {n} fighters to the front line south of {place}, {person} told reporters.",
)


def story(rng: random.Random) -> tuple[str, list[str]]:
    """(headline, paragraphs) of a news story of about 400 words on the war in Syria."""
    place, place2 = rng.sample(PLACES, 2)
    force, force2 = rng.sample(FORCES, 2)
    headline = f"{force[0].upper()}{force[1:]} press on near {place} as ISIS attacks rise in Syria"
    lead = (f"{force[0].upper()}{force[1:]} pressed on near {place} in eastern Syria this week, as Islamic "
            f"State attacks on the road to {place2} rose again, {rng.choice(FIRST)} {rng.choice(LAST)} said.")
    sentences, words = [lead], len(lead.split())
    while words < 400:
        sentence = rng.choice(SENTENCES).format(
            force=rng.choice(FORCES), force2=rng.choice(FORCES), place=rng.choice(PLACES),
            place2=rng.choice(PLACES), day=rng.choice(DAYS), n=rng.randint(12, 900), m=rng.randint(2, 40),
            person=f"{rng.choice(FIRST)} {rng.choice(LAST)}", role=rng.choice(ROLES),
            target=rng.choice(TARGETS), adjective=rng.choice(ADJECTIVES))
        sentences.append(sentence[0].upper() + sentence[1:])
        words += len(sentence.split())
    paragraphs = [" ".join(sentences[start:start + 3]) for start in range(0, len(sentences), 3)]
    return headline, paragraphs


def page(url: str, headline: str, paragraphs: list[str], published: datetime, author: str) -> str:
    """A news site's article page: head metadata, navigation, the story, side links and a footer."""
    stamp = published.isoformat(timespec="seconds")
    ld = json.dumps({"@context": "https://schema.org", "@type": "NewsArticle", "headline": headline,
                     "datePublished": stamp, "author": {"@type": "Person", "name": author}})
    body = "\n".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{headline} | Levant Monitor</title>
<meta name="description" content="{paragraphs[0][:150]}">
<meta property="og:title" content="{headline}"><meta property="og:type" content="article">
<meta property="article:published_time" content="{stamp}"><link rel="canonical" href="{url}">
<script type="application/ld+json">{ld}</script></head>
<body><header><a href="/">Levant Monitor</a>
<nav><a href="/world">World</a> <a href="/middle-east">Middle East</a> <a href="/opinion">Opinion</a></nav>
</header>
<main><article><h1>{headline}</h1><p class="byline">By {author}</p>
<time datetime="{stamp}">{published:%d %B %Y %H:%M} UTC</time>
{body}
</article>
<aside><h3>Most read</h3><ul><li><a href="/a">Markets close higher</a></li>
<li><a href="/b">Weather: a cold week ahead</a></li></ul></aside></main>
<footer><p>© Levant Monitor</p><a href="/about">About us</a> <a href="/contact">Contact</a></footer>
</body></html>"""


def new_articles(base: str, batch: int, seed: int) -> tuple[str, list[tuple[str, str, str]]]:
    """(feed path, routes) of one feed listing NEW_ARTICLES new article pages: each batch
    has its own URLs and stories, so every measured run really ingests 10 new articles."""
    rng = random.Random(f"{seed}-{batch}")
    now = datetime.now(UTC).replace(microsecond=0)
    routes, items = [], []
    for number in range(NEW_ARTICLES):
        headline, paragraphs = story(rng)
        path = f"/news/{now:%Y/%m/%d}/b{batch}-{number}-{rng.getrandbits(32):08x}.html"
        published = now - timedelta(minutes=5 + 7 * number)
        author = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        routes.append((path, page(base + path, headline, paragraphs, published, author),
                       "text/html; charset=utf-8"))
        items.append({"title": headline, "link": base + path,
                      "pubDate": email.utils.format_datetime(published)})
    feed = f"/feeds/batch-{batch}.xml"
    routes.append((feed, rss(items, title="Levant Monitor"), "application/rss+xml"))
    return feed, routes


def _serve(channel) -> None:
    """In the server process: one loopback site; add the routes sent, until told to stop."""
    with LoopbackSite("127.0.0.1") as site:
        channel.send(site.base)
        while (message := channel.recv()) != "stop":
            for path, body, content_type in message:
                site.add(path, body, content_type=content_type)
            channel.send("ok")


class Site:
    """The loopback site, in a process of its own (a real site is not the run's work)."""

    def __enter__(self) -> Site:
        self.channel, theirs = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("spawn").Process(target=_serve, args=(theirs,),
                                                                    daemon=True)
        self.process.start()
        theirs.close()
        self.base, self.batches = None, 0
        if self.channel.poll(120):
            with contextlib.suppress(EOFError):  # the server died before it sent anything
                self.base = self.channel.recv()
        if self.base is None:
            self.process.kill()
            raise SystemExit("the loopback site did not start (see the server's error above)")
        return self

    def new_feed(self, seed: int) -> str:
        self.batches += 1
        feed, routes = new_articles(self.base, self.batches, seed)
        self.channel.send(routes)
        self.channel.recv()
        return self.base + feed

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(OSError):
            self.channel.send("stop")
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()


# --------------------------------------------------------------------------------------------
# The bench.

class Bench:
    def __init__(self, args: argparse.Namespace, site: Site):
        self.args, self.site, self.logs = args, site, args.work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.compact_every = True  # pass --compact-every 0 to runs, until a run refuses it
        self.steps = 0

    def log(self, name: str) -> Path:
        self.steps += 1
        return self.logs / f"{self.steps:02d}-{name}"

    def new_runs(self, data: Path) -> dict:
        """--repeat runs, each bringing NEW_ARTICLES new articles into `data`: the figures of
        the one with the least CPU (the others were slowed by something else), with every
        run's wall and CPU seconds."""
        runs = [self.new_run(data) for _ in range(self.args.repeat)]
        best = min(runs, key=lambda figures: (figures["exit"] != 0, figures["cpu_s"]))
        return {**best, "wall_s_all": [run["wall_s"] for run in runs],
                "cpu_s_all": [run["cpu_s"] for run in runs]}

    def new_run(self, data: Path) -> dict:
        """One `news-ingest run` bringing NEW_ARTICLES new articles into `data`."""
        feed = self.site.new_feed(self.args.seed)
        summary_file = self.logs / f"summary-{self.site.batches}.json"
        options = ["--feeds", feed, "--out", str(data), "--allow-private-network", "--per-host", "8",
                   "--host-delay", "0", "--summary-json", str(summary_file)]
        watch = dataset_folders(data) if data.exists() else []
        while True:
            extra = ["--compact-every", "0"] if self.compact_every else []
            result = measure(cli(data, "run", *options, *extra), self.log("run"), watch)
            if self.compact_every and result.code == 2 and "compact-every" in result.error.replace("_", "-"):
                print("    (run does not take --compact-every yet: measured without it)")
                self.compact_every = False
                continue
            break
        figures = describe(result)
        if result.code != 0:
            figures["note"] = f"run failed (exit {result.code}): {result.error}"
        elif not summary_file.exists():
            figures["note"] = "no summary written"
        else:
            items = json.loads(summary_file.read_text())["items"]
            figures["articles_written"] = items["articles"]
            if items["articles"] != NEW_ARTICLES:
                figures["note"] = f"expected {NEW_ARTICLES} articles written, the summary says {items}"
        if "note" in figures:
            print(f"    ! {figures['note']}")
        return figures

    def readers(self, data: Path, month: date) -> dict:
        """The report and two DuckDB queries over `data`."""
        if self.args.skip_readers:
            return {}
        watch = dataset_folders(data)
        figures = {"report": describe(measure(
            cli(data, "report", "-q", "--out", str(data), "--html", str(self.logs / "report.html")),
            self.log("report"), watch))}
        end = (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        for name, sql in queries(data, month, end).items():
            figures[name] = describe(measure([sys.executable, "-c", _QUERY, sql], self.log(name), watch))
        return figures

    def command(self, name: str, data: Path, *args: str) -> dict | None:
        """`news-ingest NAME --out data ...` measured, or None where it does not exist yet."""
        if not has_command(name):
            print(f"    (news-ingest {name}: not available in this version, skipped)")
            return None
        return describe(measure(cli(data, name, "--out", str(data), *args), self.log(name),
                                dataset_folders(data)))

    def baseline(self) -> dict:
        """The same 10-article run, and the readers, over an empty dataset."""
        data, warm_up = self.args.work / "empty", self.args.work / "warm-up"
        shutil.rmtree(data, ignore_errors=True)
        print("warm-up: one run, not measured (the first run reads Python and Beam from disk)", flush=True)
        self.new_run(warm_up)
        shutil.rmtree(warm_up, ignore_errors=True)
        print("baseline: a run bringing 10 articles into an empty dataset", flush=True)
        figures = {"run": self.new_runs(data)}
        figures.update(self.readers(data, datetime.now(UTC).date().replace(day=1)))
        figures["dataset"] = dataset_files(data)
        if not self.args.keep:
            shutil.rmtree(data, ignore_errors=True)
        return figures

    def size(self, runs: int) -> dict:
        folder = self.args.work / f"runs-{runs}"
        history, data = folder / "history", folder / "data"
        synthesis = prepare_history(self.args, runs)
        result = {"runs": runs, "synthesis": synthesis}
        if self.args.synthesise_only:
            return result
        started = time.perf_counter()
        shutil.rmtree(data, ignore_errors=True)
        clone(history, data)
        result["clone_seconds"] = round(time.perf_counter() - started, 1)
        month = datetime.fromisoformat(synthesis["last_run"]).date().replace(day=1)

        print("  memory: news-ingest memory --rebuild", flush=True)
        result["memory"] = self.command("memory", data, "--rebuild")
        print("  before compact: run, readers", flush=True)
        result["before"] = {"run": self.new_runs(data), **self.readers(data, month),
                            "dataset": dataset_files(data)}
        print("  compact: news-ingest compact", flush=True)
        result["compact"] = self.command("compact", data)
        if result["compact"] is not None:
            result["compacted"] = dataset_files(data)
            print("  after compact: run, readers", flush=True)
            result["after"] = {"run": self.new_runs(data), **self.readers(data, month),
                               "dataset": dataset_files(data)}
        return result


def prepare_history(args: argparse.Namespace, runs: int) -> dict:
    """The pristine history of `runs` runs: reused (--reuse) when complete, else written."""
    folder = args.work / f"runs-{runs}"
    history, marker = folder / "history", folder / "synthesis.json"
    if args.reuse and marker.exists():
        synthesis = json.loads(marker.read_text())
        found = dataset_files(history)["files"]
        if all(found[table] == synthesis["files"].get(table, 0) for table in TABLES):
            print(f"history of {runs_text(runs)}: reusing {history}", flush=True)
            return {**synthesis, "reused": True}
        print(f"history of {runs_text(runs)} in {history} is not complete ({found}): writing it again")
    shutil.rmtree(folder, ignore_errors=True)
    print(f"history of {runs_text(runs)}: synthesising into {history} ({args.workers} processes)",
          flush=True)
    synthesis = synthesise(history, runs, args.seed, args.workers, datetime.now(UTC))
    marker.write_text(json.dumps(synthesis, indent=2))
    return {**synthesis, "reused": False}


def queries(data: Path, first: date, last: date) -> dict[str, str]:
    def table(name: str) -> str:
        pattern = str(data / name / "**" / "*.parquet").replace("'", "''")
        return f"read_parquet('{pattern}', hive_partitioning=true)"

    return {
        "query_per_actor_day": f"select date, actor, count(*) from {table('articles')} group by all",
        "query_actor_month": (
            f"select a.date, a.source, a.title, m.count as mentions, m.in_title "
            f"from {table('mentions')} m join {table('articles')} a using (article_id) "
            f"where m.actor = 'isis' and m.date between '{first}' and '{last}' order by a.date"),
    }


def describe(result: Measure) -> dict:
    figures = {"exit": result.code, "wall_s": round(result.wall, 2), "cpu_s": round(result.cpu, 2),
               "peak_mib": round(result.peak_mib)}
    for name in ("parquet_files", "parquet_opens", "opens", "listings", "rows", "query_seconds"):
        if name in result.figures:
            figures[name] = round(result.figures[name], 2)
    if result.kernel:
        figures["kernel"] = result.kernel
    if result.code:
        figures["error"] = result.error
    return figures


def clone(source: Path, target: Path) -> None:
    """A copy of the history sharing its files (hard links): the project replaces files by
    renaming, never rewrites one, so the pristine history stays as written."""
    if shutil.which("cp") and sys.platform.startswith("linux"):
        subprocess.run(["cp", "-al", str(source), str(target)], check=True)
    else:
        shutil.copytree(source, target, copy_function=os.link)


# --------------------------------------------------------------------------------------------
# Printing.

def runs_text(runs: int) -> str:
    return f"{runs:,} run{'s' if runs != 1 else ''}"


def mib(size: float) -> str:
    return f"{size / 2**20:,.0f} MiB" if size < 2**30 else f"{size / 2**30:,.2f} GiB"


def print_synthesis(synthesis: dict) -> None:
    runs = synthesis["runs"]
    how = "reused" if synthesis.get("reused") else f"synthesised in {synthesis['seconds']:.1f} s"
    print(f"  history: {runs_text(runs)} ({runs / 96:,.1f} days, "
          f"{synthesis['first_run'][:16]} to {synthesis['last_run'][:16]} UTC), {how}, "
          f"{mib(synthesis['bytes'])} on disk")
    for table in TABLES:
        print(f"    {table:<11} {synthesis['files'].get(table, 0):>9,} files "
              f"{synthesis['rows'].get(table, 0):>11,} rows")
    print(f"    {'all':<11} {sum(synthesis['files'].values()):>9,} files "
          f"{sum(synthesis['rows'].values()):>11,} rows")


def _cell(figures: dict | None, *path: str) -> str:
    value = figures
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return "-"
        value = value[key]
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _kernel(figures: dict | None) -> str:
    kernel = (figures or {}).get("kernel")
    if not kernel:
        return "-"
    missed = "+" if kernel.get("overflowed") or kernel.get("partial") else ""
    return f"{kernel['parquet_files']:,}{missed}"


def _ratio(figures: dict | None, base: dict) -> str:
    if not figures or not base["run"]["cpu_s"]:
        return "-"
    return f"{figures['run']['cpu_s'] / base['run']['cpu_s']:.2f}x"


def _two(figures: dict | None, step: str, first: str, second: str) -> str:
    """'first / second' of a step's figures ('files': the Parquet files the kernel saw opened)."""
    step_figures = (figures or {}).get(step)
    right = _kernel(step_figures) if second == "files" else _cell(step_figures, second)
    return f"{_cell(step_figures, first)} / {right}"


TABLE_ROWS = (  # (label, cell of a column's figures, given the baseline's)
    ("run of 10 new articles (least CPU of --repeat)", lambda col, base: ""),
    ("  wall s", lambda col, base: _cell(col, "run", "wall_s")),
    ("  CPU s (user + sys)", lambda col, base: _cell(col, "run", "cpu_s")),
    ("  CPU / CPU over the empty dataset", _ratio),
    ("  peak RSS MiB", lambda col, base: _cell(col, "run", "peak_mib")),
    ("  parquet files opened: python/kernel", lambda col, base: _two(col, "run", "parquet_files", "files")),
    ("  all opens / dataset folders listed", lambda col, base: _two(col, "run", "opens", "listings")),
    ("  articles written", lambda col, base: _cell(col, "run", "articles_written")),
    ("report: wall s / CPU s", lambda col, base: _two(col, "report", "wall_s", "cpu_s")),
    ("  peak RSS MiB / parquet files opened", lambda col, base: _two(col, "report", "peak_mib", "files")),
    ("per actor per day: wall s / query s",
     lambda col, base: _two(col, "query_per_actor_day", "wall_s", "query_seconds")),
    ("  peak RSS MiB / parquet files opened",
     lambda col, base: _two(col, "query_per_actor_day", "peak_mib", "files")),
    ("ISIS in a month: wall s / query s",
     lambda col, base: _two(col, "query_actor_month", "wall_s", "query_seconds")),
    ("  peak RSS MiB / parquet files opened",
     lambda col, base: _two(col, "query_actor_month", "peak_mib", "files")),
    *((f"files: {table} (most in a partition)", lambda col, base, table=table: (
        f"{_cell(col, 'dataset', 'files', table)} ({_cell(col, 'dataset', 'max_per_partition', table)})"))
      for table in TABLES),
)


def print_table(baseline: dict, result: dict) -> None:
    """Figures over the empty dataset, and over the history before and after compact, side by side."""
    columns = [("empty dataset", baseline), ("before compact", result.get("before"))]
    if result.get("after"):
        columns.append(("after compact", result["after"]))
    print(f"  {'':<38}" + "".join(f"{name:>19}" for name, _ in columns))
    for label, cell in TABLE_ROWS:
        cells = [cell(figures, baseline) for _, figures in columns]
        if not any(cells):  # a heading
            print(f"  {label}")
        elif any(value not in ("-", "- / -") for value in cells):  # skipped steps get no row
            print(f"  {label:<38}" + "".join(f"{value:>19}" for value in cells))
    print("  (Parquet files opened: python = through Python's open (audit hook); kernel = distinct files\n"
          "   opened in the dataset's folders seen by inotify, C++ readers included ('+': some missed;\n"
          "   '-': nothing to watch). Files of the tables are counted after the run.)")
    for step in ("memory", "compact"):
        figures = result.get(step)
        if figures is None:
            print(f"  {step}: not available in this version")
            continue
        failed = f"  FAILED (exit {figures['exit']}): {figures.get('error', '')}" if figures["exit"] else ""
        print(f"  {step}: wall {figures['wall_s']:.1f} s, CPU {figures['cpu_s']:.1f} s, peak RSS "
              f"{figures['peak_mib']:,} MiB, parquet files opened {_cell(figures, 'parquet_files')} "
              f"(python) / {_kernel(figures)} (kernel){failed}")
    if result.get("compacted"):
        files = result["compacted"]
        counts = ", ".join(f"{table} {files['files'][table]:,}" for table in TABLES)
        print(f"  files right after compact: {counts}; at most "
              f"{max(files['max_per_partition'].values())} in a partition")


# --------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--runs", type=int, action="append", metavar="N",
                        help=f"history size in runs, 15 minutes apart (repeatable; default "
                             f"{' '.join(map(str, DEFAULT_RUNS))})")
    parser.add_argument("--work", type=Path, default=Path("/tmp/news-ingest-history"),
                        help="where the data goes, a folder per size (default /tmp/news-ingest-history)")
    parser.add_argument("--reuse", action="store_true", help="reuse a complete history left in --work")
    parser.add_argument("--keep", action="store_true",
                        help="keep the data (default: deleted after measuring)")
    parser.add_argument("--skip-readers", action="store_true", help="do not time the report and the queries")
    parser.add_argument("--synthesise-only", action="store_true",
                        help="only write the histories (and print their figures)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes writing the history (default: one per core)")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="measure each 10-article run N times, keep the one with the least CPU "
                             "(default 3)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    args.work = args.work.resolve()
    sizes = args.runs or list(DEFAULT_RUNS)
    if min(sizes) < 1 or args.repeat < 1:
        parser.error("--runs and --repeat must be at least 1")
    args.work.mkdir(parents=True, exist_ok=True)
    check_ids()

    figures: dict = {}
    with contextlib.ExitStack() as stack:
        bench = None
        if not args.synthesise_only:
            bench = Bench(args, stack.enter_context(Site()))
            figures["baseline"] = bench.baseline()
            run = figures["baseline"]["run"]
            print(f"  run over the empty dataset: wall {run['wall_s']:.2f} s, CPU {run['cpu_s']:.2f} s "
                  f"(least of {', '.join(map(str, run['cpu_s_all']))}), peak RSS {run['peak_mib']} MiB")
        figures["sizes"] = []
        for runs in sizes:
            folder = args.work / f"runs-{runs}"
            try:
                result = (bench.size(runs) if bench else
                          {"runs": runs, "synthesis": prepare_history(args, runs)})
                figures["sizes"].append(result)
                print(f"\n{runs_text(runs)} of history")
                print_synthesis(result["synthesis"])
                if bench:
                    print(f"  (measured on a hard-linked copy, made in {result['clone_seconds']:.1f} s)")
                    print_table(figures["baseline"], result)
                print(flush=True)
            finally:
                if not args.keep:
                    shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
        print(f"figures written to {args.json}")
    if not args.keep:
        shutil.rmtree(args.work / "logs", ignore_errors=True)
        with contextlib.suppress(OSError):
            args.work.rmdir()  # only when empty: it may hold what an earlier --keep left


def check_ids() -> None:
    """The synthetic ids are the project's: url_id of the canonical URL (when it imports)."""
    try:
        from transforms.urls import url_id
    except Exception as error:  # the module being edited: say so, go on
        print(f"(could not check ids against transforms.urls.url_id: {error})")
        return
    url = "https://news1.example/2024/01/02/forces-said-000001002"
    if url_id(url) != article_id_of(url):
        raise SystemExit("synthetic article ids differ from transforms.urls.url_id: fix article_id_of")


if __name__ == "__main__":
    main()


"""`news-ingest verify`: a dataset checked as fsck checks a disk; `--repair`
does what the next run would.

A dataset lives for years through crashes, full disks and copies by hand,
and every later run, reader and `report` trusts it. `verify` reads every
table file whole (footer and every row group) and every state file a run
reads, and looks for what readers cannot see for themselves: commits a crash
interrupted, hidden files it left, files outside the writer's layout,
partition folders whose values or rows disagree, copies pointing at no
stored article, URLs stored twice. It prints one line per kind of problem
(a count and a few examples) and exits 1 when there is any.

It holds the run lock while it reads (a run writing meanwhile would look
like damage) but, unlike a run's start, changes nothing: what a crash left
is reported, and a lock file a crashed holder left stays, so the next run
still cleans up after it. `--repair` does what that next run would do and
no more -- rolls interrupted commits forward, removes hidden leftovers,
moves unreadable files to the quarantine, sets a damaged feed state aside,
rebuilds a damaged memory, and salvages a damaged articles or duplicates
file as a run's rebuild does (its readable rows kept, its lost articles'
mentions taken out, any file of another schema in those tables set aside)
-- then checks again. Otherwise it never moves a readable file nor rewrites
a row: dangling copies, URLs stored twice, stray files, files of another
schema and misplaced partitions are for a person to judge.

Memory stays flat whatever the dataset's size: files are read one row group
at a time, and only the identity columns (url, article_id, duplicate_of) go
on, into a DuckDB database on temporary disk that spills past its limit.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from schemas.layout import (
    BOILERPLATE,
    COMMITS,
    COMPACT_STAGING,
    FEED_STATE,
    RAW,
    STATE,
    TEMPLATES,
    hidden_path,
    matching_files,
    safe_partition_value,
)
from schemas.settings import DedupSettings, MemorySettings, WriteSettings
from schemas.tables import BOILERPLATE_MEMORY, SCHEMAS, TEMPLATE_HISTORY
from transforms.feedstate import DamagedState, load_states, read_states
from transforms.memory import KEYS, MANIFEST, TEXTS, memory_path, read_manifest
from transforms.quarantine import DamagedFile, quarantine, require_regular_file
from transforms.write import read_commit

from .lock import RunLock
from .rebuild import rebuild_memory
from .report import PARTITIONS

# What is printed per kind of problem: a count and this many examples, never a flood.
EXAMPLES = 3
# What DuckDB may hold in memory before it spills to its temporary file: the
# URL checks over a year (millions of rows) then cost disk, not RAM.
DUCKDB_MEMORY = "256MB"
# Threads reading files: Arrow decodes outside the GIL, so files are read
# side by side (two per core: each also waits on the GIL for pyarrow's
# Python part); each holds one row group at a time.
READERS = min(8, 2 * (os.cpu_count() or 1))
# Files handed to the readers at once: results wait in memory until checked.
READ_AHEAD = 256
# Identities gathered before they go into DuckDB: one insert per batch, not
# per file (a year of runs leaves ~870,000 files), and never many small Arrow
# tables waiting (each costs a kilobyte or two whatever its rows).
BATCH_ROWS = 100_000
BATCH_FILES = 1_000

# Kinds of problem, in the order printed.
KINDS = {
    "unreadable": "unreadable table files",
    "schema": "table files of another schema",
    "commits": "interrupted commits",
    "leftovers": "hidden leftovers of interrupted writes",
    "staging": "leftovers of an interrupted compaction",
    "state": "damaged state files",
    "orphans": "files outside the writer's layout",
    "partitions": "partition folders with a bad value",
    "misplaced": "files with rows outside their partition",
    "dangling": "duplicates pointing at no stored article",
    "urls_twice": "article URLs stored twice",
    "ids_twice": "article ids stored twice",
    "url_and_copy": "URLs both an article and a copy of another",
    "mentions_dangling": "mentions of no stored article",
    "mentions_twice": "mentions stored twice (an article and actor)",
}
# What --repair mends, as the next run would; the other kinds are left for a person to judge.
REPAIRED = frozenset({"unreadable", "commits", "leftovers", "staging", "state"})

# The names the writer gives its files: a run's part-<run>-NNNNN, compaction's compacted-<time>-…-NNNNN,
# reprocessing's reprocessed-<time>-…-NNNNN.
_FILE_NAME = re.compile(r"(part|compacted|reprocessed)-[A-Za-z0-9._-]+\.parquet")
# Columns every release wrote: what identifies a table's rows.
REQUIRED = {"articles": ("article_id", "url"), "mentions": ("article_id",),
            "duplicates": ("url", "duplicate_of"), "rejects": ("url",)}
# Columns kept of each row group read: identities for the URL checks, times
# and the primary actor for the partition check (never the texts).
KEPT = {"articles": ("url", "article_id", "published_at", "primary_actor"),
        "mentions": ("article_id", "published_at"),
        "duplicates": ("url", "duplicate_of", "method", "published_at", "detected_at"),
        "rejects": ("rejected_at",)}
_IDENTITIES = {"articles": ("url", "article_id"), "duplicates": ("url", "duplicate_of", "method"),
               "mentions": ("article_id", "actor")}  # a mention's actor: its partition folder
# Across articles and duplicates: (kind, query giving one example text per problem row).
_CROSS_CHECKS = (
    ("dangling", "select d.url || ' -> ' || d.duplicate_of from duplicates d "
                 "anti join articles a on a.article_id = d.duplicate_of"),
    ("urls_twice", "select url from articles group by url having count(*) > 1"),
    ("ids_twice", "select article_id from articles group by article_id having count(*) > 1"),
    # A `url` copy naming the very article its URL is stored as is another feed's listing of it.
    ("url_and_copy", "select d.url || ' -> ' || d.duplicate_of from duplicates d join articles a using (url) "
                     "where not (d.method = 'url' and d.duplicate_of = a.article_id)"),
    # An article lost to damage, then fetched again, once left its first mentions behind.
    ("mentions_dangling", "select m.article_id || ' (' || m.actor || ')' from mentions m "
                          "anti join articles a using (article_id)"),
    ("mentions_twice", "select article_id || ' (' || actor || ')' from mentions group by all "
                       "having count(*) > 1"),
)
_TABLE_COST = ("its {table} rows are no longer in the dataset; the quarantined copy keeps what can "
               "still be read")
_STATE_FILES = (  # (folder, name pattern, schema, what losing it costs)
    (TEMPLATES, "history-*.parquet", TEMPLATE_HISTORY,
     "the site templates earlier runs learned are unavailable; they are learned again from new articles"),
    (BOILERPLATE, "lines-*.parquet", BOILERPLATE_MEMORY,
     "the cross-source boilerplate earlier runs learned is unavailable; it is learned again"),
)
_MEMORY_COST = "the dataset memory is rebuilt from the tables"


class OtherSchema(DamagedFile):
    """A table file that reads, but whose columns are not (a subset of) the current schema's."""


@dataclass
class Finding:
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, example: str, count: int = 1) -> None:
        self.count += count
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)


@dataclass(frozen=True)
class Aside:
    """A damaged file --repair moves to the quarantine, and what that costs."""

    path: str
    error: BaseException  # what reading it raised: the quarantine's warning names it
    cost: str


@dataclass
class Check:
    """What `check_dataset` found, and what --repair works from."""

    out_dir: str
    files: int = 0
    articles: int = 0
    findings: dict[str, Finding] = field(default_factory=dict)
    quarantined: list[Aside] = field(default_factory=list)  # unreadable tables, templates, boilerplate
    memory: list[Aside] = field(default_factory=list)  # damaged memory files: set aside, memory rebuilt
    feeds_damaged: bool = False
    folders: set[str] = field(default_factory=set)  # partition folders already counted

    def found(self, kind: str, example: str, count: int = 1) -> None:
        self.findings.setdefault(kind, Finding()).add(_printable(example), count)

    def found_folder(self, kind: str, folder: str) -> None:
        """A problem of a folder, counted once however many files it holds."""
        if folder not in self.folders:
            self.folders.add(folder)
            self.found(kind, folder)

    @property
    def problems(self) -> int:
        return sum(finding.count for finding in self.findings.values())

    @property
    def status(self) -> int:
        """The exit status: 1 when anything was found."""
        return 1 if self.findings else 0

    @property
    def repairable(self) -> bool:
        return not REPAIRED.isdisjoint(self.findings)

    def lines(self) -> list[str]:
        """One line per kind of problem found."""
        return [f"{label}: {self.findings[kind].count:,}, e.g. {'; '.join(self.findings[kind].examples)}"
                for kind, label in KINDS.items() if kind in self.findings]

    def verdict(self) -> str:
        if self.findings:
            return f"verify: {self.problems:,} problem{'' if self.problems == 1 else 's'}"
        return f"verify: dataset is sound ({self.files:,} files, {self.articles:,} articles)"


def verify(out_dir: str, repair: bool, echo: Callable[[str], None], details: bool = True) -> int:
    """Check the dataset (with `repair`, mend what a run would, and check
    again) holding the run lock; print what was found; the exit status."""
    with RunLock(out_dir, settles=False) as lock, _system_allocator():
        found = check_dataset(out_dir)
        _show(found, echo, details)
        if not repair or not found.findings:
            return found.status
        if not found.repairable:
            echo("repair: nothing it may mend; what is left is for a person to judge")
            return found.status
        for line in repair_dataset(found, lock):
            echo(f"repair: {line}")
        again = check_dataset(out_dir)
        _show(again, echo, details)
        return again.status


@contextlib.contextmanager
def _system_allocator() -> Iterator[None]:
    """Arrow's buffers from the C library's allocator while verifying: the
    default (mimalloc) keeps a heap per reader thread, half again the peak
    RSS on a compacted dataset; the system one gives freed row groups back."""
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _show(found: Check, echo: Callable[[str], None], details: bool) -> None:
    for line in found.lines() if details else ():
        echo(line)
    echo(found.verdict())


def check_dataset(out_dir: str) -> Check:
    """Everything `verify` checks, read only; call holding the run lock."""
    found = Check(out_dir)
    pending = _check_commits(out_dir, found)
    _check_state(out_dir, found, pending)
    with _Identities() as identities, ThreadPoolExecutor(READERS) as readers:
        for table in SCHEMAS:
            placed = ((path, values) for path in _table_files(out_dir, table)
                      if (values := _placed(out_dir, table, path, pending, found)) is not None)
            while chunk := list(itertools.islice(placed, READ_AHEAD)):
                reads = readers.map(_read_table_file, [table] * len(chunk), *zip(*chunk, strict=True))
                for (path, _), read in zip(chunk, reads, strict=True):
                    _check_rows(out_dir, table, path, read, found, identities)
        identities.check(found)
    return found


def _table_files(out_dir: str, table: str) -> Iterator[str]:
    """Every file under a table's folder, hidden ones included; a local
    listing folder by folder, never held whole (a year of runs is ~870,000
    files), an object store's through Beam's match."""
    if "://" in out_dir:
        yield from matching_files(out_dir, table, "**")
        return
    for folder, folders, names in os.walk(os.path.join(out_dir, table)):
        folders.sort()
        yield from (os.path.join(folder, name) for name in sorted(names))


def _relative(out_dir: str, path: str) -> str:
    return path[len(out_dir):].lstrip("/")


def _check_commits(out_dir: str, found: Check) -> set[str]:
    """Commit lists a crash left; the hidden files they are still to publish."""
    pending = set()
    for listing in matching_files(out_dir, *COMMITS, "*.json"):
        try:
            commit = read_commit(out_dir, listing)
        except Exception as error:  # noqa: BLE001 -- any damage: say which and why
            found.found("state", f"{_relative(out_dir, listing)} ({_reason(error)})")
            continue
        waiting = {hidden_path(final) for final in commit["files"] if FileSystems.exists(hidden_path(final))}
        pending |= waiting
        found.found("commits", f"{_relative(out_dir, listing)} ({_plural(len(waiting), 'file')} "
                               f"still hidden)")
    return pending


def _check_state(out_dir: str, found: Check, pending: set[str]) -> None:
    """The feed state, the memory, the learned templates and boilerplate,
    hidden leftovers and a compaction's leftovers under _state (and hidden
    leftovers under raw)."""
    try:
        read_states(out_dir)
    except DamagedState as error:
        found.found("state", f"{'/'.join(FEED_STATE)} ({error})")
        found.feeds_damaged = True
    _check_memory(out_dir, found)
    for folder, pattern, schema, cost in _STATE_FILES:
        for path in matching_files(out_dir, *folder, pattern):
            try:
                _read_whole(path, schema, tuple(schema.names), ())
            except DamagedFile as error:
                found.found("state", f"{_relative(out_dir, path)} ({error})")
                found.quarantined.append(Aside(path, error.__cause__ or error, cost))
    staging = "/".join(COMPACT_STAGING) + "/"
    for path in matching_files(out_dir, STATE, "**"):
        relative = _relative(out_dir, path)
        if relative.startswith(staging):
            found.found("staging", relative)
        elif _is_hidden(path) and path not in pending:
            found.found("leftovers", relative)
    for path in matching_files(out_dir, RAW, "**"):  # the raw archive's unpublished WARC files
        if _is_hidden(path) and path not in pending:
            found.found("leftovers", _relative(out_dir, path))


def _check_memory(out_dir: str, found: Check) -> None:
    """The manifest and every keys and texts file of the dataset memory."""
    manifest = memory_path(out_dir, MANIFEST)
    damaged = []
    if FileSystems.exists(manifest) and read_manifest(out_dir) is None:
        damaged.append((manifest, DamagedFile("not a memory manifest")))
    for kind, schema in (("keys", KEYS), ("texts", TEXTS)):
        for path in matching_files(memory_path(out_dir), kind, "*", "*.parquet"):
            try:
                _read_whole(path, schema, tuple(schema.names), ())
            except DamagedFile as error:
                damaged.append((path, error))
    for path, error in damaged:
        found.found("state", f"{_relative(out_dir, path)} ({error})")
        found.memory.append(Aside(path, error.__cause__ or error, _MEMORY_COST))


def _is_hidden(path: str) -> bool:
    """A writer's file not yet published: `.NAME.inprogress`."""
    name = path.rsplit("/", 1)[-1]
    return name.startswith(".") and name.endswith(".inprogress")


def _placed(out_dir: str, table: str, path: str, pending: set[str], found: Check) -> dict[str, str] | None:
    """Where a file under a table's folder stands: the partition values of a
    data file, else None (and what is wrong with it, if anything, found)."""
    relative = _relative(out_dir, path)
    if _is_hidden(path):
        if path not in pending:
            found.found("leftovers", relative)
        return None
    values = _partition_values(table, relative.split("/")[1:])
    if values is None:
        found.found("orphans", relative)
    elif not all(_valid_value(key, value) for key, value in values.items()):
        found.found_folder("partitions", relative.rsplit("/", 1)[0])
        return None
    return values


@dataclass(frozen=True)
class _Read:
    """What a reader thread took from a data file."""

    rows: int
    misplaced: int  # rows outside the file's partition
    identities: pa.Table | None  # articles and duplicates: the columns the URL checks need


def _read_table_file(table: str, path: str, values: dict[str, str]) -> _Read | DamagedFile:
    """A data file read whole and its rows' partitions checked, or what is
    wrong with it (in a reader thread: the main one only adds up)."""
    try:
        rows = _read_whole(path, SCHEMAS[table], REQUIRED[table], KEPT[table])
    except DamagedFile as error:
        return error
    if table == "mentions":
        rows = rows.append_column("actor", pa.array([values["actor"]] * rows.num_rows, pa.string()))
    identities = rows.select(list(_IDENTITIES[table])) if table in _IDENTITIES else None
    return _Read(rows.num_rows, _misplaced_rows(table, values, rows), identities)


def _check_rows(out_dir: str, table: str, path: str, read: _Read | DamagedFile, found: Check,
                identities: _Identities) -> None:
    """What was read of a data file: its damage, or its partitions and identities."""
    relative = _relative(out_dir, path)
    found.files += 1
    if isinstance(read, DamagedFile):
        found.found("schema" if isinstance(read, OtherSchema) else "unreadable", f"{relative} ({read})")
        if not isinstance(read, OtherSchema):  # a readable file of another schema stays: rows never move
            found.quarantined.append(Aside(path, read.__cause__ or read, _TABLE_COST.format(table=table)))
        return
    if read.misplaced:
        found.found("misplaced", f"{relative} ({read.misplaced:,} of {read.rows:,} rows)")
    if table == "articles":
        found.articles += read.rows
    if read.identities is not None:
        identities.add(table, read.identities)


def _partition_values(table: str, parts: list[str]) -> dict[str, str] | None:
    """{partition: value} of a file in the writer's layout (any values);
    None for anything else: other folders, depths or file names."""
    names = PARTITIONS[table]
    pairs = [part.split("=", 1) for part in parts[:-1]]
    if (len(pairs) != len(names) or any(len(pair) != 2 for pair in pairs)
            or tuple(key for key, _ in pairs) != names or not _FILE_NAME.fullmatch(parts[-1])):
        return None
    return dict(pairs)


def _valid_value(key: str, value: str) -> bool:
    """A value the writer could have made: a real day; an actor as
    `safe_partition_value` leaves it."""
    if key == "date":
        return _day(value) is not None
    return _actor_folder(value) == value


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def _read_whole(path: str, schema: pa.Schema, required: tuple[str, ...], kept: tuple[str, ...]) -> pa.Table:
    """Decode every row group of a Parquet file (that is the check) and keep
    the `kept` columns (null where an older release did not write them).
    DamagedFile when it cannot be decoded whole, OtherSchema when its columns
    are not `schema`'s (a subset holding `required`, each of the same type);
    an error opening it (a permission, I/O) is raised as it is, as runs do."""
    require_regular_file(path)  # a FIFO would block the read forever
    with _opened(path) as source:
        try:
            with pq.ParquetFile(source) as parquet:
                stored = parquet.schema_arrow
                mismatch = _schema_mismatch(stored, schema, required)
                present = [name for name in kept if name in stored.names]
                groups = [parquet.read_row_group(group).select(present)
                          for group in range(parquet.num_row_groups)]
        # Truncated, empty, not Parquet, a damaged page (pyarrow's OSError "Couldn't deserialize thrift").
        except (pa.ArrowException, EOFError, ValueError, OSError) as error:
            raise DamagedFile(_reason(error)) from error
    if mismatch:
        raise OtherSchema(mismatch)
    rows = (pa.concat_tables(groups) if groups
            else pa.schema([schema.field(name) for name in present]).empty_table())
    for name in kept:
        if name not in present:
            rows = rows.append_column(schema.field(name), pa.nulls(rows.num_rows, schema.field(name).type))
    return rows.select(list(kept))


def _opened(path: str):
    """The file opened for pyarrow: a local one natively (read without the GIL), else Beam's stream."""
    return FileSystems.open(path) if "://" in path else pa.OSFile(path)


def _schema_mismatch(stored: pa.Schema, schema: pa.Schema, required: tuple[str, ...]) -> str | None:
    """Why a file's columns are not (a subset of) `schema`'s, or None."""
    if stored.equals(schema):  # what this release writes: no need to look further
        return None
    for column in stored:
        if column.name not in schema.names:
            return f"unknown column {column.name}"
        if not column.type.equals(schema.field(column.name).type):
            return f"column {column.name} is {column.type}, not {schema.field(column.name).type}"
    missing = [name for name in required if name not in stored.names]
    return f"no column {missing[0]}" if missing else None


def _misplaced_rows(table: str, values: dict[str, str], rows: pa.Table) -> int:
    """Rows whose own day (or, in articles, primary actor) is not their
    folder's, by the writer's rule (transforms/write.py partition_rows)."""
    if table == "duplicates":
        moments = pc.coalesce(rows["published_at"], rows["detected_at"])
    else:
        moments = rows["rejected_at" if table == "rejects" else "published_at"]
    days, day = pc.cast(moments, pa.date32()), _day(values["date"])
    bounds = pc.min_max(days).as_py()
    elsewhere = _actors_elsewhere(rows["primary_actor"], values["actor"]) if table == "articles" else []
    if bounds["min"] in (day, None) and bounds["max"] in (day, None) and not elsewhere:
        return 0  # every file the writer made: counted only when something is off
    wrong = pc.not_equal(days, pa.scalar(day, pa.date32()))
    if elsewhere:
        wrong = pc.or_(wrong, pc.is_in(rows["primary_actor"], value_set=pa.array(elsewhere, pa.string())))
    return pc.sum(pc.fill_null(wrong, False)).as_py() or 0


def _actors_elsewhere(actors: pa.ChunkedArray, folder: str) -> list[str]:
    """The primary actors among `actors` the writer would have put in another folder."""
    return [actor for actor in pc.unique(actors).to_pylist()
            if actor is not None and _actor_folder(actor) != folder]


def _actor_folder(actor: str) -> str:
    return safe_partition_value(actor, WriteSettings().max_partition_chars)


class _Identities:
    """The URLs and ids of every stored article and copy, gathered in a
    DuckDB database on temporary disk, and the checks across them."""

    def __enter__(self) -> _Identities:
        self.folder = tempfile.TemporaryDirectory(prefix="news-ingest-verify-")
        self.con = duckdb.connect(os.path.join(self.folder.name, "identities.duckdb"))
        self.con.execute(f"set memory_limit = '{DUCKDB_MEMORY}'")
        self.con.execute("set preserve_insertion_order = false")  # rows are only grouped and joined
        self.con.execute("create table articles (url varchar, article_id varchar)")
        self.con.execute("create table duplicates (url varchar, duplicate_of varchar, method varchar)")
        self.con.execute("create table mentions (article_id varchar, actor varchar)")
        self.pending: dict[str, list[pa.Table]] = {table: [] for table in _IDENTITIES}
        self.rows = dict.fromkeys(_IDENTITIES, 0)
        return self

    def add(self, table: str, rows: pa.Table) -> None:
        self.pending[table].append(rows)
        self.rows[table] += rows.num_rows
        if self.rows[table] >= BATCH_ROWS or len(self.pending[table]) >= BATCH_FILES:
            self._flush(table)

    def _flush(self, table: str) -> None:
        if self.pending[table]:
            self.con.register("batch", pa.concat_tables(self.pending[table]))
            self.con.execute(f"insert into {table} select * from batch")
            self.con.unregister("batch")
            self.pending[table], self.rows[table] = [], 0

    def check(self, found: Check) -> None:
        for table in _IDENTITIES:
            self._flush(table)
        for kind, query in _CROSS_CHECKS:
            rows = self.con.execute(f"select example, count(*) over () from ({query}) as problems(example) "
                                    f"order by example limit {EXAMPLES}").fetchall()
            for number, (example, count) in enumerate(rows):
                found.found(kind, example, count if number == 0 else 0)

    def __exit__(self, *exc) -> None:
        self.con.close()
        self.folder.cleanup()


def repair_dataset(found: Check, lock: RunLock) -> list[str]:
    """Do what the next run would do about what `found` holds; one line per step."""
    out_dir, done = found.out_dir, []
    waiting = found.findings.get("commits")
    lock.settle_as_a_start(search=True)
    if waiting:
        done.append(f"rolled forward {_plural(waiting.count, 'interrupted commit')}")
    for kind, what in (("leftovers", "hidden leftover"), ("staging", "file of an interrupted compaction")):
        if kind in found.findings and lock.local:
            done.append(f"removed {_plural(found.findings[kind].count, what)}")
    # A damaged articles or duplicates file is salvaged by the memory's rebuild: its readable
    # rows stay, the memory forgets the others' URLs (fetched again), their mentions go.
    if found.memory or any(_relative(out_dir, aside.path).startswith(("articles/", "duplicates/"))
                           for aside in found.quarantined):
        done.append(_rebuild_memory(out_dir, found.memory))
    _quarantine(out_dir, found.quarantined)
    moved = sum(1 for aside in found.quarantined + found.memory if not FileSystems.exists(aside.path))
    if moved:  # by the memory's rebuild (which salvages what it can of them) or here
        done.append(f"moved {_plural(moved, 'damaged file')} to _state/quarantine/ "
                    f"(the warnings say what each costs)")
    if found.feeds_damaged:
        load_states(out_dir)  # sets the damaged state aside, as a run does
        done.append("set the damaged feed state aside; every feed is polled afresh on the next run")
    return done


def _rebuild_memory(out_dir: str, damaged: list[Aside]) -> str:
    """Damaged memory files set aside, the memory made anew from the tables
    (keeping as many days of signatures as the manifest said, if it can be
    read). If that fails, the manifest goes too, so the next run rebuilds."""
    days = (read_manifest(out_dir) or {}).get("texts_days", DedupSettings().lookback_days)
    _quarantine(out_dir, damaged)
    try:
        built = rebuild_memory(out_dir, MemorySettings(), replace(DedupSettings(), lookback_days=days))
    except Exception as error:  # noqa: BLE001 -- leave the memory for the next run to rebuild, and say why
        manifest = memory_path(out_dir, MANIFEST)
        _quarantine(out_dir, [Aside(manifest, error, "the next run rebuilds the dataset memory")])
        return f"could not rebuild the dataset memory ({_reason(error)}); the next run tries again"
    return f"rebuilt the dataset memory from {built.line()}"


def _quarantine(out_dir: str, damaged: list[Aside]) -> None:
    """Move the damaged files still there to the quarantine."""
    for aside in damaged:
        if FileSystems.exists(aside.path):
            quarantine(out_dir, aside.path, aside.error, aside.cost)


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _printable(text: str) -> str:
    """Control characters (a feed's newline or terminal escape) as spaces: a URL cannot reach the terminal."""
    return "".join(char if char.isprintable() else " " for char in text)

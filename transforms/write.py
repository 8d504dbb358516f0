"""Write stage: records become hive-partitioned Parquet files under DIR.

    articles/date=YYYY-MM-DD/actor=<id>/part-<run>-<n>.parquet
    mentions/date=YYYY-MM-DD/actor=<id>/...    duplicates/date=.../...    rejects/date=.../...

Rows are grouped by partition folder, and each group is written by one
worker to a hidden `.part-….inprogress` file beside its target (readers'
`*.parquet` globs skip it). Once every file of the run (or window) is
written, a commit makes them visible together: the list of files goes to
DIR/_state/commits/<run>.json, then each is renamed, then the files they
replace (the dataset memory's older versions, a compacted partition's small
files) are deleted, then the list is removed. A crash before the list
exists leaves only hidden files, which the next start removes (its items
are polled again); a crash after it is rolled forward by the next start
(`finish_commits`). So an article is never visible without its mentions,
nor the memory ahead of or behind the tables. File names depend only on the run and the partition,
so a retried bundle overwrites its own file instead of adding a second copy.
All I/O goes through Beam's FileSystems, so gs:// and s3:// work like local
paths. (fileio.WriteToFiles is not used: it silently
loses data when a destination holds a '/', which hive folders need.)
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import unicodedata
import warnings
from collections import Counter
from datetime import UTC, datetime, timedelta

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow

from schemas.records import Article, Duplicate, Reject
from schemas.settings import WriteSettings
from schemas.tables import (
    ARTICLES,
    DUPLICATES,
    REJECTS,
    SCHEMAS,
    mention_rows,
    record_row,
    utc_date,
)

from .metrics import counter
from .neardup import figures, signature_values
from .quarantine import DamagedFile, quarantine, require_regular_file

_UNSAFE = re.compile(r"[^a-z0-9._-]+")
COMMITS = ("_state", "commits")


def safe_partition_value(value: str, max_chars: int) -> str:
    """A folder-name-safe form of a partition value.

    Lower-case ASCII letters, digits, '.', '_' and '-' only; never '.' or '..';
    never empty; at most `max_chars`. Nothing a feed says can leave DIR.
    """
    ascii_value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", ascii_value.lower()).strip("._")[:max_chars]
    return cleaned or "unknown"


def partition_rows(record, run_id: str, max_chars: int) -> list[tuple[tuple[str, str, str], dict]]:
    """((table, date, actor or ""), row) for every row a record yields;
    partition values already made safe."""
    def key(table: str, moment, actor: str = "") -> tuple[str, str, str]:
        return (table, safe_partition_value(utc_date(moment), max_chars),
                safe_partition_value(actor, max_chars) if actor else "")

    if isinstance(record, Article):
        rows = [(key("articles", record.published_at, record.primary_actor),
                 record_row(record, ARTICLES, run_id=run_id,
                            minhash=signature_values(record.signature),
                            numbers=sorted(figures(record.text))))]
        rows += [(key("mentions", record.published_at, actor), row)
                 for actor, row in mention_rows(record, run_id)]
        return rows
    if isinstance(record, Duplicate):
        return [(key("duplicates", record.published_at or record.detected_at),
                 record_row(record, DUPLICATES, run_id=run_id))]
    if isinstance(record, Reject):
        return [(key("rejects", record.rejected_at), record_row(record, REJECTS, run_id=run_id))]
    raise TypeError(f"cannot write {type(record).__name__}")


def partition_folder(table: str, day: str, actor: str) -> list[str]:
    """Path parts of a partition below DIR: table, date=…[, actor=…]."""
    return [table, f"date={day}", *([f"actor={actor}"] if actor else [])]


def write_partition(out_dir: str, partition: tuple[str, str, str], rows: list[dict], run_id: str,
                    max_rows_per_file: int, publish: bool = True) -> list[str]:
    """Write rows of one partition as Parquet; return the final paths
    (`publish=False`: left hidden for `publish_files`)."""
    schema = SCHEMAS[partition[0]]
    directory = FileSystems.join(out_dir, *partition_folder(*partition))
    return [write_parquet(directory, f"part-{run_id}-{number:05d}.parquet",
                          rows[start:start + max_rows_per_file], schema, publish)
            for number, start in enumerate(range(0, len(rows), max_rows_per_file))]


def dataset_files(out_dir: str, table: str) -> list[str]:
    """The published Parquet files of a table, as this module lays them out
    (hidden files and anything else in the folders are left out)."""
    depth = ("date=*", "actor=*") if table in ("articles", "mentions") else ("date=*",)
    return matching_files(out_dir, table, *depth, "*.parquet")


# Beam's FileSystems.match reads these as wildcards; in `[c]` each is itself.
_WILDCARDS = re.compile(r"([*?\[])")
# Beam's regex for `[[]` warns "possible nested set": it is not one.
warnings.filterwarnings("ignore", "Possible nested set", FutureWarning)


def matching_files(folder: str, *pattern: str) -> list[str]:
    """The files under `folder` that the glob `pattern` (`date=*`,
    `*.parquet`) matches, sorted. The folder's own path is taken literally:
    `--out "/data/al*"` must never read the files of /data/alpha. (Beam
    lists from the text before the first wildcard, so a local folder with
    one in its name is listed here, from the folder itself.)"""
    if "://" not in folder and _WILDCARDS.search(folder):
        found = glob.glob(os.path.join(glob.escape(folder), *pattern), recursive=True)
        return sorted(path for path in found if not os.path.isdir(path))
    literal = _WILDCARDS.sub(r"[\1]", folder)
    return sorted(meta.path for result in FileSystems.match([FileSystems.join(literal, *pattern)])
                  for meta in result.metadata_list)


def delete_files(paths: list[str]) -> None:
    """Delete these files and only these: Beam's delete matches its paths
    as globs, so "/data/al*/x" would also take /data/alpha/x."""
    local = [path for path in paths if "://" not in path]
    for path in local:
        os.remove(path)
    remote = [_WILDCARDS.sub(r"[\1]", path) for path in paths if "://" in path]
    if remote:
        FileSystems.delete(remote)


def flush_to_disk(path: str) -> None:
    """A local file's (or folder's) writes on the disk itself: after a power
    cut, a commit list must never name files the disk had not yet kept, nor
    be lost once the feed state says its items were seen. (Object stores
    keep what they acknowledged.)"""
    if "://" in path:
        return
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def hidden_path(final: str) -> str:
    """Where a file is written before it is published: `.NAME.inprogress` beside it."""
    directory, name = FileSystems.split(final)
    return FileSystems.join(directory, f".{name}.inprogress")


def write_parquet(directory: str, name: str, rows: list[dict], schema: pa.Schema,
                  publish: bool = True) -> str:
    """Write rows as one Parquet file that readers never see half-written
    (see `write_table`). Returns its final path."""
    return write_table(directory, name, pa.Table.from_pylist(rows, schema=schema), publish)


def write_table(directory: str, name: str, table: pa.Table, publish: bool = True,
                row_group_rows: int | None = None) -> str:
    """Write one Parquet file to its hidden path, then (if `publish`) rename
    it into place. Returns its final path."""
    final = FileSystems.join(directory, name)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=row_group_rows)
    with FileSystems.create(hidden_path(final)) as handle:
        handle.write(sink.getvalue().to_pybytes())
    flush_to_disk(hidden_path(final))
    if publish:
        FileSystems.rename([hidden_path(final)], [final])
    return final


def _commit_list(out_dir: str, commit_id: str) -> str:
    return FileSystems.join(out_dir, *COMMITS, f"{commit_id}.json")


def publish_files(out_dir: str, commit_id: str, finals: list[str], replaced: list[str] = ()) -> list[str]:
    """Make a run's hidden files visible together, then delete the files
    they replace (see the module docstring)."""
    finals = sorted(set(finals))
    listing = _commit_list(out_dir, commit_id)
    with FileSystems.create(hidden_path(listing)) as handle:
        handle.write(json.dumps({"files": finals, "replaced": sorted(set(replaced))}).encode("utf-8"))
    flush_to_disk(hidden_path(listing))
    FileSystems.rename([hidden_path(listing)], [listing])  # from here on, the run happened
    with contextlib.suppress(OSError):  # a file system that cannot flush a folder (EINVAL): as it is
        flush_to_disk(FileSystems.split(listing)[0])  # before the feed state says its items were seen
    _complete({"files": finals, "replaced": replaced})
    delete_files([listing])
    return finals


def _complete(commit: dict) -> None:
    """Rename what is still hidden, delete what is replaced (either may be
    done already: a commit is rolled forward as often as needed)."""
    finals = commit["files"]
    waiting = [final for final in finals if FileSystems.exists(hidden_path(final))]
    if waiting:
        FileSystems.rename([hidden_path(final) for final in waiting], waiting)
    replaced = [path for path in commit.get("replaced", ()) if FileSystems.exists(path)]
    if replaced:
        delete_files(replaced)


def finish_commits(out_dir: str) -> int:
    """Roll forward commits a crash interrupted; return how many. Run it
    holding the run lock, before anything removes hidden files."""
    listings = matching_files(out_dir, *COMMITS, "*.json")
    for listing in listings:
        try:
            commit = read_commit(out_dir, listing)
        except Exception as error:  # noqa: BLE001 -- a damaged list must not stop every later run
            quarantine(out_dir, listing, error, "the files of the run it lists that were not yet "
                                                "published stay hidden, and are removed as leftovers")
            continue
        _complete(commit)
        delete_files([listing])
    return len(listings)


def read_commit(out_dir: str, listing: str) -> dict:
    """A commit list as `publish_files` writes it, or an error saying why not."""
    require_regular_file(listing)  # a FIFO would block the read forever
    with FileSystems.open(listing) as handle:
        commit = json.loads(handle.read().decode("utf-8"))
    if not (isinstance(commit, dict) and isinstance(commit.get("files"), list)
            and isinstance(commit.get("replaced", []), list)):
        raise DamagedFile("not a commit list")
    inside = FileSystems.join(out_dir, "")
    if not all(isinstance(path, str) and path.startswith(inside)
               for path in commit["files"] + commit.get("replaced", [])):
        raise DamagedFile("a commit list naming files outside the dataset")
    return commit


def written_counts(partition: tuple[str, str, str], rows: list[dict]) -> Counter:
    """Counter names and increments for one written partition: rows per table,
    articles per actor, duplicates per method, rejects per stage."""
    table, _, actor = partition
    counts = Counter({f"written/{table}": len(rows)})
    if table == "articles":
        counts[f"written/articles/actor/{actor}"] += len(rows)
    elif table == "duplicates":
        counts.update(f"written/duplicates/{row['method']}" for row in rows)
    elif table == "rejects":
        counts.update(f"written/rejects/{row['stage']}" for row in rows)
    return counts


def window_run_id(run_id: str, window) -> str:
    """The name stem of a window's files: a batch run's id, or for a stream
    the window's start time with the stream's suffix -- every window writes
    new files, and file names still start with when their rows were ingested."""
    if isinstance(window, GlobalWindow):
        return run_id
    start = datetime.fromtimestamp(window.start.micros / 1e6, UTC)
    return f"{run_stamp(start)}-{run_id.split('-', 1)[-1]}"


# Run ids (and so file names) start with the run's UTC start time: they
# sort by time and tell when their rows were ingested.
_RUN_TIME = "%Y%m%dT%H%M%SZ"


def run_stamp(moment: datetime) -> str:
    """The time part of a run id."""
    return moment.astimezone(UTC).strftime(_RUN_TIME)


def run_time(run_id: str) -> datetime:
    """When a run (or a window) started, from its id (`YYYYMMDDTHHMMSSZ-…`);
    ValueError when it does not start with a time."""
    return datetime.strptime(run_id[:16], _RUN_TIME).replace(tzinfo=UTC)


# A state file dated further ahead than this was written while the clock was wrong.
_CLOCK_SLACK = timedelta(hours=1)


def replaced_by(path: str, written: str, now: datetime) -> bool:
    """Whether a state file gives way to the one just `written` (both named
    `<kind>-<run>.parquet`, newest read first): an older run's, a name no run
    gives (a copy made by hand), or one dated ahead of the clock (it would be
    read forever) -- never a later window's, which a stream may publish first."""
    try:
        when = run_time(FileSystems.split(path)[1].split("-", 1)[-1])
    except ValueError:
        return True
    return path < written or when > now + _CLOCK_SLACK


def _window_rows(record, run_id: str, max_chars: int, window=beam.DoFn.WindowParam):
    """A record's rows, their `run_id` the run's (or, streaming, the window's:
    what names the files, and tells when the rows were ingested)."""
    return partition_rows(record, window_run_id(run_id, window), max_chars)


class _WritePartitionFn(beam.DoFn):
    def __init__(self, out_dir: str, run_id: str, settings: WriteSettings):
        self.out_dir, self.run_id, self.settings = out_dir, run_id, settings

    def process(self, grouped, window=beam.DoFn.WindowParam):
        partition, rows = grouped
        # A stable row order makes a retried write produce the same file.
        rows = sorted(rows, key=lambda row: tuple(str(value) for value in row.values()))
        paths = write_partition(self.out_dir, partition, rows, window_run_id(self.run_id, window),
                                self.settings.max_rows_per_file, publish=False)
        for name, count in written_counts(partition, rows).items():
            counter(name).inc(count)
        for path in paths:
            yield path, ()


class _PublishFn(beam.DoFn):
    def __init__(self, out_dir: str, run_id: str):
        self.out_dir, self.run_id = out_dir, run_id

    def process(self, written: list[tuple[str, tuple[str, ...]]], window=beam.DoFn.WindowParam):
        yield from publish_files(self.out_dir, window_run_id(self.run_id, window),
                                 [final for final, _ in written],
                                 [path for _, replaced in written for path in replaced])


class PublishFiles(beam.PTransform):
    """(hidden file's final path, files it replaces) pairs -> the final
    paths, made visible together by one commit per window."""

    def __init__(self, out_dir: str, run_id: str):
        super().__init__()
        self.out_dir, self.run_id = out_dir, run_id

    def expand(self, pairs):
        return (pairs
                | "AllFiles" >> beam.combiners.ToList().without_defaults()
                | "Publish" >> beam.ParDo(_PublishFn(self.out_dir, self.run_id)))


class WriteDataset(beam.PTransform):
    """{'articles', 'duplicates', 'rejects'} -> paths of the Parquet files
    written, published together once all are written.

    `remember`, if given, turns the same records into further hidden files
    ((final path, files it replaces) pairs: the dataset memory); `state_files`
    are PCollections of such pairs written by other stages (the template
    history, the boilerplate memory). All are published in the same commit,
    so a run that fails leaves none of them behind.
    """

    def __init__(self, out_dir: str, run_id: str, settings: WriteSettings, remember=None,
                 state_files=()):
        super().__init__()
        if not run_id or _UNSAFE.search(run_id.lower()):
            raise ValueError(f"run_id must be a plain token, got {run_id!r}")
        self.out_dir, self.run_id, self.settings = out_dir, run_id, settings
        self.remember, self.state_files = remember, tuple(state_files)

    def expand(self, outputs):
        records = (tuple(outputs[name] for name in ("articles", "duplicates", "rejects"))
                   | "AllRecords" >> beam.Flatten())
        tables = (
            records
            | "ToRows" >> beam.FlatMap(_window_rows, self.run_id, self.settings.max_partition_chars)
            | "ByPartition" >> beam.GroupByKey()
            | "WriteFiles" >> beam.ParDo(_WritePartitionFn(self.out_dir, self.run_id, self.settings)))
        remembered = (records | "Remember" >> self.remember,) if self.remember else ()
        return ((tables, *remembered, *self.state_files)
                | "AllWritten" >> beam.Flatten()
                | "Commit" >> PublishFiles(self.out_dir, self.run_id))

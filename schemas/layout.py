"""The dataset's shape on disk: the one module that knows it.

    DIR/articles/date=YYYY-MM-DD/actor=<id>/part-<run>-<n>.parquet
    DIR/mentions/date=YYYY-MM-DD/actor=<id>/...
    DIR/duplicates/date=YYYY-MM-DD/...    DIR/rejects/date=YYYY-MM-DD/...
    DIR/raw/date=YYYY-MM-DD/<run>-<shard>.warc.gz   the pages as fetched (WARC)
    DIR/_state/   feeds.json, run.lock, commits/, memory/, templates/, boilerplate/,
                  quarantine/, compact/ (staging), compaction.json

Table and partition names, the `_state/` paths, run ids (made and parsed),
and the few file operations everything that writes or lists the dataset
shares: hidden-then-renamed Parquet files, literal listing and deletion,
flushing to disk. All go through Beam's FileSystems, so gs:// and s3://
work like local paths. The commit protocol that publishes a run's files
together is transforms/write.py's.
"""
from __future__ import annotations

import glob
import os
import re
import secrets
import unicodedata
import warnings
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

# The tables, and those partitioned by actor below the day.
TABLES = ("articles", "mentions", "duplicates", "rejects")
ACTOR_TABLES = ("articles", "mentions")
# The raw archive: WARC files by fetch day.
RAW = "raw"

# What the pipeline keeps for itself, below DIR.
STATE = "_state"
FEED_STATE = (STATE, "feeds.json")
COMMITS = (STATE, "commits")
MEMORY = (STATE, "memory")
TEMPLATES = (STATE, "templates")
BOILERPLATE = (STATE, "boilerplate")
QUARANTINE = (STATE, "quarantine")
LOCK = (STATE, "run.lock")
COMPACT_STAGING = (STATE, "compact")
COMPACTION = (STATE, "compaction.json")


_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def is_plain_token(value: str) -> bool:
    """Fit to stand in a file name as it is (a run id)."""
    return bool(value) and not _UNSAFE.search(value.lower())


def safe_partition_value(value: str, max_chars: int) -> str:
    """A folder-name-safe form of a partition value.

    Lower-case ASCII letters, digits, '.', '_' and '-' only; never '.' or '..';
    never empty; at most `max_chars`. Nothing a feed says can leave DIR.
    """
    ascii_value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", ascii_value.lower()).strip("._")[:max_chars]
    return cleaned or "unknown"


def partition_folder(table: str, day: str, actor: str) -> list[str]:
    """Path parts of a partition below DIR: table, date=…[, actor=…]."""
    return [table, f"date={day}", *([f"actor={actor}"] if actor else [])]


def archive_file(day: str, name: str) -> str:
    """A raw archive file's path below DIR, as `articles.warc_file` holds it."""
    return f"{RAW}/date={day}/{name}"


def dataset_files(out_dir: str, table: str) -> list[str]:
    """The published Parquet files of a table, as this module lays them out
    (hidden files and anything else in the folders are left out)."""
    depth = ("date=*", "actor=*") if table in ACTOR_TABLES else ("date=*",)
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


def holds_files(folder: str) -> bool:
    """Whether anything is stored below `folder` (taken literally). Object
    stores have no folders, so `FileSystems.exists` cannot tell: one object
    listed is enough."""
    if "://" not in folder:
        return os.path.isdir(folder) and any(os.scandir(folder))
    literal = _WILDCARDS.sub(r"[\1]", folder)
    return bool(FileSystems.match([FileSystems.join(literal, "**")], limits=[1])[0].metadata_list)


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


def commit_list_path(out_dir: str, commit_id: str) -> str:
    """Where a run's commit list is written (see transforms/write.py)."""
    return FileSystems.join(out_dir, *COMMITS, f"{commit_id}.json")


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


def new_run_id(moment: datetime | None = None) -> str:
    """A fresh run id (or name stem of any file a run makes): its start time,
    then a random token, so two started in the same second never share a name."""
    return f"{run_stamp(moment or datetime.now(UTC))}-{secrets.token_hex(3)}"

# What ends such a name (a quarantined file's suffix, for one).
STAMPED = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}$")


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

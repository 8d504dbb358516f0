"""`news-ingest compact`: each partition's many small files become one.

Every run writes one file per partition it touches (about 25 a run), so a
year of 15-minute runs leaves some 870,000 small files that every reader
opens. Compaction rewrites a partition's files as one file (split only past
`WriteSettings.max_rows_per_file`, row groups sized for DuckDB and Spark):
the same rows, ids and columns, so the dataset memory is unchanged.

Readers are safe. On a local disk the new partition folder is built aside,
under DIR/_state/compact/, and swapped with the old one in one atomic step
(Linux renameat2 RENAME_EXCHANGE): a reader lists the old files or the new
one, never both and never neither (a query that had listed the old files
fails opening one and can simply be run again). Where the file system cannot
swap (object stores, some network file systems) the new file is published
and the old ones deleted by one commit list, as runs publish theirs: a
reader may then briefly see both. Crash-safe either way: before the swap
nothing has changed; after it the old files sit in DIR/_state/compact/,
which the next start removes; an interrupted commit list is rolled forward.
Callers hold the run lock, so no run writes meanwhile.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from schemas.layout import (
    COMPACT_STAGING,
    COMPACTION,
    TABLES,
    dataset_files,
    hidden_path,
    new_run_id,
    write_table,
)
from schemas.settings import WriteSettings
from transforms.quarantine import require_regular_file
from transforms.write import publish_files


@dataclass
class CompactSummary:
    partitions: int = 0
    files_before: int = 0
    files_after: int = 0
    rows: int = 0
    seconds: float = 0.0
    swapped_atomically: bool = True
    per_table: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Partitions left as they were, with why: a file in them cannot be read.
    skipped: list[str] = field(default_factory=list)

    def line(self) -> str:
        left = (f"; {len(self.skipped)} partitions left as they were (a file cannot be read: "
                f"`news-ingest verify --repair` sets it aside)") if self.skipped else ""
        if not self.partitions:
            return f"compact: nothing to do (every partition is one file){left}"
        return (f"compact: {self.partitions:,} partitions, {self.files_before:,} files -> "
                f"{self.files_after:,} ({self.rows:,} rows) in {self.seconds:.1f} s{left}")


def partitions_to_compact(out_dir: str, table: str, before: date | None) -> dict[str, list[str]]:
    """Partition folder -> its files, for partitions of more than one file
    (and, with `before`, of an earlier day)."""
    folders: dict[str, list[str]] = defaultdict(list)
    for path in dataset_files(out_dir, table):
        folders[path.rsplit("/", 1)[0]].append(path)
    return {folder: sorted(paths) for folder, paths in folders.items()
            if len(paths) > 1 and (before is None or _day(folder) is None or _day(folder) < before)}


def _day(folder: str) -> date | None:
    for part in folder.split("/"):
        if part.startswith("date="):
            try:
                return date.fromisoformat(part[5:])
            except ValueError:
                return None
    return None


def merged_table(paths: list[str]) -> pa.Table:
    """The rows of a partition's files, in file order; columns an older
    version did not write are null in its rows."""
    tables = []
    for path in paths:
        try:  # ParquetFile.read: half the cost of read_table on small files (no dataset discovery)
            require_regular_file(path)  # a FIFO would block the read forever
            with FileSystems.open(path) as handle:
                tables.append(pq.ParquetFile(handle).read())
        except Exception as error:
            raise OSError(f"{path} cannot be read ({type(error).__name__}: {error})") from error
    # An older file may lack a column (null in its rows) or hold a narrower type.
    return pa.concat_tables(tables, promote_options="permissive")


def compact(out_dir: str, before: date | None = None, settings: WriteSettings | None = None,
            now: datetime | None = None) -> CompactSummary:
    """Compact every partition of more than one file, and record when
    (DIR/_state/compaction.json); hold the run lock."""
    settings, now = settings or WriteSettings(), now or datetime.now(UTC)
    started, summary = time.monotonic(), CompactSummary()
    stem = new_run_id(now)
    for table in TABLES:
        before_files = after_files = 0
        partitions = sorted(partitions_to_compact(out_dir, table, before).items())
        for number, (folder, paths) in enumerate(partitions):
            try:
                rows = merged_table(paths)
                chunks = [rows.slice(start, settings.max_rows_per_file)
                          for start in range(0, rows.num_rows, settings.max_rows_per_file)]
                atomic = _replace_partition(out_dir, folder, paths, chunks, f"{stem}-{number}", settings)
            except (OSError, pa.ArrowException) as error:  # costs this partition's compaction, nothing else
                summary.skipped.append(f"{folder}: {type(error).__name__}: {error}")
                continue
            summary.swapped_atomically &= atomic
            summary.partitions += 1
            summary.rows += rows.num_rows
            before_files += len(paths)
            after_files += len(chunks)
        summary.per_table[table] = (before_files, after_files)
        summary.files_before += before_files
        summary.files_after += after_files
    summary.seconds = time.monotonic() - started
    _record(out_dir, now, summary)
    return summary


def _record(out_dir: str, now: datetime, summary: CompactSummary) -> None:
    state = FileSystems.join(out_dir, *COMPACTION)
    with FileSystems.create(hidden_path(state)) as handle:
        handle.write(json.dumps({"last": now.isoformat(timespec="seconds"), "partitions": summary.partitions,
                                 "skipped": summary.skipped}).encode("utf-8"))
    FileSystems.rename([hidden_path(state)], [state])


def _names(chunks: list[pa.Table], stem: str) -> list[str]:
    """`compacted-…`: unlike a run's `part-<run>-…`, the name does not say
    when its rows were ingested (their `run_id` column does)."""
    return [f"compacted-{stem}-{number:05d}.parquet" for number in range(len(chunks))]


def _replace_partition(out_dir: str, folder: str, paths: list[str], chunks: list[pa.Table], stem: str,
                       settings: WriteSettings) -> bool:
    """Put `chunks` in place of the files `paths`; True when readers saw one atomic swap."""
    if _is_local(out_dir):
        staging = os.path.join(out_dir, *COMPACT_STAGING, stem)
        for name, chunk in zip(_names(chunks, stem), chunks, strict=True):
            write_table(staging, name, chunk, row_group_rows=settings.row_group_rows)
        _check_rows(staging, _names(chunks, stem), chunks)
        _keep_the_rest(folder, paths, staging)
        if _exchange(staging, folder):
            # The old files now sit in `staging`: garbage, whatever happens next.
            shutil.rmtree(staging, ignore_errors=True)
            return True
        shutil.rmtree(staging, ignore_errors=True)
    finals = [write_table(folder, name, chunk, publish=False, row_group_rows=settings.row_group_rows)
              for name, chunk in zip(_names(chunks, stem), chunks, strict=True)]
    publish_files(out_dir, f"compact-{stem}", finals, replaced=paths)
    return False


def _keep_the_rest(folder: str, paths: list[str], staging: str) -> None:
    """Whatever else the folder holds (a user's notes, a stray file) goes
    into the new folder too: only the files compacted are replaced."""
    compacted = {os.path.basename(path) for path in paths}
    for name in os.listdir(folder):
        if name in compacted or os.path.exists(os.path.join(staging, name)):
            continue
        if os.path.isdir(os.path.join(folder, name)):
            raise OSError(f"it holds a folder ({name}) that compaction would have to move")
        os.link(os.path.join(folder, name), os.path.join(staging, name))


def _check_rows(folder: str, names: list[str], chunks: list[pa.Table]) -> None:
    """The files written hold every row (read back from their footers)."""
    written = sum(pq.ParquetFile(os.path.join(folder, name)).metadata.num_rows for name in names)
    expected = sum(chunk.num_rows for chunk in chunks)
    if written != expected:
        raise OSError(f"compacted files in {folder} hold {written} rows, not {expected}")


def _is_local(out_dir: str) -> bool:
    scheme = urlsplit(out_dir).scheme
    return not scheme or len(scheme) == 1


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(first: str, second: str) -> bool:
    """Swap two paths in one atomic step (Linux renameat2); False where the
    C library or the file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except AttributeError:
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), second)


def remove_staging(out_dir: str) -> None:
    """What a crashed compaction left aside (never anything readers need)."""
    shutil.rmtree(os.path.join(out_dir, *COMPACT_STAGING), ignore_errors=True)


def compact_if_due(out_dir: str, every_s: float, settings: WriteSettings | None = None,
                   now: datetime | None = None) -> CompactSummary | None:
    """Compact when the last compaction (DIR/_state/compaction.json) is at
    least `every_s` seconds old, or never happened; None when not due."""
    now = now or datetime.now(UTC)
    try:
        with FileSystems.open(FileSystems.join(out_dir, *COMPACTION)) as handle:
            last = datetime.fromisoformat(json.loads(handle.read().decode("utf-8"))["last"])
        if (now - last).total_seconds() < every_s:
            return None
    except (OSError, ValueError, KeyError, TypeError):  # never compacted, or an unreadable record: now
        pass
    return compact(out_dir, settings=settings, now=now)

"""Write stage: records become hive-partitioned Parquet files under DIR
(the layout is schemas/layout.py's), published together by one commit.

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
nor the memory ahead of or behind the tables. File names depend only on
the run and the partition, so a retried bundle overwrites its own file
instead of adding a second copy. All I/O goes through Beam's FileSystems, so
gs:// and s3:// work like local paths. (fileio.WriteToFiles is not used: it
silently loses data when a destination holds a '/', which hive folders need.)
"""
from __future__ import annotations

import contextlib
import json
from collections import Counter

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from schemas.layout import (
    COMMITS,
    commit_list_path,
    delete_files,
    flush_to_disk,
    hidden_path,
    is_plain_token,
    matching_files,
    partition_folder,
    safe_partition_value,
    write_parquet,
)
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
from .neardup import signature_values
from .quarantine import DamagedFile, quarantine, require_regular_file
from .windows import window_run_id


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
                            numbers=sorted(record.numbers)))]
        rows += [(key("mentions", record.published_at, actor), row)
                 for actor, row in mention_rows(record, run_id)]
        return rows
    if isinstance(record, Duplicate):
        return [(key("duplicates", record.published_at or record.detected_at),
                 record_row(record, DUPLICATES, run_id=run_id))]
    if isinstance(record, Reject):
        return [(key("rejects", record.rejected_at), record_row(record, REJECTS, run_id=run_id))]
    raise TypeError(f"cannot write {type(record).__name__}")


def write_partition(out_dir: str, partition: tuple[str, str, str], rows: list[dict], run_id: str,
                    max_rows_per_file: int, publish: bool = True) -> list[str]:
    """Write rows of one partition as Parquet; return the final paths
    (`publish=False`: left hidden for `publish_files`)."""
    schema = SCHEMAS[partition[0]]
    directory = FileSystems.join(out_dir, *partition_folder(*partition))
    return [write_parquet(directory, f"part-{run_id}-{number:05d}.parquet",
                          rows[start:start + max_rows_per_file], schema, publish)
            for number, start in enumerate(range(0, len(rows), max_rows_per_file))]


def publish_files(out_dir: str, commit_id: str, finals: list[str], replaced: list[str] = ()) -> list[str]:
    """Make a run's hidden files visible together, then delete the files
    they replace (see the module docstring)."""
    finals = sorted(set(finals))
    listing = commit_list_path(out_dir, commit_id)
    with FileSystems.create(hidden_path(listing)) as handle:
        handle.write(json.dumps({"files": finals, "replaced": sorted(set(replaced))}).encode("utf-8"))
    flush_to_disk(hidden_path(listing))
    FileSystems.rename([hidden_path(listing)], [listing])  # from here on, the run happened
    with contextlib.suppress(OSError):  # a file system that cannot flush a folder (EINVAL): as it is
        flush_to_disk(FileSystems.split(listing)[0])  # before the feed state says its items were seen
    _complete({"files": finals, "replaced": sorted(set(replaced))})
    delete_files([listing])
    return finals


def _complete(commit: dict) -> None:
    """Rename what is still hidden, delete what is replaced (either may be
    done already: a commit is rolled forward as often as needed)."""
    finals = commit["files"]
    waiting = [final for final in finals if FileSystems.exists(hidden_path(final))]
    if waiting:
        FileSystems.rename([hidden_path(final) for final in waiting], waiting)
    replaced = [path for path in sorted(set(commit.get("replaced", ()))) if FileSystems.exists(path)]
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
    articles per primary actor and per actor named, duplicates per method,
    rejects per stage."""
    table, _, actor = partition
    counts = Counter({f"written/{table}": len(rows)})
    if table in ("articles", "mentions"):  # a mentions row is one article naming the actor
        counts[f"written/{table}/actor/{actor}"] += len(rows)
    elif table == "duplicates":
        counts.update(f"written/duplicates/{row['method']}" for row in rows)
    elif table == "rejects":
        counts.update(f"written/rejects/{row['stage']}" for row in rows)
    return counts


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
        if not is_plain_token(run_id):
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

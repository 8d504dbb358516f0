"""Write stage: records become hive-partitioned Parquet files under DIR.

    articles/date=YYYY-MM-DD/actor=<id>/part-<run>-<n>.parquet
    mentions/date=YYYY-MM-DD/actor=<id>/...    duplicates/date=.../...    rejects/date=.../...

Rows are grouped by partition folder, and each group is written by one
worker: to a hidden `.part-….inprogress` file beside the target (readers'
`*.parquet` globs skip it), then renamed. File names depend only on the run
and the partition, so a retried bundle overwrites its own file instead of
adding a second copy. All I/O goes through Beam's FileSystems, so gs:// and
s3:// work like local paths. (fileio.WriteToFiles is not used: it silently
loses data when a destination holds a '/', which hive folders need.)
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from datetime import UTC, datetime

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow

from schemas.records import Article, Duplicate, Reject
from schemas.settings import METRICS_NAMESPACE, WriteSettings
from schemas.tables import (
    ARTICLES,
    DUPLICATES,
    REJECTS,
    SCHEMAS,
    mention_rows,
    record_row,
    utc_date,
)

from .neardup import figures, signature_values

_UNSAFE = re.compile(r"[^a-z0-9._-]+")


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
                    max_rows_per_file: int) -> list[str]:
    """Write rows of one partition as Parquet; return the final paths."""
    schema = SCHEMAS[partition[0]]
    directory = FileSystems.join(out_dir, *partition_folder(*partition))
    return [write_parquet(directory, f"part-{run_id}-{number:05d}.parquet",
                          rows[start:start + max_rows_per_file], schema)
            for number, start in enumerate(range(0, len(rows), max_rows_per_file))]


def write_parquet(directory: str, name: str, rows: list[dict], schema: pa.Schema) -> str:
    """Write one Parquet file so that readers never see it half-written:
    to a hidden `.NAME.inprogress` beside it, then renamed. Returns its path."""
    final = FileSystems.join(directory, name)
    temporary = FileSystems.join(directory, f".{name}.inprogress")
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), sink, compression="zstd")
    with FileSystems.create(temporary) as handle:
        handle.write(sink.getvalue().to_pybytes())
    FileSystems.rename([temporary], [final])
    return final


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
    return f"{start:%Y%m%dT%H%M%SZ}-{run_id.split('-', 1)[-1]}"


class _WritePartitionFn(beam.DoFn):
    def __init__(self, out_dir: str, run_id: str, settings: WriteSettings):
        self.out_dir, self.run_id, self.settings = out_dir, run_id, settings

    def process(self, grouped, window=beam.DoFn.WindowParam):
        partition, rows = grouped
        # A stable row order makes a retried write produce the same file.
        rows = sorted(rows, key=lambda row: tuple(str(value) for value in row.values()))
        paths = write_partition(self.out_dir, partition, rows, window_run_id(self.run_id, window),
                                self.settings.max_rows_per_file)
        for name, count in written_counts(partition, rows).items():
            Metrics.counter(METRICS_NAMESPACE, name).inc(count)
        yield from paths


class WriteDataset(beam.PTransform):
    """{'articles', 'duplicates', 'rejects'} -> paths of the Parquet files written."""

    def __init__(self, out_dir: str, run_id: str, settings: WriteSettings):
        super().__init__()
        if not run_id or _UNSAFE.search(run_id.lower()):
            raise ValueError(f"run_id must be a plain token, got {run_id!r}")
        self.out_dir, self.run_id, self.settings = out_dir, run_id, settings

    def expand(self, outputs):
        records = (tuple(outputs[name] for name in ("articles", "duplicates", "rejects"))
                   | "AllRecords" >> beam.Flatten())
        return (
            records
            | "ToRows" >> beam.FlatMap(partition_rows, self.run_id,
                                       self.settings.max_partition_chars)
            | "ByPartition" >> beam.GroupByKey()
            | "WriteFiles" >> beam.ParDo(_WritePartitionFn(self.out_dir, self.run_id, self.settings))
        )

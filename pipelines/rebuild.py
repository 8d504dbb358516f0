"""The dataset memory made anew from the tables (`news-ingest memory`).

The memory (transforms/memory.py) is derived data: every key it holds comes
from a row of `articles` or `duplicates`. Rebuilding reads each of their
files once, a few columns, column-wise (a year of history is millions of
rows), writes every bucket and day as one file and publishes them with a
new manifest in one commit that replaces the old memory whole. A run does
this by itself when it meets a dataset without a memory that serves it:
written by an older version, deleted, or keeping fewer days of signatures
than the run's look-back asks.
"""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from schemas.layout import dataset_files, hidden_path, matching_files, run_stamp, run_time, write_table
from schemas.settings import DedupSettings, MemorySettings
from transforms.memory import (
    KEYS,
    TEXTS,
    article_keys,
    band_hashes,
    bucket_of,
    duplicate_keys,
    folder_of,
    lookback_start,
    manifest_serves,
    memory_files,
    memory_path,
    read_manifest,
    write_manifest_hidden,
)
from transforms.quarantine import DamagedFile, is_regular_file, keep_copy, quarantine, require_regular_file
from transforms.write import publish_files

_LOG = logging.getLogger(__name__)

COLUMNS = {
    "articles": ("url", "canonical_url", "article_id", "content_hash", "run_id", "minhash", "numbers",
                 "word_count"),
    "duplicates": ("url", "article_id", "duplicate_of", "run_id"),
}


@dataclass(frozen=True)
class RebuildSummary:
    articles: int
    duplicates: int
    files_read: int
    keys: int
    texts: int

    def line(self) -> str:
        return (f"{self.files_read:,} files ({self.articles:,} articles, {self.duplicates:,} duplicates): "
                f"{self.keys:,} keys, {self.texts:,} signatures")


def stored_columns(path: str, table: str) -> dict[str, list]:
    """A stored file's columns that the memory needs; columns an older
    version did not write read as null. DamagedFile when the file is not
    what the writer wrote (undecodable, truncated, of another schema); an
    error opening it (a permission, I/O) is raised as it is."""
    def needed(parquet: pq.ParquetFile) -> pa.Table:
        return parquet.read(columns=[name for name in COLUMNS[table] if name in parquet.schema_arrow.names])
    return columns_of(_decoded(path, needed), table)


def salvaged_rows(path: str) -> pa.Table | None:
    """The row groups of a damaged file that still read (all columns); None
    when none does (its footer is gone, or every group is damaged)."""
    def readable(parquet: pq.ParquetFile) -> pa.Table | None:
        groups = []
        for group in range(parquet.num_row_groups):
            with contextlib.suppress(Exception):  # a damaged group costs only itself
                groups.append(parquet.read_row_group(group))
        return pa.concat_tables(groups) if groups else None
    try:
        return _decoded(path, readable)
    except DamagedFile:
        return None


def columns_of(table: pa.Table | None, name: str) -> dict[str, list]:
    """The memory's columns of a table's rows; those it lacks as null."""
    if table is None:
        return {column: [] for column in COLUMNS[name]}
    for column in ("url", "article_id"):
        if column not in table.column_names or not pa.types.is_string(table.schema.field(column).type):
            raise DamagedFile(f"no string column {column!r}: not a {name} file")
    return {column: (table.column(column).to_pylist() if column in table.column_names
                     else [None] * table.num_rows) for column in COLUMNS[name]}


def _decoded(path: str, read):
    """`read(ParquetFile)` of a stored file; decoding errors as DamagedFile."""
    require_regular_file(path)
    with FileSystems.open(path) as handle:
        try:
            return read(pq.ParquetFile(handle))
        except (pa.ArrowException, EOFError, ValueError) as error:  # truncated, not Parquet, bad pages
            raise DamagedFile(f"{type(error).__name__}: {error}") from error
        except OSError as error:  # pyarrow's "Couldn't deserialize thrift": a damaged page
            raise DamagedFile(f"{type(error).__name__}: {error}") from error


def _salvage(out_dir: str, path: str, table: str, error: DamagedFile, stem: str
             ) -> tuple[dict[str, list], list[str], bool]:
    """A damaged table file's readable rows, written (hidden) as a new file
    beside it for the rebuild's commit, which removes the damaged one; a copy
    of that goes to the quarantine first. Returns the rows' memory columns,
    the new file's path if any, and whether the damaged file may go (not
    when its copy failed: then it stays as it is, and nothing is written)."""
    rows = salvaged_rows(path)
    try:
        columns = columns_of(rows, table)
    except DamagedFile:  # readable, but not this table's: nothing of it is kept
        rows, columns = None, columns_of(None, table)
    salvageable = rows is not None and rows.num_rows > 0
    name = f"part-{stem}-salvaged-{secrets.token_hex(3)}.parquet" if salvageable else ""
    copied = quarantine(out_dir, path, error, f"{len(columns['url'])} of its rows salvaged into "
                        f"{name or 'no file'}; the others' URLs may be fetched again", move=False)
    if copied is None:
        return columns, [], False
    kept = [write_table(FileSystems.split(path)[0], name, rows, publish=False)] if name else []
    return columns, kept, True


def _without_mentions_of_lost_articles(out_dir: str, articles: list[str], lost: set[str],
                                       salvaged_ids: set[str], stem: str) -> tuple[list[str], list[str]]:
    """The mentions of articles damaged files lost, taken out: so an article
    fetched again is not mentioned twice, and no mention names an article the
    dataset does not hold. A mention is filed under its article's day, so
    only the lost files' days are read. Each mentions file holding any is
    copied to the quarantine, then rewritten without them (hidden, for the
    rebuild's commit). Returns (new files, the files they replace); a file
    that cannot be read or copied, or of another schema, is left as it is
    (`verify` names it)."""
    days: dict[str, list[str]] = {}
    for path in articles:
        days.setdefault(_day_folder(path), []).append(path)
    written, replaced, dropped = [], [], 0
    for day in sorted({_day_folder(path) for path in lost}):
        stored = set(salvaged_ids)
        for path in days[day]:
            ids = None if path in lost else _rows_or_none(path, ["article_id"])
            stored.update(ids.column("article_id").to_pylist() if ids is not None else ())
        known = pa.array(sorted(stored), pa.string())
        # The day as a folder, taken literally: a hand-made `date=*` is no pattern.
        for path in matching_files(FileSystems.join(out_dir, "mentions", day), "actor=*", "*.parquet"):
            rows = _rows_or_none(path)
            if rows is None or not _has_string_ids(rows):
                continue
            kept = rows.filter(pc.is_in(rows.column("article_id"), value_set=known))
            if kept.num_rows == rows.num_rows or not _copied(out_dir, path):
                continue
            dropped += rows.num_rows - kept.num_rows
            replaced.append(path)
            if kept.num_rows:
                written.append(write_table(FileSystems.split(path)[0],
                                           f"part-{stem}-pruned-{secrets.token_hex(3)}.parquet", kept,
                                           publish=False))
    if dropped:
        _LOG.warning("set aside %d mentions of articles a damaged file lost (the files they were in are "
                     "copied to _state/quarantine/)", dropped)
    return written, replaced


def _has_string_ids(rows: pa.Table) -> bool:
    """Whether a mentions file is of this schema as far as pruning goes."""
    return "article_id" in rows.column_names and rows.schema.field("article_id").type == pa.string()


def _copied(out_dir: str, path: str) -> bool:
    """A copy of a file about to lose rows is in the quarantine (else it keeps them)."""
    try:
        keep_copy(out_dir, path)
    except Exception as error:  # noqa: BLE001 -- rows are never taken out without their copy
        _LOG.warning("%s keeps the mentions of articles a damaged file lost: copying it to the "
                     "quarantine failed (%s: %s)", path, type(error).__name__, str(error)[:200])
        return False
    return True


def _day_folder(path: str) -> str:
    """`date=YYYY-MM-DD` of a file in a table's date=…/actor=…/ layout."""
    return FileSystems.split(FileSystems.split(FileSystems.split(path)[0])[0])[1]


def _rows_or_none(path: str, columns: list[str] | None = None) -> pa.Table | None:
    """A table file's rows (those columns, or all), or None when it cannot be decoded."""
    try:
        return _decoded(path, lambda parquet: parquet.read(columns=columns))
    except DamagedFile:
        return None


def ingested_at(run_id: str | None, path: str) -> datetime | None:
    """When a stored row was ingested: the later of its run id's time and
    its file's (a stream's rows name the stream, its files the window; a
    compacted file's name says nothing); None when neither tells."""
    times = []
    name = path.rsplit("/", 1)[-1]
    for text in (run_id or "", name.removeprefix("part-") if name.startswith("part-") else ""):
        try:
            times.append(run_time(text))
        except ValueError:
            continue
    return max(times) if times else None


def rebuild_memory(out_dir: str, settings: MemorySettings, dedup: DedupSettings,
                   now: datetime | None = None) -> RebuildSummary:
    """Make the memory anew from the tables and publish it in one commit,
    replacing whatever memory there was. Rows whose ingestion time cannot be
    told count as ingested now (inside the look-back, as before)."""
    now = now or datetime.now(UTC)
    since = lookback_start(dedup.lookback_days, now)
    keys, texts, counts = _Batches(KEYS), _Batches(TEXTS), {"articles": 0, "duplicates": 0}
    files = {table: dataset_files(out_dir, table) for table in counts}
    stem = f"{run_stamp(now)}-rebuild-{secrets.token_hex(3)}"
    salvaged, damaged, salvaged_ids = [], [], []
    for table, paths in files.items():
        for path in paths:
            try:
                columns = stored_columns(path, table)
            except DamagedFile as error:
                columns, kept, set_aside = _salvage(out_dir, path, table, error, stem)
                salvaged += kept
                damaged += [path] if set_aside else []
                if table == "articles":
                    salvaged_ids += columns["article_id"]
            counts[table] += len(columns["url"])
            times = [ingested_at(run_id, path) or now for run_id in columns["run_id"]]
            keys.add(_key_rows(table, columns, times, since))
            if table == "articles":
                texts.add(_text_rows(columns, times, since, dedup.minhash_bands))
    key_table, text_table = keys.table(), texts.table()
    finals = _write_buckets(out_dir, key_table, settings, stem) + _write_days(out_dir, text_table, stem)
    manifest = write_manifest_hidden(out_dir, settings, dedup.lookback_days)
    old = [path for path in memory_files(memory_path(out_dir), "*", "*", "*.parquet") if path not in finals]
    lost_articles = set(damaged) & set(files["articles"])
    if lost_articles:
        pruned, superseded = _without_mentions_of_lost_articles(out_dir, files["articles"], lost_articles,
                                                                set(salvaged_ids), stem)
        salvaged, damaged = salvaged + pruned, damaged + superseded
    if finals or old or damaged:  # the salvaged rows replace their damaged files in the same commit
        publish_files(out_dir, f"memory-{stem}", finals + salvaged + [manifest], replaced=old + damaged)
    else:  # a new dataset: nothing to publish together
        FileSystems.rename([hidden_path(manifest)], [manifest])
    return RebuildSummary(counts["articles"], counts["duplicates"], sum(map(len, files.values())),
                          key_table.num_rows, text_table.num_rows)


class _Batches:
    """Rows gathered from many small files, kept column-wise: Python lists
    until a batch is full, then an Arrow table (a year of history is
    millions of rows from a million files)."""

    BATCH_ROWS = 100_000

    def __init__(self, schema: pa.Schema):
        self.schema, self.tables, self.pending = schema, [], {name: [] for name in schema.names}

    def add(self, columns: dict[str, list]) -> None:
        for name, values in columns.items():
            self.pending[name].extend(values)
        if len(self.pending[self.schema.names[0]]) >= self.BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self.pending[self.schema.names[0]]:
            self.tables.append(pa.table(self.pending, schema=self.schema))
            self.pending = {name: [] for name in self.schema.names}

    def table(self) -> pa.Table:
        self._flush()
        return pa.concat_tables(self.tables) if self.tables else self.schema.empty_table()


def _key_rows(table: str, columns: dict[str, list], times: list[datetime], since: datetime | None
              ) -> dict[str, list]:
    """URL and id keys of every row; text hashes of the rows ingested since `since`."""
    kinds, keys, owners, when = [], [], [], []
    if table == "articles":
        rows = zip(columns["url"], columns["canonical_url"], columns["article_id"], columns["content_hash"],
                   times, strict=True)
        pairs = ((article_keys(url, canonical or url, article_id, text_hash or ""), article_id, moment)
                 for url, canonical, article_id, text_hash, moment in rows)
    else:
        rows = zip(columns["url"], columns["article_id"], columns["duplicate_of"], times, strict=True)
        pairs = ((duplicate_keys(url, article_id), kept, moment) for url, article_id, kept, moment in rows)
    for found, owner, moment in pairs:
        for kind, key in found:
            if key and (kind != "hash" or since is None or moment >= since):
                kinds.append(kind)
                keys.append(key)
                owners.append(owner)
                when.append(moment)
    return {"key": keys, "kind": kinds, "article_id": owners, "ingested_at": when}


def _text_rows(columns: dict[str, list], times: list[datetime], since: datetime | None,
               bands: int) -> dict[str, list]:
    """Signatures of the articles ingested inside the look-back window."""
    rows = [index for index, (minhash, moment) in enumerate(zip(columns["minhash"], times, strict=True))
            if minhash and len(minhash) % bands == 0 and (since is None or moment >= since)]
    if not rows:
        return {}
    width = len(columns["minhash"][rows[0]])
    rows = [index for index in rows if len(columns["minhash"][index]) == width]
    matrix = np.asarray([columns["minhash"][index] for index in rows], dtype=np.uint32)
    return {
        "article_id": [columns["article_id"][index] for index in rows],
        "ingested_at": [times[index] for index in rows],
        "bands": band_hashes(matrix, bands).tolist(),
        "minhash": [columns["minhash"][index] for index in rows],
        "numbers": [columns["numbers"][index] or [] for index in rows],
        "word_count": [columns["word_count"][index] or 0 for index in rows]}


def _write_buckets(out_dir: str, keys: pa.Table, settings: MemorySettings, stem: str) -> list[str]:
    buckets = np.asarray([bucket_of(key, settings.buckets) for key in keys["key"].to_pylist()])
    return _write_groups(out_dir, "keys", keys, buckets, "key", stem)


def _write_days(out_dir: str, texts: pa.Table, stem: str) -> list[str]:
    days = np.asarray([moment.date().isoformat() for moment in texts["ingested_at"].to_pylist()])
    return _write_groups(out_dir, "texts", texts, days, "article_id", stem)


def _write_groups(out_dir: str, kind: str, table: pa.Table, groups: np.ndarray, sort_key: str,
                  stem: str) -> list[str]:
    """One hidden file per group (bucket or day) of the table's rows; their final paths."""
    if not table.num_rows:
        return []
    order = np.argsort(groups, kind="stable")
    names, starts = np.unique(groups[order], return_index=True)
    ends = [*starts[1:], len(order)]
    ordered = table.take(order)
    return [write_table(folder_of(out_dir, kind, str(name)), f"{kind}-{stem}.parquet",
                        ordered.slice(start, end - start).sort_by(sort_key), publish=False)
            for name, start, end in zip(names, starts, ends, strict=True)]


def ensure_memory(out_dir: str, settings: MemorySettings, dedup: DedupSettings) -> RebuildSummary | None:
    """Before a run (holding the lock): a dataset without a memory that
    serves this run gets one, built from its tables (an empty one for a new
    dataset). Returns what the build read, or None when it was there.
    A memory file whose footer cannot be read (truncated, empty, not a
    file) is quarantined, and the memory built anew."""
    if manifest_serves(read_manifest(out_dir), settings, dedup.lookback_days):
        damaged = _damaged_memory_files(out_dir)
        if not damaged:
            return None
        for path, error in damaged:
            quarantine(out_dir, path, error, "the dataset memory is rebuilt from the tables")
    return rebuild_memory(out_dir, settings, dedup)


def _damaged_memory_files(out_dir: str) -> list[tuple[str, Exception]]:
    """Local memory files whose Parquet footer cannot be read, with why (a
    few hundred footers: milliseconds). An object store's uploads are whole,
    and opening each file there would cost a request: not checked."""
    if "://" in out_dir:
        return []
    damaged = []
    for path in memory_files(memory_path(out_dir), "*", "*", "*.parquet"):
        try:
            if not is_regular_file(path):
                raise OSError("not a regular file")
            pq.read_metadata(path)
        except Exception as error:  # noqa: BLE001 -- any damage: set aside and rebuild
            damaged.append((path, error))
    return damaged


def memory_status(out_dir: str) -> str:
    """What the memory holds, in a few lines (from file footers: no rows read)."""
    manifest = read_manifest(out_dir) or {}
    days = manifest.get("texts_days")
    lines = [f"dataset memory of {out_dir} (signatures kept "
             f"{'for good' if days == 0 else f'{days} days'})"]
    for kind, label in (("keys", "buckets"), ("texts", "days")):
        paths = memory_files(memory_path(out_dir), kind, "*", "*.parquet")
        rows = size = 0
        for path in paths:
            with FileSystems.open(path) as handle:
                rows += pq.ParquetFile(handle).metadata.num_rows
            size += os.path.getsize(path) if os.path.exists(path) else 0
        folders = len({path.rsplit("/", 1)[0] for path in paths})
        lines.append(f"  {kind}: {rows:,} rows in {folders:,} {label}, {len(paths):,} files, "
                     f"{size / 2**20:.1f} MiB")
    return "\n".join(lines)

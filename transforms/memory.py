"""The dataset memory: what dedup needs of earlier runs, read only as far as
a run's new items need.

Reading every stored file on every run makes a run's cost grow with the
dataset's history (a year of 15-minute runs is ~870,000 files). The memory
keeps only the identities dedup compares against, in few files:

    DIR/_state/memory/manifest.json                        format, bucket count
    DIR/_state/memory/keys/bucket=NNN/keys-<run>.parquet   url / id / text-hash key -> stored article
    DIR/_state/memory/texts/day=YYYY-MM-DD/texts-<run>.parquet
                                    MinHash, figures and length of the articles ingested that day

Keys are spread over a fixed number of buckets by a hash of the key. A run
groups its own keys by bucket and reads just those buckets: a join, each
bucket read by one worker, no side input of the history. Texts are kept by
ingestion day; a run with new articles reads the days of its look-back
window and keeps only the stored articles sharing an LSH band with one of
them; days past the window are deleted whole.

Each bucket and each day is one file: a run that adds rows writes the old
rows and its new ones as a new file, published by the same commit as the
run's tables, which then deletes the file it replaces. Readers take the
union of a folder's files, so a crash between the two loses nothing; the
memory is never ahead of or behind the tables. It is derived data:
`rebuild_memory` makes it anew from the tables, and a run meeting a dataset
without it (written by an older version) builds it first.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from schemas.records import Article, Duplicate, Fingerprint
from schemas.settings import DedupSettings, MemorySettings
from schemas.tables import TIMESTAMP

from .dedup import url_id
from .neardup import Member, figures, member_order, signature_values
from .write import dataset_files, hidden_path, publish_files, run_time, window_run_id, write_table

MEMORY = ("_state", "memory")
MANIFEST = "manifest.json"
# Bumped when the memory's layout changes: a run then rebuilds it from the tables.
FORMAT = 1

KEYS = pa.schema([
    pa.field("key", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),  # url | id | hash
    pa.field("article_id", pa.string(), nullable=False),  # the stored article it leads to
    pa.field("ingested_at", TIMESTAMP, nullable=False),
])

TEXTS = pa.schema([
    pa.field("article_id", pa.string(), nullable=False),
    pa.field("ingested_at", TIMESTAMP, nullable=False),
    # One 32-bit hash per LSH band of the MinHash: what a run scans to find
    # candidates, a quarter of the signature's size.
    pa.field("bands", pa.list_(pa.uint32())),
    pa.field("minhash", pa.list_(pa.uint32())),
    pa.field("numbers", pa.list_(pa.string())),
    pa.field("word_count", pa.int32()),
])


class MemoryDamaged(Exception):
    """A memory file cannot be read; the message says how to rebuild it."""

    def __init__(self, path: str, error: Exception):
        super().__init__(f"dataset memory file {path} cannot be read: rebuild the memory from the tables "
                         f"with `news-ingest memory --rebuild --out DIR` ({type(error).__name__}: {error})")


def memory_path(out_dir: str, *parts: str) -> str:
    return FileSystems.join(out_dir, *MEMORY, *parts)


def bucket_of(key: str, buckets: int) -> str:
    """The bucket a key is kept in: fixed by the key alone."""
    number = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=4).digest(), "big")
    return f"{number % buckets:03x}"


def article_keys(url: str, canonical_url: str, article_id: str, text_hash: str) -> list[tuple[str, str]]:
    """(kind, key) a stored article answers to: its URLs and id for good, its
    text hash while inside the look-back window."""
    return list(dict.fromkeys([("url", url_id(url)), ("url", url_id(canonical_url)),
                               ("id", article_id), ("hash", text_hash)]))


def duplicate_keys(url: str, article_id: str) -> list[tuple[str, str]]:
    """A stored copy's URL and id lead to the article kept in its stead."""
    return list(dict.fromkeys([("url", url_id(url)), ("id", article_id)]))


def memory_rows(record, ingested_at: datetime, buckets: int, bands: int
                ) -> list[tuple[tuple[str, str], dict]]:
    """((folder kind, folder value), row) for what a written record adds to the memory."""
    if isinstance(record, Article):
        keys, owner = article_keys(record.url, record.canonical_url, record.article_id,
                                   record.content_hash), record.article_id
    elif isinstance(record, Duplicate):
        keys, owner = duplicate_keys(record.url, record.article_id), record.duplicate_of
    else:
        return []
    rows = [(("keys", bucket_of(key, buckets)),
             {"key": key, "kind": kind, "article_id": owner, "ingested_at": ingested_at})
            for kind, key in keys]
    if isinstance(record, Article) and record.signature:
        rows.append((("texts", ingested_at.date().isoformat()),
                     text_row(record.article_id, ingested_at, signature_values(record.signature),
                              sorted(figures(record.text)), record.word_count, bands)))
    return rows


def text_row(article_id: str, ingested_at: datetime, minhash: list[int], numbers: list[str],
             words: int, bands: int) -> dict:
    bands_of = band_hashes(np.asarray([minhash], dtype=np.uint32), bands)[0].tolist()
    return {"article_id": article_id, "ingested_at": ingested_at, "bands": bands_of, "minhash": minhash,
            "numbers": numbers, "word_count": words}


def _folder(out_dir: str, kind: str, value: str) -> str:
    return memory_path(out_dir, kind, f"{'bucket' if kind == 'keys' else 'day'}={value}")


def _files(pattern: str) -> list[str]:
    return sorted(meta.path for result in FileSystems.match([pattern]) for meta in result.metadata_list)


def read_folder(folder: str, schema: pa.Schema, columns: list[str] | None = None
                ) -> tuple[pa.Table | None, list[str]]:
    """The union of a memory folder's files (their `columns`), and their
    paths. A file replaced while being listed is read from its replacement
    (listed again)."""
    for _attempt in range(3):
        paths = _files(FileSystems.join(folder, "*.parquet"))
        try:
            return read_files(paths, schema, columns), paths
        except FileNotFoundError:
            continue
    raise MemoryDamaged(folder, RuntimeError("its files keep changing while read"))


def read_files(paths: list[str], schema: pa.Schema, columns: list[str] | None = None) -> pa.Table | None:
    tables = [_read(path, schema, columns) for path in paths]
    return pa.concat_tables(tables) if tables else None


def _read(path: str, schema: pa.Schema, columns: list[str] | None) -> pa.Table:
    try:
        with FileSystems.open(path) as handle:
            return pq.read_table(handle, schema=schema, columns=columns)
    except FileNotFoundError:
        raise
    except Exception as error:  # truncated, not Parquet, wrong schema: the memory needs rebuilding
        if not FileSystems.exists(path):
            raise FileNotFoundError(path) from error
        raise MemoryDamaged(path, error) from error


def stored_keys(out_dir: str, bucket: str, wanted: set[str], hashes_since: datetime | None
                ) -> list[Fingerprint]:
    """What one bucket holds for the `wanted` keys; text hashes only when
    ingested since `hashes_since` (None: all)."""
    table, _ = read_folder(_folder(out_dir, "keys", bucket), KEYS)
    if table is None:
        return []
    found = table.filter(pc.is_in(table["key"], value_set=pa.array(sorted(wanted), pa.string())))
    return [Fingerprint(row["kind"], row["key"], row["article_id"]) for row in found.to_pylist()
            if row["kind"] != "hash" or hashes_since is None or row["ingested_at"] >= hashes_since]


def band_hashes(signatures: np.ndarray, bands: int) -> np.ndarray:
    """One 32-bit hash per LSH band of each signature (FNV-1a over its rows,
    folded): equal bands give equal hashes. It only proposes candidates --
    a rare collision costs one comparison, never a wrong verdict."""
    count, width = signatures.shape[0], signatures.shape[1] // bands
    values = signatures[:, :bands * width].reshape(count, bands, width).astype(np.uint64)
    hashed = np.full((count, bands), 0xCBF29CE484222325, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for row in range(width):
            hashed = (hashed ^ values[:, :, row]) * np.uint64(0x100000001B3)
    return ((hashed ^ (hashed >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def stored_lookalikes(out_dir: str, new_signatures: list[bytes], since: datetime | None,
                      settings: DedupSettings) -> list[Member]:
    """Stored articles ingested since `since` (None: all) that share an LSH
    band with one of the new signatures: the only stored ones near-duplicate
    grouping can pair with them. Only the band hashes of the window are
    scanned; signatures are read for the few that match."""
    new = [np.frombuffer(signature, dtype="<u4") for signature in new_signatures if signature]
    if not new:
        return []
    wanted = band_hashes(np.vstack(new), settings.minhash_bands)
    members = []
    for folder in sorted({path.rsplit("/", 1)[0] for path in _files(memory_path(out_dir, "texts", "day=*",
                                                                              "*.parquet"))}):
        day = _day_of(folder)
        if since is None or day is None or day >= since.date():
            members += _lookalikes_in(folder, wanted, since, settings.minhash_bands)
    return members


def _lookalikes_in(folder: str, wanted: np.ndarray, since: datetime | None, bands: int) -> list[Member]:
    table, paths = read_folder(folder, TEXTS, ["ingested_at", "bands"])
    if table is None:
        return []
    have = table["bands"].combine_chunks()
    complete = pc.equal(pc.list_value_length(have), bands).to_numpy(zero_copy_only=False)
    matrix = np.zeros((table.num_rows, bands), dtype=np.uint32)
    matrix[complete] = have.filter(pa.array(complete)).flatten().to_numpy().reshape(-1, bands)
    hits = np.zeros(table.num_rows, dtype=bool)
    for band in range(bands):
        hits |= np.isin(matrix[:, band], wanted[:, band])
    hits &= complete
    if since is not None:
        hits &= (table["ingested_at"].to_numpy() >= np.datetime64(since.replace(tzinfo=None), "us"))
    if not hits.any():
        return []
    stored = read_files(paths, TEXTS, ["article_id", "minhash", "numbers", "word_count"])
    rows = stored.take(np.flatnonzero(hits))
    return [Member(row["article_id"], np.asarray(row["minhash"], dtype="<u4").tobytes(),
                   frozenset(row["numbers"] or ()), row["word_count"] or 0,
                   member_order(True, None, (0, 0), row["article_id"]), prior=True)
            for row in rows.to_pylist()]


def _day_of(folder: str) -> date | None:
    """The day of a `texts/day=YYYY-MM-DD` folder (None if it is not one)."""
    folder = folder.rsplit("/", 1)[-1]
    try:
        return date.fromisoformat(folder.removeprefix("day="))
    except ValueError:
        return None


def lookback_start(lookback_days: int, now: datetime) -> datetime | None:
    """From when stored texts count (None: the whole history)."""
    return now - timedelta(days=lookback_days) if lookback_days > 0 else None


def merged_file(out_dir: str, kind: str, value: str, rows: list[dict], stem: str
                ) -> tuple[str, list[str]]:
    """A folder's rows plus `rows`, written hidden as one file named after
    `stem` (the run); returns its final path and the files it replaces."""
    schema = KEYS if kind == "keys" else TEXTS
    folder = _folder(out_dir, kind, value)
    old, paths = read_folder(folder, schema)
    table = pa.Table.from_pylist(rows, schema=schema)
    if old is not None:
        table = pa.concat_tables([old, table])
    table = table.sort_by("key" if kind == "keys" else "article_id")
    final = write_table(folder, f"{kind}-{stem}.parquet", table, publish=False)
    return final, [path for path in paths if path != final]


def expired_texts(out_dir: str, lookback_days: int, now: datetime) -> list[str]:
    """Text files of days wholly before the look-back window (a day's margin)."""
    start = lookback_start(lookback_days, now)
    if start is None:
        return []
    last_kept = start.date() - timedelta(days=1)
    return [path for path in _files(memory_path(out_dir, "texts", "day=*", "*.parquet"))
            if (_day_of(path.rsplit("/", 1)[0]) or last_kept) < last_kept]


def ingestion_time(stem: str) -> datetime:
    """When a run's rows were ingested: its start, from its id (a run id
    without a time, as tests give, means now)."""
    try:
        return run_time(stem)
    except ValueError:
        return datetime.now(UTC)


@dataclass(frozen=True)
class DatasetMemory:
    """Where a run's dedup looks up earlier runs, and how far back texts count."""

    out_dir: str
    settings: MemorySettings
    lookback_days: int

    def keys(self) -> StoredKeys:
        return StoredKeys(self)

    def lookalikes(self, settings: DedupSettings) -> StoredLookalikes:
        return StoredLookalikes(self, settings)


class _ReadBucketFn(beam.DoFn):
    def __init__(self, memory: DatasetMemory):
        self.memory = memory

    def process(self, grouped):
        bucket, keys = grouped
        since = lookback_start(self.memory.lookback_days, datetime.now(UTC))
        yield from stored_keys(self.memory.out_dir, bucket, set(keys), since)


class StoredKeys(beam.PTransform):
    """key -> the Fingerprints earlier runs left for it (url, id, or text hash
    inside the look-back window); only the buckets of the given keys are read."""

    def __init__(self, memory: DatasetMemory):
        super().__init__()
        self.memory = memory

    def expand(self, keys):
        buckets = self.memory.settings.buckets
        return (keys
                | "ByBucket" >> beam.Map(lambda key: (bucket_of(key, buckets), key))
                | "Group" >> beam.GroupByKey()
                | "Read" >> beam.ParDo(_ReadBucketFn(self.memory)))


class _ReadLookalikesFn(beam.DoFn):
    def __init__(self, memory: DatasetMemory, settings: DedupSettings):
        self.memory, self.settings = memory, settings

    def process(self, signatures: list[bytes]):
        since = lookback_start(self.memory.lookback_days, datetime.now(UTC))
        yield from stored_lookalikes(self.memory.out_dir, signatures, since, self.settings)


class StoredLookalikes(beam.PTransform):
    """Member (this run's) -> Members of stored articles in the look-back
    window that share a band with one of them (nothing is read without new articles)."""

    def __init__(self, memory: DatasetMemory, settings: DedupSettings):
        super().__init__()
        self.memory, self.settings = memory, settings

    def expand(self, members):
        return (members
                | "Signatures" >> beam.Map(lambda member: member.signature)
                | "ThisRun" >> beam.combiners.ToList().without_defaults()
                | "Read" >> beam.ParDo(_ReadLookalikesFn(self.memory, self.settings)))


class _RowsFn(beam.DoFn):
    def __init__(self, run_id: str, buckets: int, bands: int):
        self.run_id, self.buckets, self.bands = run_id, buckets, bands

    def process(self, record, window=beam.DoFn.WindowParam):
        yield from memory_rows(record, ingestion_time(window_run_id(self.run_id, window)), self.buckets,
                               self.bands)


class _MergeFn(beam.DoFn):
    def __init__(self, memory: DatasetMemory, run_id: str):
        self.memory, self.run_id = memory, run_id

    def process(self, grouped, window=beam.DoFn.WindowParam):
        (kind, value), rows = grouped
        stem = window_run_id(self.run_id, window)
        final, replaced = merged_file(self.memory.out_dir, kind, value, list(rows), stem)
        if kind == "texts":
            replaced += [path for path in expired_texts(self.memory.out_dir, self.memory.lookback_days,
                                                        ingestion_time(stem)) if path not in replaced]
        yield final, tuple(replaced)


class RememberWritten(beam.PTransform):
    """Records being written -> (hidden memory file, files it replaces), for
    the write stage to publish in the same commit as the tables."""

    def __init__(self, memory: DatasetMemory, run_id: str):
        super().__init__()
        self.memory, self.run_id = memory, run_id

    def expand(self, records):
        return (records
                | "Rows" >> beam.ParDo(_RowsFn(self.run_id, self.memory.settings.buckets,
                                               DedupSettings().minhash_bands))
                | "ByFile" >> beam.GroupByKey()
                | "Merge" >> beam.ParDo(_MergeFn(self.memory, self.run_id)))


def _manifest(out_dir: str) -> str:
    return memory_path(out_dir, MANIFEST)


def manifest_matches(out_dir: str, settings: MemorySettings) -> bool:
    """Whether DIR holds a memory this version reads (same format and buckets)."""
    try:
        with FileSystems.open(_manifest(out_dir)) as handle:
            manifest = json.loads(handle.read().decode("utf-8"))
    except Exception:  # missing, unreadable or not JSON: the memory must be built
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT \
        and manifest.get("buckets") == settings.buckets


def _manifest_bytes(settings: MemorySettings) -> bytes:
    return json.dumps({"format": FORMAT, "buckets": settings.buckets}).encode("utf-8")


@dataclass(frozen=True)
class RebuildSummary:
    articles: int
    duplicates: int
    files_read: int
    keys: int
    texts: int


TABLE_COLUMNS = {
    "articles": ("url", "canonical_url", "article_id", "content_hash", "run_id", "minhash", "numbers",
                 "word_count"),
    "duplicates": ("url", "article_id", "duplicate_of", "run_id"),
}


def _stored_rows(path: str, table: str) -> dict[str, list]:
    """A stored file's columns that the memory needs; columns an older
    version did not write read as null."""
    try:
        with FileSystems.open(path) as handle:
            parquet = pq.ParquetFile(handle)
            present = [name for name in TABLE_COLUMNS[table] if name in parquet.schema_arrow.names]
            columns = parquet.read(columns=present).to_pydict()
    except Exception as error:
        raise ValueError(f"cannot read {path}: {type(error).__name__}: {error}") from error
    rows = len(next(iter(columns.values()), []))
    return {name: columns.get(name, [None] * rows) for name in TABLE_COLUMNS[table]}


def rebuild_memory(out_dir: str, settings: MemorySettings, lookback_days: int,
                   now: datetime | None = None) -> RebuildSummary:
    """Make the memory anew from the `articles` and `duplicates` tables and
    publish it in one commit, replacing whatever memory there was."""
    now = now or datetime.now(UTC)
    since = lookback_start(lookback_days, now)
    folders: dict[tuple[str, str], list[dict]] = defaultdict(list)
    counts = {"articles": 0, "duplicates": 0}
    files = {table: dataset_files(out_dir, table) for table in counts}
    for table, paths in files.items():
        for path in paths:
            columns = _stored_rows(path, table)
            counts[table] += len(columns["url"])
            for row in (dict(zip(columns, values, strict=True)) for values in zip(*columns.values(),
                                                                                   strict=True)):
                for folder, memory_row in _rebuilt_rows(table, row, path, since, settings.buckets):
                    folders[folder].append(memory_row)
    stem = f"{now:%Y%m%dT%H%M%SZ}-rebuild-{secrets.token_hex(3)}"
    finals = [write_table(_folder(out_dir, kind, value), f"{kind}-{stem}.parquet",
                          pa.Table.from_pylist(rows, schema=KEYS if kind == "keys" else TEXTS)
                          .sort_by("key" if kind == "keys" else "article_id"), publish=False)
              for (kind, value), rows in sorted(folders.items())]
    manifest = _manifest(out_dir)
    write_bytes_hidden(manifest, _manifest_bytes(settings))
    old = [path for path in _files(memory_path(out_dir, "*", "*", "*.parquet")) if path not in finals]
    if finals or old:
        publish_files(out_dir, f"memory-{stem}", finals + [manifest], replaced=old)
    else:  # a new dataset: nothing to publish together
        FileSystems.rename([hidden_path(manifest)], [manifest])
    return RebuildSummary(counts["articles"], counts["duplicates"], sum(map(len, files.values())),
                          sum(len(rows) for (kind, _), rows in folders.items() if kind == "keys"),
                          sum(len(rows) for (kind, _), rows in folders.items() if kind == "texts"))


def _rebuilt_rows(table: str, row: dict, path: str, since: datetime | None, buckets: int):
    ingested = _ingested_at(row.get("run_id"), path)
    if table == "articles":
        keys, owner = article_keys(row["url"], row["canonical_url"] or row["url"], row["article_id"],
                                   row["content_hash"]), row["article_id"]
    else:
        keys, owner = duplicate_keys(row["url"], row["article_id"]), row["duplicate_of"]
    for kind, key in keys:
        if key:
            yield ("keys", bucket_of(key, buckets)), {"key": key, "kind": kind, "article_id": owner,
                                                      "ingested_at": ingested}
    if table == "articles" and row["minhash"] and (since is None or ingested >= since):
        yield ("texts", ingested.date().isoformat()), text_row(
            owner, ingested, row["minhash"], row["numbers"] or [], row["word_count"] or 0,
            DedupSettings().minhash_bands)


def _ingested_at(run_id: str | None, path: str) -> datetime:
    """When a stored row was ingested: its run's start (from the run id, else
    the file name's); a row naming neither counts as ingested long ago."""
    for text in (run_id or "", path.rsplit("/", 1)[-1].removeprefix("part-")):
        try:
            return run_time(text)
        except ValueError:
            continue
    return datetime(1970, 1, 1, tzinfo=UTC)


def write_bytes_hidden(final: str, data: bytes) -> None:
    with FileSystems.create(hidden_path(final)) as handle:
        handle.write(data)


def ensure_memory(out_dir: str, settings: MemorySettings, lookback_days: int) -> RebuildSummary | None:
    """Before a run: a dataset without a memory this version reads gets one,
    built from its tables (an empty one for a new dataset). Returns what the
    build read, or None when the memory was there."""
    if manifest_matches(out_dir, settings):
        return None
    return rebuild_memory(out_dir, settings, lookback_days)


def memory_status(out_dir: str) -> str:
    """What the memory holds, in a few lines (from file footers: no rows read)."""
    lines = []
    for kind, label in (("keys", "buckets"), ("texts", "days of signatures")):
        paths = _files(memory_path(out_dir, kind, "*", "*.parquet"))
        rows = 0
        for path in paths:
            with FileSystems.open(path) as handle:
                rows += pq.ParquetFile(handle).metadata.num_rows
        size = sum(meta.size_in_bytes for result in FileSystems.match(paths) for meta in result.metadata_list)
        folders = len({path.rsplit("/", 1)[0] for path in paths})
        lines.append(f"  {kind:<6}{rows:>10} rows in {folders} {label}, {len(paths)} files, "
                     f"{size / 2**20:.1f} MiB")
    return "\n".join([f"dataset memory of {out_dir}", *lines])

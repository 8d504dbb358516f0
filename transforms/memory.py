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
pipelines/rebuild.py makes it anew from the tables, and a run meeting a
dataset without it (written by an older version) builds it first.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from schemas.layout import (
    MEMORY,
    flush_to_disk,
    hidden_path,
    matching_files,
    run_time,
    write_table,
)
from schemas.records import Article, Duplicate, Fingerprint
from schemas.settings import DedupSettings, MemorySettings
from schemas.tables import TIMESTAMP

from .metrics import counter
from .neardup import Member, member_order, signature_values
from .quarantine import DamagedFile, require_regular_file
from .urls import url_id
from .windows import window_run_id

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
    """A memory file cannot be read: the run stops (deduplicating without it
    would store copies); the memory can be rebuilt from the tables."""

    def __init__(self, path: str, error: Exception):
        super().__init__(f"dataset memory file {path} cannot be read ({type(error).__name__}: {error}); "
                         "the memory can be rebuilt from the tables")


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
        minhash = signature_values(record.signature)
        rows.append((("texts", ingested_at.date().isoformat()), {
            "article_id": record.article_id, "ingested_at": ingested_at,
            "bands": band_hashes(np.asarray([minhash], dtype=np.uint32), bands)[0].tolist(),
            "minhash": minhash, "numbers": sorted(record.numbers), "word_count": record.word_count}))
    return rows


def folder_of(out_dir: str, kind: str, value: str) -> str:
    """keys/bucket=NNN or texts/day=YYYY-MM-DD."""
    return memory_path(out_dir, kind, f"{'bucket' if kind == 'keys' else 'day'}={value}")


def memory_files(folder: str, *pattern: str) -> list[str]:
    """Files under a memory folder that the glob `pattern` matches (the folder taken literally)."""
    return matching_files(folder, *pattern)


# A folder's file is replaced when a run adds to it: a reader that listed
# the old one reads the new one instead; more tries than concurrent writers
# of one folder (streaming windows) make it fail.
_READ_TRIES = 3


def read_folder(folder: str, schema: pa.Schema, columns: list[str] | None = None
                ) -> tuple[pa.Table | None, list[str]]:
    """The union of a memory folder's files (their `columns`), and their
    paths. A file replaced while being listed is read from its replacement."""
    for _attempt in range(_READ_TRIES):
        paths = memory_files(folder, "*.parquet")
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
        require_regular_file(path)  # a FIFO would block the read forever
        with FileSystems.open(path) as handle:
            return pq.read_table(handle, schema=schema, columns=columns)
    except FileNotFoundError:  # replaced while listed: `read_folder` lists again
        raise
    # Truncated, not Parquet, wrong columns, a damaged page ("Couldn't deserialize thrift"), a FIFO.
    except (pa.ArrowException, ValueError, EOFError, OSError, DamagedFile) as error:
        raise MemoryDamaged(path, error) from error


def stored_keys(out_dir: str, bucket: str, wanted: set[str], hashes_since: datetime | None
                ) -> list[Fingerprint]:
    """What one bucket holds for the `wanted` keys; text hashes only when
    ingested since `hashes_since` (None: all)."""
    table, _ = read_folder(folder_of(out_dir, "keys", bucket), KEYS)
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
    for folder in sorted({path.rsplit("/", 1)[0]
                          for path in memory_files(memory_path(out_dir), "texts", "day=*", "*.parquet")}):
        day = day_of(folder)
        if since is None or day is None or day >= since.date():
            members += _lookalikes_in(folder, wanted, since, settings.minhash_bands)
    return members


def _lookalikes_in(folder: str, wanted: np.ndarray, since: datetime | None, bands: int) -> list[Member]:
    for _attempt in range(_READ_TRIES):
        table, paths = read_folder(folder, TEXTS, ["ingested_at", "bands"])
        if table is None:
            return []
        hits = _band_hits(table, wanted, since, bands)
        if not hits.any():
            return []
        try:  # the signatures of the few that match, from the very files scanned
            stored = read_files(paths, TEXTS, ["article_id", "minhash", "numbers", "word_count"])
        except FileNotFoundError:
            continue
        return [Member(row["article_id"], np.asarray(row["minhash"], dtype="<u4").tobytes(),
                       frozenset(row["numbers"] or ()), row["word_count"] or 0,
                       member_order(True, None, (0, 0), row["article_id"]), prior=True)
                for row in stored.take(np.flatnonzero(hits)).to_pylist()]
    raise MemoryDamaged(folder, RuntimeError("its files keep changing while read"))


def _band_hits(table: pa.Table, wanted: np.ndarray, since: datetime | None, bands: int) -> np.ndarray:
    """Which rows share a band with a wanted signature (and were ingested since `since`)."""
    have = table["bands"].combine_chunks()
    complete = pc.equal(pc.fill_null(pc.list_value_length(have), 0), bands).to_numpy(zero_copy_only=False)
    matrix = np.zeros((table.num_rows, bands), dtype=np.uint32)
    matrix[complete] = have.filter(pa.array(complete)).flatten().to_numpy().reshape(-1, bands)
    hits = np.zeros(table.num_rows, dtype=bool)
    for band in range(bands):
        hits |= np.isin(matrix[:, band], wanted[:, band])
    hits &= complete
    if since is not None:
        hits &= table["ingested_at"].to_numpy() >= np.datetime64(since.replace(tzinfo=None), "us")
    return hits


def day_of(folder: str) -> date | None:
    """The day of a `texts/day=YYYY-MM-DD` folder (None if it is not one)."""
    try:
        return date.fromisoformat(folder.rsplit("/", 1)[-1].removeprefix("day="))
    except ValueError:
        return None


def lookback_start(lookback_days: int, now: datetime) -> datetime | None:
    """From when stored texts count (None: the whole history)."""
    return now - timedelta(days=lookback_days) if lookback_days > 0 else None


def merged_table(old: pa.Table | None, rows: list[dict], kind: str, keep_since: datetime | None) -> pa.Table:
    """A folder's rows and new ones as one table: each row once (however
    often concurrent writers wrote it), text hashes no longer kept dropped."""
    schema = KEYS if kind == "keys" else TEXTS
    table = pa.Table.from_pylist(rows, schema=schema)
    if old is not None:
        table = pa.concat_tables([old, table])
    if kind == "keys":
        if keep_since is not None:
            recent = pc.greater_equal(table["ingested_at"], pa.scalar(keep_since, TIMESTAMP))
            table = table.filter(pc.or_(pc.not_equal(table["kind"], "hash"), recent))
        first = (table.group_by(["key", "kind", "article_id"]).aggregate([("ingested_at", "min")])
                 .select(["key", "kind", "article_id", "ingested_at_min"]))
        return first.rename_columns(schema.names).cast(schema).sort_by("key")
    table = table.sort_by([("article_id", "ascending"), ("ingested_at", "ascending")])
    ids = table["article_id"].to_numpy(zero_copy_only=False)
    return table.filter(np.r_[True, ids[1:] != ids[:-1]] if len(ids) else np.zeros(0, dtype=bool))


def merged_file(out_dir: str, kind: str, value: str, rows: list[dict], stem: str,
                keep_since: datetime | None) -> tuple[str, list[str]]:
    """A folder's rows plus `rows`, written hidden as one file named after
    `stem` (the run); returns its final path and the files it replaces."""
    folder = folder_of(out_dir, kind, value)
    old, paths = read_folder(folder, KEYS if kind == "keys" else TEXTS)
    final = write_table(folder, f"{kind}-{stem}.parquet", merged_table(old, rows, kind, keep_since),
                        publish=False)
    return final, [path for path in paths if path != final]


def expired_texts(out_dir: str, keep_days: int, now: datetime) -> list[str]:
    """Text files of days wholly before the `keep_days` the memory keeps
    (with a day's margin for the window's first, partial day)."""
    start = lookback_start(keep_days, now)
    if start is None:
        return []
    last_kept = start.date() - timedelta(days=1)
    return [path for path in memory_files(memory_path(out_dir), "texts", "day=*", "*.parquet")
            if (day_of(path.rsplit("/", 1)[0]) or last_kept) < last_kept]


def ingestion_time(stem: str) -> datetime:
    """When a run's rows were ingested: its start, from its id (a run id
    without a time, as tests give, means now)."""
    try:
        return run_time(stem)
    except ValueError:
        return datetime.now(UTC)


def read_manifest(out_dir: str) -> dict | None:
    """The memory's manifest; None when there is none (or not a readable one)."""
    try:
        with FileSystems.open(memory_path(out_dir, MANIFEST)) as handle:
            manifest = json.loads(handle.read().decode("utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def manifest_serves(manifest: dict | None, settings: MemorySettings, lookback_days: int) -> bool:
    """Whether a memory serves a run: this format and bucket count, and
    signatures kept at least as far back as the run looks (0: all)."""
    if not manifest or manifest.get("format") != FORMAT or manifest.get("buckets") != settings.buckets:
        return False
    kept = manifest.get("texts_days")
    return kept == 0 or (isinstance(kept, int) and 0 < lookback_days <= kept)


def write_manifest_hidden(out_dir: str, settings: MemorySettings, texts_days: int) -> str:
    """The manifest, written hidden for a commit to publish; its final path."""
    final = memory_path(out_dir, MANIFEST)
    with FileSystems.create(hidden_path(final)) as handle:
        handle.write(json.dumps({"format": FORMAT, "buckets": settings.buckets,
                                 "texts_days": texts_days}).encode("utf-8"))
    flush_to_disk(hidden_path(final))
    return final


@dataclass(frozen=True)
class DatasetMemory:
    """Where a run's dedup looks up earlier runs, and how far back texts count."""

    out_dir: str
    settings: MemorySettings
    dedup: DedupSettings

    def key_lookup(self) -> StoredKeys:
        return StoredKeys(self)

    def lookalike_lookup(self) -> StoredLookalikes:
        return StoredLookalikes(self)


class _ReadBucketFn(beam.DoFn):
    def __init__(self, memory: DatasetMemory):
        self.memory = memory
        self.read, self.found = counter("memory/buckets_read"), counter("memory/keys_found")

    def process(self, grouped):
        bucket, keys = grouped
        since = lookback_start(self.memory.dedup.lookback_days, datetime.now(UTC))
        found = stored_keys(self.memory.out_dir, bucket, set(keys), since)
        self.read.inc()
        self.found.inc(len(found))
        yield from found


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
    def __init__(self, memory: DatasetMemory):
        self.memory = memory

    def process(self, signatures: list[bytes]):
        since = lookback_start(self.memory.dedup.lookback_days, datetime.now(UTC))
        yield from stored_lookalikes(self.memory.out_dir, signatures, since, self.memory.dedup)


class StoredLookalikes(beam.PTransform):
    """Member (this run's) -> Members of stored articles in the look-back
    window that share a band with one of them (nothing is read without new articles)."""

    def __init__(self, memory: DatasetMemory):
        super().__init__()
        self.memory = memory

    def expand(self, members):
        return (members
                | "Signatures" >> beam.Map(lambda member: member.signature)
                | "ThisRun" >> beam.combiners.ToList().without_defaults()
                | "Read" >> beam.ParDo(_ReadLookalikesFn(self.memory)))


class _RowsFn(beam.DoFn):
    def __init__(self, run_id: str, memory: DatasetMemory):
        self.run_id, self.memory = run_id, memory

    def process(self, record, window=beam.DoFn.WindowParam):
        yield from memory_rows(record, ingestion_time(window_run_id(self.run_id, window)),
                               self.memory.settings.buckets, self.memory.dedup.minhash_bands)


class _MergeFn(beam.DoFn):
    def __init__(self, memory: DatasetMemory, run_id: str):
        self.memory, self.run_id = memory, run_id
        self.rewritten = counter("memory/files_rewritten")

    def process(self, grouped, window=beam.DoFn.WindowParam):
        (kind, value), rows = grouped
        stem = window_run_id(self.run_id, window)
        manifest = read_manifest(self.memory.out_dir) or {}
        keep_days = manifest.get("texts_days", self.memory.dedup.lookback_days)
        keep_since = lookback_start(keep_days, ingestion_time(stem))
        final, replaced = merged_file(self.memory.out_dir, kind, value, list(rows), stem, keep_since)
        if kind == "texts":
            replaced += [path for path in expired_texts(self.memory.out_dir, keep_days, ingestion_time(stem))
                         if path not in replaced]
        self.rewritten.inc()
        yield final, tuple(replaced)


class RememberWritten(beam.PTransform):
    """Records being written -> (hidden memory file, files it replaces), for
    the write stage to publish in the same commit as the tables."""

    def __init__(self, memory: DatasetMemory, run_id: str):
        super().__init__()
        self.memory, self.run_id = memory, run_id

    def expand(self, records):
        return (records
                | "Rows" >> beam.ParDo(_RowsFn(self.run_id, self.memory))
                | "ByFile" >> beam.GroupByKey()
                | "Merge" >> beam.ParDo(_MergeFn(self.memory, self.run_id)))

"""Near-duplicate detection for the dedup stage: MinHash with LSH banding.

Syndicated copies differ from their original by a headline, a dateline
("BEIRUT (Agencies) –"), a cut paragraph, restyled numbers or the clutter of
another site. Each article's text is cut into overlapping word shingles and
summarised by a MinHash signature; signatures are cut into bands, and two
articles that agree on all rows of any band meet under the same band key.
Grouping by band key (a Beam GroupByKey, no index on one worker) yields the
candidate pairs; their estimated Jaccard similarity decides. Work grows
linearly with the number of articles: each is hashed once and lands in a
fixed number of buckets.

The thresholds are measured, not guessed: bench/bench_dedup.py.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from datasketch import MinHash

from schemas.settings import DedupSettings

from .textnorm import fold

# Signatures are stored with the articles: the permutation scheme must never
# change under them (datasketch 2 names it; "affine32" is its default).
SCHEME = "affine32"


@dataclass(frozen=True)
class Member:
    """What near-duplicate grouping knows of an article: this run's or stored."""

    article_id: str
    signature: bytes  # the MinHash values as little-endian uint32s (cheap to ship)
    # (stored by an earlier run, published, first seen, id): smallest is kept.
    order: tuple
    prior: bool = False


def shingles(text: str, size: int) -> set[bytes]:
    """Overlapping runs of `size` folded words (the whole text if shorter)."""
    words = fold(text).split()
    if len(words) <= size:
        return {" ".join(words).encode("utf-8")} if words else set()
    return {" ".join(words[start:start + size]).encode("utf-8")
            for start in range(len(words) - size + 1)}


class Signer:
    """MinHash signatures with one fixed set of permutations (so signatures
    from every run and every worker compare). Built once per worker."""

    def __init__(self, settings: DedupSettings):
        self.settings = settings
        template = MinHash(num_perm=settings.minhash_permutations, seed=settings.minhash_seed,
                           scheme=SCHEME)
        self.permutations = template.permutations

    def sign(self, text: str) -> bytes:
        minhash = MinHash(num_perm=self.settings.minhash_permutations, seed=self.settings.minhash_seed,
                          permutations=self.permutations, scheme=SCHEME)
        minhash.update_batch(list(shingles(text, self.settings.shingle_words)))
        return minhash.hashvalues.astype("<u4").tobytes()


def signature_values(signature: bytes) -> list[int]:
    """The MinHash values of a signature, as stored in Parquet."""
    return np.frombuffer(signature, dtype="<u4").tolist()


def signature_bytes(values: list[int]) -> bytes:
    return np.asarray(values, dtype="<u4").tobytes()


def similarity(first: bytes, second: bytes) -> float:
    """Estimated Jaccard similarity of two texts' shingle sets."""
    return float(np.mean(np.frombuffer(first, dtype="<u4") == np.frombuffer(second, dtype="<u4")))


def band_keys(signature: bytes, bands: int) -> list[bytes]:
    """One key per band of the signature: equal keys mean equal rows."""
    width = len(signature) // bands
    return [bytes([band]) + hashlib.blake2b(signature[band * width:(band + 1) * width],
                                           digest_size=8).digest()
            for band in range(bands)]


def candidate_pairs(bucket: list[Member], max_bucket: int) -> list[tuple[Member, Member]]:
    """Pairs worth comparing in one band bucket: never two stored articles
    (earlier runs already settled them). An oversized bucket (a template no
    cleaning caught) is compared against its first members only, keeping the
    work linear."""
    ordered = sorted(bucket, key=lambda member: member.order)
    anchors = ordered[:max_bucket]
    pairs = []
    for index, member in enumerate(ordered):
        for anchor in anchors[:index] if index < max_bucket else anchors:
            if not (member.prior and anchor.prior):
                pairs.append((anchor, member))
    return pairs


def clusters(edges: list[tuple[Member, Member, float]]) -> dict[str, tuple[str, float]]:
    """For every article that is a near copy: (article kept, similarity).

    Connected components of the similarity edges (union-find, over duplicate
    pairs only); each component keeps its smallest `order` -- a stored
    article first, then the earliest published, then the first seen.
    """
    parent: dict[str, str] = {}
    members: dict[str, Member] = {}
    best: dict[str, float] = {}

    def root(article_id: str) -> str:
        while parent[article_id] != article_id:
            parent[article_id] = parent[parent[article_id]]
            article_id = parent[article_id]
        return article_id

    for first, second, score in edges:
        for member in (first, second):
            members.setdefault(member.article_id, member)
            parent.setdefault(member.article_id, member.article_id)
            best[member.article_id] = max(best.get(member.article_id, 0.0), score)
        a, b = root(first.article_id), root(second.article_id)
        if a != b:
            keep, drop = sorted((a, b), key=lambda article_id: members[article_id].order)
            parent[drop] = keep
    return {article_id: (root(article_id), best[article_id]) for article_id in members
            if root(article_id) != article_id}


def member_order(prior: bool, published_at: datetime, first_seen: tuple, article_id: str) -> tuple:
    return (not prior, published_at, first_seen, article_id)

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
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np
from datasketch import MinHash

from schemas.records import Article
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
    # The figures the text states (see `figures`): copies keep them.
    numbers: frozenset[str]
    # Its length in words (CJK characters): a cut copy is the shorter one.
    words: int
    # (stored by an earlier run, dated time, first seen, id): smallest is kept.
    order: tuple
    prior: bool = False


# Characters of scripts written without spaces (Han, Kana, Hangul) are tokens
# of their own; other tokens are folded words.
_TOKENS = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]|[^\s\u3040-\u30ff"
                     r"\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+")
_NUMBER = re.compile(r"\d(?:[\d,.\u066b\u066c\u00a0 ]*\d)?")


def shingles(text: str, size: int) -> set[bytes]:
    """Overlapping runs of `size` tokens (the whole text if shorter)."""
    tokens = _TOKENS.findall(fold(text))
    if len(tokens) <= size:
        return {" ".join(tokens).encode("utf-8")} if tokens else set()
    return {" ".join(tokens[start:start + size]).encode("utf-8")
            for start in range(len(tokens) - size + 1)}


def figures(text: str) -> frozenset[str]:
    """The numbers a text states, written one way ("3,000" == "3000").
    Single digits are left out: copies spell them out ("three") at will."""
    return frozenset(number for number in (re.sub(r"\D", "", match) for match in _NUMBER.findall(text))
                     if len(number) > 1)


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


def signed(article: Article, signer: Signer) -> Article:
    """The article with what near-duplicate detection compares: its MinHash
    signature and the figures its text states (stored with it, too)."""
    return replace(article, signature=signer.sign(article.text), numbers=figures(article.text))


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


def containment(score: float, larger: int, smaller: int) -> float:
    """How much of the smaller text lies in the larger, from their Jaccard
    similarity and sizes: |A∩B| = J(|A|+|B|)/(1+J)."""
    if smaller <= 0:
        return 0.0
    return min(1.0, score * (larger + smaller) / ((1 + score) * smaller))


def same_story(earlier: Member, later: Member, settings: DedupSettings) -> float | None:
    """The similarity of a later article to an earlier one when it is a copy
    of it, or None when they are different stories.

    The texts must be similar (Jaccard at the threshold), or the later one a
    cut of the earlier (shorter, and contained in it) -- never the reverse:
    a full story that grew out of an earlier brief is not the brief's copy.
    And when both state several figures, they must mostly agree: a daily
    strike report or death toll repeats yesterday's wording with today's
    numbers; a copy keeps them ("3,000" and "3000" are one figure, single
    digits are left out as copies spell them out).
    """
    score = similarity(earlier.signature, later.signature)
    similar = score >= settings.near_threshold
    cut = (later.words <= earlier.words and score >= settings.containment_floor
           and containment(score, earlier.words, later.words) >= settings.near_containment)
    if not (similar or cut):
        return None
    if min(len(earlier.numbers), len(later.numbers)) >= settings.min_figures:
        shared = len(earlier.numbers & later.numbers)
        # A similar copy keeps the figures (share of all); a cut copy keeps its own (share of its).
        agreement = shared / len(earlier.numbers | later.numbers) if similar else shared / len(later.numbers)
        if agreement < settings.figure_agreement:
            return None
    return score


def candidate_pairs(bucket: list[Member], max_bucket: int) -> list[tuple[Member, Member]]:
    """(earlier, later) pairs worth comparing in one band bucket: never two
    stored articles (earlier runs settled them). An oversized bucket (a
    template no cleaning caught) is compared against its first members only,
    keeping the work linear."""
    ordered = sorted(bucket, key=lambda member: member.order)
    anchors = ordered[:max_bucket]
    pairs = []
    for index, member in enumerate(ordered):
        for anchor in anchors[:index] if index < max_bucket else anchors:
            if not (member.prior and anchor.prior):
                pairs.append((anchor, member))
    return pairs


@dataclass(frozen=True)
class Edge:
    """A later article and an earlier one it is a near copy of (no signatures:
    the duplicate graph travels light)."""

    later: str
    earlier: str
    similarity: float
    later_order: tuple
    earlier_order: tuple
    earlier_prior: bool


def edge(earlier: Member, later: Member, score: float) -> Edge:
    return Edge(later.article_id, earlier.article_id, score, later.order, earlier.order, earlier.prior)


def nearest_earlier(edges: list[Edge], limit: int) -> list[Edge]:
    """The `limit` earliest neighbours of one article (bounds the graph: a
    text with hundreds of look-alikes keeps a handful)."""
    return sorted(edges, key=lambda found: found.earlier_order)[:limit]


def keepers(edges: list[Edge]) -> dict[str, tuple[str, float]]:
    """For every article that is a near copy: (article kept, similarity).

    Articles are settled in order, earliest first (stored ones are always
    kept). An article is a copy of the earliest kept article it is directly
    similar to; with none, it is kept itself. So a copy always points at an
    article it resembles, and a chain of look-alikes (live-blog pages, each
    close to the next) does not fold into its first page.
    """
    earlier_of: dict[str, list[Edge]] = {}
    for found in edges:
        earlier_of.setdefault(found.later, []).append(found)
    copies: dict[str, tuple[str, float]] = {}
    # Every earlier neighbour sorts before its later one, so it is settled
    # (a copy, or kept) by the time the later one is looked at.
    for article_id in sorted(earlier_of, key=lambda later: earlier_of[later][0].later_order):
        kept = [found for found in earlier_of[article_id]
                if found.earlier_prior or found.earlier not in copies]
        if kept:
            best = min(kept, key=lambda found: found.earlier_order)
            copies[article_id] = (best.earlier, best.similarity)
    return copies


def member_order(prior: bool, dated: datetime | None, first_seen: tuple, article_id: str) -> tuple:
    """Stored first, then the earliest dated (undated last), then first seen."""
    return (not prior, dated or _UNDATED, first_seen, article_id)


_UNDATED = datetime.max.replace(tzinfo=UTC)

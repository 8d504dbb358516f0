"""Dedup stage: one copy of each article, every other copy recorded.

Identity is layered. Before fetching, a feed link whose canonical form was
seen in this run or stored by an earlier run is not fetched again. After
cleaning, articles meet by `article_id` (the canonical URL, honouring
rel=canonical), by `content_hash` (normalised text) and by MinHash
similarity (near copies: another headline, a dateline, a cut paragraph; see
`transforms/neardup.py`). In each group the earliest published copy is kept
(ties: first seen in the feed list) -- or the copy an earlier run stored; the
others become `duplicates` rows pointing at it. Earlier runs' fingerprints
come from the dataset memory (transforms/memory.py: URLs and ids for good,
text hashes and signatures for a look-back window), looked up only for
this run's keys, so no server keeps state and a run's cost does not grow
with the history.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import apache_beam as beam

from schemas.records import Article, Duplicate, FeedItem
from schemas.settings import CleanSettings, DedupSettings

from .metrics import counter
from .neardup import (
    Member,
    Signer,
    band_keys,
    candidate_pairs,
    edge,
    keepers,
    member_order,
    nearest_earlier,
    same_story,
    signed,
)
from .pooled import PooledFn
from .urls import canonicalize_url, has_tracking, url_id

_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


def survivor_order(article: Article) -> tuple:
    """Sort key: earliest published first (undated copies after dated ones: a
    fetch time says nothing about who published first); ties broken by first
    seen in the feed list, then URL."""
    first_seen = article.item.first_seen if article.item else (0, 0)
    return (dated(article.published_at, article.date_source) or _FAR_FUTURE, first_seen, article.url)


def item_order(item: FeedItem) -> tuple:
    """Which of several listings of one URL is kept: one without tracking
    parameters first (the URL users see), then the earliest, the first seen."""
    return (has_tracking(item.url), item.published_at or _FAR_FUTURE, item.first_seen, item.url)


def copy_rows(article: Article, method: str, similarity: float, now: datetime) -> list[Duplicate]:
    """Rows for `article` dropped as a copy: itself, the other feed entries
    that listed its URL, and the copies it had absorbed earlier. Their
    `duplicate_of` stays empty until the article that keeps the story is known."""
    own = Duplicate(article_id=article.article_id, url=article.url, source=article.source,
                    feed_url=article.feed_url, published_at=article.published_at,
                    duplicate_of="", method=method, similarity=similarity, detected_at=now)
    return [own, *listing_rows(article, now), *article.copies]


def listing_rows(article: Article, now: datetime) -> list[Duplicate]:
    """`url` duplicates for the other feed entries that linked to this article's URL."""
    listed = article.item.also_listed if article.item else ()
    return [Duplicate(article_id=url_id(entry.url), url=entry.url, source=article.source,
                      feed_url=entry.feed_url, published_at=listing_time(entry, article),
                      duplicate_of="", method="url", similarity=1.0, detected_at=now)
            for entry in listed]


# The clean stage's bounds on a trusted publication time.
_DATE_BOUNDS = CleanSettings()


def listing_time(entry: FeedItem, article: Article, settings: CleanSettings = _DATE_BOUNDS) -> datetime:
    """A listing's feed time, trusted as the clean stage trusts the article's
    (not before `earliest_year`, not after the fetch plus slack); else the article's."""
    earliest = datetime(settings.earliest_year, 1, 1, tzinfo=UTC)
    latest = article.fetched_at + timedelta(hours=settings.future_slack_hours)
    moment = entry.published_at
    return moment if moment is not None and earliest <= moment <= latest else article.published_at


def pointed_at(rows: list[Duplicate], article_id: str) -> list[Duplicate]:
    return [replace(row, duplicate_of=article_id) for row in rows]


def merge_listings(items: list[FeedItem]) -> FeedItem:
    """One FeedItem for entries sharing a URL: the first in order, carrying the rest."""
    ordered = sorted(items, key=item_order)
    first, rest = ordered[0], ordered[1:]
    also = tuple(entry for item in rest for entry in (item, *item.also_listed))
    return replace(first, also_listed=first.also_listed + also) if also else first


def resolve_group(articles: list[Article], prior_ids: list[str], method: str,
                  now: datetime) -> tuple[Article | None, list[Duplicate]]:
    """Keep one article of a group sharing a key.

    The earliest copy is kept and absorbs the others (as `copies`, settled
    once no later pass drops it too, so no row ever points at a dropped
    article). With a copy stored by an earlier run, that one stays: every new
    article is returned as a finished duplicate of it.
    """
    ordered = sorted(articles, key=survivor_order)
    if prior_ids:
        rows = [row for article in ordered for row in copy_rows(article, method, 1.0, now)]
        return None, pointed_at(rows, min(prior_ids))
    keeper, dropped = ordered[0], ordered[1:]
    absorbed = tuple(row for article in dropped for row in copy_rows(article, method, 1.0, now))
    return (replace(keeper, copies=keeper.copies + absorbed) if absorbed else keeper), []


def claims_other_url(article: Article) -> bool:
    """Whether the page named another URL than its own as its canonical one."""
    return article.canonical_url != canonicalize_url(article.url)


def own_identity(article: Article) -> Article:
    """The article identified by its own URL, not by the canonical one it claimed."""
    canonical = canonicalize_url(article.url)
    return replace(article, article_id=url_id(canonical), canonical_url=canonical)


def settle_claims(claims: list[tuple[Article, tuple[str, ...]]], prior_ids: list[str]) -> list[Article]:
    """Articles sharing an id, each with the ids stored with its very text:
    a canonical URL that different texts claim (a section page's, on every
    story of a misconfigured site) is no identity. An article that claimed
    another URL keeps its own when the stored article of that id has another
    text, or when, with none stored, the group's texts differ. The same text
    under one canonical URL stays one story."""
    texts = {article.content_hash for article, _ in claims}
    kept = []
    for article, stored_with_text in claims:
        disputed = (not set(prior_ids) & set(stored_with_text)) if prior_ids else len(texts) > 1
        kept.append(own_identity(article) if disputed and claims_other_url(article) else article)
    return kept


def settle(article: Article, now: datetime) -> tuple[Article, list[Duplicate]]:
    """A kept article, and the duplicates rows of every copy it stands for."""
    rows = pointed_at(listing_rows(article, now) + list(article.copies), article.article_id)
    return replace(article, copies=()), rows


class _Prior(beam.PTransform):
    """(key, element) -> (key, stored article id) for the keys of one kind
    that earlier runs left."""

    def __init__(self, stored, kind: str):
        super().__init__()
        self.stored, self.kind = stored, kind

    def expand(self, keyed):
        kind = self.kind
        return (keyed
                | "Keys" >> beam.Keys()
                | "Stored" >> self.stored.key_lookup()
                | "Only" >> beam.Filter(lambda fp: fp.kind == kind)
                | "Key" >> beam.Map(lambda fp: (fp.key, fp.article_id)))


class _DropSeenUrlsFn(beam.DoFn):
    def __init__(self):
        self.already = counter("items/already_ingested")
        self.merged = counter("dedup/url_in_feeds")

    def process(self, grouped):
        _, groups = grouped
        items, prior = list(groups["items"]), list(groups["prior"])
        if not items:
            return
        if prior:
            self.already.inc(sum(1 + len(item.also_listed) for item in items))
            return
        if len(items) > 1:
            self.merged.inc(len(items) - 1)
        yield merge_listings(items)


class DropSeenUrls(beam.PTransform):
    """Feed items whose URL is new: not stored by an earlier run, once per run.

    `stored` is the dataset memory (transforms/memory.py): only what it
    holds for these items' URLs is read. Entries of this run sharing a URL
    are merged into one item (fetched once); the others end as `url`
    duplicates when the article is written.
    """

    def __init__(self, stored):
        super().__init__()
        self.stored = stored

    def expand(self, items):
        keyed = items | "KeyByUrl" >> beam.Map(lambda item: (url_id(item.url), item))
        prior = keyed | "PriorUrls" >> _Prior(self.stored, "url")
        return (
            {"items": keyed, "prior": prior}
            | "Group" >> beam.CoGroupByKey()
            | "Drop" >> beam.ParDo(_DropSeenUrlsFn())
        )


class _ResolveGroupFn(beam.DoFn):
    def __init__(self, method: str):
        self.method = method
        self.dropped = counter(f"dedup/{method}")

    def process(self, grouped):
        _, groups = grouped
        articles, prior = list(groups["articles"]), list(groups["prior"])
        if not articles:
            return
        keeper, duplicates = resolve_group(articles, prior, self.method,
                                           datetime.now(UTC))
        self.dropped.inc(len(articles) - (keeper is not None))
        if keeper is not None:
            yield keeper
        for row in duplicates:
            yield beam.pvalue.TaggedOutput(DeduplicateArticles.DUPLICATES, row)


class _SettleClaimsFn(beam.DoFn):
    def __init__(self):
        self.disputed = counter("dedup/disputed_canonical")

    def process(self, grouped):
        _, groups = grouped
        claims, prior = list(groups["claims"]), list(groups["prior"])
        for (before, _), after in zip(claims, settle_claims(claims, prior), strict=True):
            self.disputed.inc(int(after.article_id != before.article_id))
            yield after


class _SettleClaims(beam.PTransform):
    """Articles whose canonical URL different texts claim get their own URL
    as identity (`settle_claims`). Only articles that claimed another URL
    look up the stored ids of their text."""

    def __init__(self, stored):
        super().__init__()
        self.stored = stored

    def expand(self, articles):
        claimed, own = articles | "Claimed" >> beam.Partition(
            lambda article, _: int(not claims_other_url(article)), 2)
        by_text = claimed | "KeyByText" >> beam.Map(lambda article: (article.content_hash, article))
        with_text = (
            {"articles": by_text, "prior": by_text | "PriorTexts" >> _Prior(self.stored, "hash")}
            | "GroupByText" >> beam.CoGroupByKey()
            | "StoredWithText" >> beam.FlatMap(lambda grouped: [
                (article, tuple(grouped[1]["prior"])) for article in grouped[1]["articles"]]))
        claims = ((with_text, own | "NoClaim" >> beam.Map(lambda article: (article, ())))
                  | "AllClaims" >> beam.Flatten()
                  | "KeyById" >> beam.Map(lambda claim: (claim[0].article_id, claim)))
        return (
            {"claims": claims, "prior": claims | "PriorIds" >> _Prior(self.stored, "id")}
            | "GroupById" >> beam.CoGroupByKey()
            | "Settle" >> beam.ParDo(_SettleClaimsFn())
        )


class _KeepOnePerKey(beam.PTransform):
    """Articles grouped by one key (with earlier runs' keys); one survives per key."""

    def __init__(self, key_fn, kind: str, method: str, stored):
        super().__init__()
        self.key_fn, self.kind, self.method = key_fn, kind, method
        self.stored = stored

    def expand(self, articles):
        keyed = articles | "Key" >> beam.Map(lambda article: (self.key_fn(article), article))
        return (
            {"articles": keyed, "prior": keyed | "Prior" >> _Prior(self.stored, self.kind)}
            | "Group" >> beam.CoGroupByKey()
            | "Resolve" >> beam.ParDo(_ResolveGroupFn(self.method)).with_outputs(
                DeduplicateArticles.DUPLICATES, main="articles")
        )


class _SignFn(PooledFn):
    """Each article signed (`signed`), on the worker processes when they are
    open: shingling and hashing are most of dedup's work on an article."""

    job = "sign"

    def __init__(self, settings: DedupSettings):
        self.settings = settings
        self._signer = None

    def pool_does_mine(self, pool) -> bool:
        return hasattr(pool.jobs, self.job) and pool.settings.dedup == self.settings

    def inline(self, article: Article) -> Article:
        if self._signer is None:
            self._signer = Signer(self.settings)
        return signed(article, self._signer)

    def emit(self, article: Article, result: Article):
        yield result


def dated(published_at: datetime, date_source: str) -> datetime | None:
    """The publication time when a feed or the page gave it (not a fetch time)."""
    return published_at if date_source in ("feed", "page") else None


def as_member(article: Article) -> Member:
    first_seen = article.item.first_seen if article.item else (0, 0)
    return Member(article.article_id, article.signature, article.numbers, article.word_count,
                  member_order(False, dated(article.published_at, article.date_source),
                               first_seen, article.article_id))


def near_edges(bucket: list[Member], settings: DedupSettings):
    """(later id, edge to an earlier near copy) for one band bucket."""
    for earlier, later in candidate_pairs(bucket, settings.max_bucket):
        score = same_story(earlier, later, settings)
        if score is not None:
            yield later.article_id, edge(earlier, later, score)


class _DropNearCopiesFn(beam.DoFn):
    def __init__(self):
        self.dropped = counter("dedup/near")

    def process(self, grouped):
        _, groups = grouped
        kept_by = list(groups["kept_by"])
        for article in groups["articles"]:
            if not kept_by:
                yield article
                continue
            keeper, score = kept_by[0]
            self.dropped.inc()
            rows = copy_rows(article, "near", round(score, 3), datetime.now(UTC))
            for row in pointed_at(rows, keeper):
                yield beam.pvalue.TaggedOutput(DeduplicateArticles.DUPLICATES, row)


class _DropNearCopies(beam.PTransform):
    """Article -> articles that are not a near copy of an earlier one (this
    run's or stored within the look-back window); copies on `duplicates`."""

    def __init__(self, stored, settings: DedupSettings):
        super().__init__()
        self.stored, self.settings = stored, settings

    def expand(self, articles):
        settings = self.settings
        signed = articles | "Sign" >> beam.ParDo(_SignFn(settings))
        new = signed | "Members" >> beam.Map(as_member)
        lookalikes = new | "StoredLookalikes" >> self.stored.lookalike_lookup()
        members = (new, lookalikes) | "AllMembers" >> beam.Flatten()
        kept_by = (
            members
            | "BandKeys" >> beam.FlatMap(lambda member: [(key, member) for key in
                                                         band_keys(member.signature, settings.minhash_bands)])
            | "Buckets" >> beam.GroupByKey()
            | "Compare" >> beam.FlatMap(lambda bucket: near_edges(list(bucket[1]), settings))
            | "PerArticle" >> beam.GroupByKey()
            | "Nearest" >> beam.FlatMap(lambda found: nearest_earlier(
                list({edge.earlier: edge for edge in found[1]}.values()), settings.max_neighbours))
            # The duplicate graph only (a few light edges per near copy) meets on one worker.
            | "Graph" >> beam.combiners.ToList().without_defaults()
            | "Keepers" >> beam.FlatMap(lambda edges: keepers(edges).items()))
        return (
            {"articles": signed | "ById" >> beam.Map(lambda article: (article.article_id, article)),
             "kept_by": kept_by}
            | "Join" >> beam.CoGroupByKey()
            | "Drop" >> beam.ParDo(_DropNearCopiesFn()).with_outputs(
                DeduplicateArticles.DUPLICATES, main="articles"))


class _SettleFn(beam.DoFn):
    def process(self, article: Article):
        kept, rows = settle(article, datetime.now(UTC))
        yield kept
        for row in rows:
            yield beam.pvalue.TaggedOutput(DeduplicateArticles.DUPLICATES, row)


class DeduplicateArticles(beam.PTransform):
    """Article -> the articles to write, plus `duplicates` rows for every copy dropped.

    `stored` is what earlier runs left (transforms/memory.py's
    DatasetMemory): each step looks up only its own articles' ids, text
    hashes and LSH bands there.
    """

    DUPLICATES = "duplicates"

    def __init__(self, stored, settings: DedupSettings):
        super().__init__()
        self.stored, self.settings = stored, settings

    def expand(self, articles):
        articles = articles | "Claims" >> _SettleClaims(self.stored)
        by_id = articles | "ById" >> _KeepOnePerKey(
            lambda article: article.article_id, "id", "url", self.stored)
        by_text = by_id.articles | "ByText" >> _KeepOnePerKey(
            lambda article: article.content_hash, "hash", "exact", self.stored)
        by_words = by_text.articles | "ByWords" >> _DropNearCopies(self.stored, self.settings)
        settled = by_words.articles | "Settle" >> beam.ParDo(_SettleFn()).with_outputs(
            self.DUPLICATES, main="articles")
        duplicates = ((by_id.duplicates, by_text.duplicates, by_words.duplicates, settled.duplicates)
                      | "AllDuplicates" >> beam.Flatten())
        return {"articles": settled.articles, self.DUPLICATES: duplicates}

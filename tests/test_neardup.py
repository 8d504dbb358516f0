"""Near duplicates: MinHash signatures, band keys, clusters, and the pass in Beam."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import Article, FeedItem
from schemas.settings import DedupSettings
from transforms.dedup import DeduplicateArticles, content_hash
from transforms.neardup import Member, Signer, band_keys, clusters, member_order, shingles, similarity

from .conftest import SEED_TEXTS, seed_truth

SETTINGS = DedupSettings()
START = datetime(2015, 9, 23, 8, tzinfo=UTC)
# The agency story of seed 004: its body lines, as the clean stage leaves them.
WIRE = "\n\n".join(seed_truth("004_101b7afe40c93a6a.txt")[1])


@pytest.fixture(scope="module")
def signer():
    return Signer(SETTINGS)


def edited_copies(text: str) -> dict[str, str]:
    paragraphs = text.split("\n\n")
    return {
        "dateline": "DAMASCUS (Reuters) – " + text,
        "cut last paragraph": "\n\n".join(paragraphs[:-1]),
        "numbers restyled": text.replace("70", "seventy").replace("100", "a hundred"),
        "other site's clutter": text + "\n\nShare this:\n\nSubscribe to our newsletter",
    }


def test_shingles_are_folded_word_runs():
    assert shingles("The Coalition said, today.", 3) == {b"the coalition said", b"coalition said today"}
    assert shingles("Too short", 3) == {b"too short"}


def test_signatures_agree_across_signers(signer):
    assert Signer(SETTINGS).sign(WIRE) == signer.sign(WIRE)
    assert len(signer.sign(WIRE)) == 4 * SETTINGS.minhash_permutations


@pytest.mark.parametrize("edit", list(edited_copies(WIRE)))
def test_edited_copies_are_near_duplicates_that_meet_in_a_band(signer, edit):
    copy = edited_copies(WIRE)[edit]
    original, copied = signer.sign(WIRE), signer.sign(copy)
    assert similarity(original, copied) >= SETTINGS.near_threshold
    assert set(band_keys(original, SETTINGS.minhash_bands)) & set(band_keys(copied, SETTINGS.minhash_bands))


def test_seed_articles_on_the_same_events_are_not_duplicates(signer):
    seeds = [path.read_text() for path in sorted(SEED_TEXTS.glob("*.txt"))]
    scores = [similarity(signer.sign(a), signer.sign(b))
              for index, a in enumerate(seeds) for b in seeds[index + 1:]]
    assert max(scores) < SETTINGS.near_threshold / 2


def member(article_id: str, day: int, prior: bool = False) -> Member:
    order = member_order(prior, START + timedelta(days=day), (0, 0), article_id)
    return Member(article_id, b"", order, prior)


def test_clusters_keep_the_earliest_and_follow_chains():
    a, b, c = member("a", 3), member("b", 1), member("c", 2)
    kept = clusters([(a, b, 0.9), (b, c, 0.6)])
    assert kept == {"a": ("b", 0.9), "c": ("b", 0.6)}


def test_a_stored_article_is_kept_over_an_earlier_published_new_one():
    stored, new = member("stored", 5, prior=True), member("new", 1)
    assert clusters([(new, stored, 0.8)]) == {"new": ("stored", 0.8)}


def article(article_id: str, text: str, minutes: int, site: int = 0) -> Article:
    url = f"https://site{site}.example/{article_id}"
    item = FeedItem(url=url, feed_url=f"https://site{site}.example/rss", first_seen=(site, 0))
    return Article(article_id=article_id, url=url, canonical_url=url, source=f"site{site}.example",
                   feed_url=item.feed_url, title="t", text=text,
                   published_at=START + timedelta(minutes=minutes), date_source="feed",
                   fetched_at=START, content_hash=content_hash(text), word_count=len(text.split()),
                   item=item)


def pipeline():
    return TestPipeline(runner="FnApiRunner")


def test_near_copies_across_bundles_point_at_the_earliest(signer):
    copies = edited_copies(WIRE)
    original = article("wire", WIRE, 0)
    first_bundle = [original, article("dateline", copies["dateline"], 30, site=1)]
    second_bundle = [article("cut", copies["cut last paragraph"], 60, site=2)]
    seeds = [article(path.stem, path.read_text(), 90 + n, site=3)
             for n, path in enumerate(sorted(SEED_TEXTS.glob("00[0-2]*.txt")))]
    with pipeline() as p:
        articles = ((p | "One" >> beam.Create(first_bundle + seeds), p | "Two" >> beam.Create(second_bundle))
                    | beam.Flatten())
        out = articles | DeduplicateArticles(p | "NoPrior" >> beam.Create([]),
                                             p | "NoSignatures" >> beam.Create([]), SETTINGS)
        assert_that(out["articles"] | "Kept" >> beam.Map(lambda a: a.article_id),
                    equal_to(["wire"] + [a.article_id for a in seeds]), label="Kept")
        assert_that(out["duplicates"] | "Rows" >> beam.Map(
                        lambda d: (d.article_id, d.duplicate_of, d.method, d.similarity >= 0.5)),
                    equal_to([("dateline", "wire", "near", True), ("cut", "wire", "near", True)]),
                    label="Copies")
        assert_that(out["articles"] | "Signed" >> beam.Map(lambda a: len(a.signature)),
                    equal_to([4 * SETTINGS.minhash_permutations] * 4), label="Signed")


def test_a_copy_of_a_stored_article_points_at_it(signer):
    stored = Member("stored-id", signer.sign(WIRE), member_order(True, START, (0, 0), "stored-id"), True)
    copy = article("late-copy", edited_copies(WIRE)["dateline"], 600, site=4)
    with pipeline() as p:
        out = (p | beam.Create([copy])
               | DeduplicateArticles(p | "NoPrior" >> beam.Create([]), p | "Stored" >> beam.Create([stored]),
                                     SETTINGS))
        assert_that(out["articles"], equal_to([]), label="NothingNew")
        assert_that(out["duplicates"] | beam.Map(lambda d: (d.article_id, d.duplicate_of, d.method)),
                    equal_to([("late-copy", "stored-id", "near")]), label="PointsAtStored")

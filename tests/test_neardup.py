"""Near duplicates: MinHash signatures, band keys, clusters, and the pass in Beam."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import Article, FeedItem
from schemas.settings import DedupSettings, MemorySettings
from transforms.dedup import DeduplicateArticles, signed
from transforms.memory import DatasetMemory
from transforms.neardup import (
    Member,
    Signer,
    band_keys,
    candidate_pairs,
    edge,
    figures,
    keepers,
    member_order,
    same_story,
    shingles,
    similarity,
)
from transforms.textnorm import content_hash

from .conftest import DEMO_FEEDS, SEED_TEXTS, seed_truth, stored_dataset

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


STRIKE_RELEASE = (
    "SOUTHWEST ASIA – On {day} September, Coalition military forces conducted {strikes} strikes "
    "consisting of {engagements} engagements against ISIS targets in Syria and Iraq. In Syria, Coalition "
    "military forces conducted {syria} strikes consisting of {syria_eng} engagements against ISIS targets "
    "near Abu Kamal, destroying {positions} fighting positions and {vehicles} vehicles. In Iraq, Coalition "
    "military forces conducted {iraq} strikes consisting of {iraq_eng} engagements against ISIS targets near "
    "Qaim. These strikes were conducted as part of Operation Inherent Resolve, the operation to defeat ISIS "
    "in Iraq and Syria. The destruction of ISIS targets in Iraq and Syria also further limits the group's "
    "ability to project terror and conduct external operations throughout the region and the rest of the "
    "world. The list above contains all strikes conducted by fighter, attack, bomber, rotary-wing, or "
    "remotely piloted aircraft, rocket-propelled artillery and some ground-based tactical artillery.")


def release(day: int) -> str:
    return STRIKE_RELEASE.format(day=day, strikes=10 + day, engagements=20 + 2 * day, syria=4 + day,
                                 syria_eng=9 + day, positions=3 + day, vehicles=day % 5 + 1,
                                 iraq=6, iraq_eng=11 + day % 3)


BACKGROUND = ("Syria's war has killed more than 360,000 people and displaced millions since it erupted "
              "in 2011 with the brutal repression of anti-government protests.")


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


def text_member(name: str, text: str, signer: Signer) -> Member:
    return Member(name, signer.sign(text), figures(text), len(text.split()),
                  member_order(False, START, (0, 0), name))


def test_daily_reports_with_new_figures_are_different_stories(signer):
    first, second = (text_member(f"day{day}", release(day), signer) for day in (17, 18))
    assert same_story(first, second, SETTINGS) is None
    lenient = replace(SETTINGS, near_threshold=0.5)
    assert similarity(first.signature, second.signature) >= lenient.near_threshold
    assert same_story(first, second, lenient) is None, "the figures alone tell them apart"


def test_a_copy_with_restyled_figures_is_the_same_story(signer):
    text = release(17)
    copy = "BAGHDAD (Agencies) – " + text.replace("27 strikes", "twenty-seven strikes")
    original, copied = text_member("a", text, signer), text_member("b", copy, signer)
    assert figures("3,000 people") == figures("3000 people") == {"3000"}
    assert same_story(original, copied, SETTINGS) is not None


def test_short_briefs_sharing_a_background_sentence_are_different_stories(signer):
    briefs = ["A car bomb exploded in the northern town of Azaz on Sunday, killing at least eight people "
              "near a busy market, a monitor said. " + BACKGROUND,
              "Government shelling hit a village in Idlib province overnight, wounding several civilians "
              "including children, rescuers said on Monday. " + BACKGROUND]
    first, second = (text_member(str(n), text, signer) for n, text in enumerate(briefs))
    assert same_story(first, second, SETTINGS) is None


def member(article_id: str, day: int, prior: bool = False) -> Member:
    order = member_order(prior, START + timedelta(days=day), (0, 0), article_id)
    return Member(article_id, b"", frozenset(), 100, order, prior)


def test_a_copy_points_at_a_kept_article_it_resembles_chains_do_not_fold():
    a, b, c = member("a", 1), member("b", 2), member("c", 3)  # a~b, b~c, but a and c share nothing
    assert keepers([edge(a, b, 0.9), edge(b, c, 0.8)]) == {"b": ("a", 0.9)}, "c resembles only a copy: kept"
    d = member("d", 4)
    assert keepers([edge(a, b, 0.9), edge(a, d, 0.75), edge(b, d, 0.95)]) == \
        {"b": ("a", 0.9), "d": ("a", 0.75)}, "d points at the kept article, with that pair's similarity"


def test_a_stored_article_is_kept_over_an_earlier_published_new_one():
    stored, new = member("stored", 5, prior=True), member("new", 1)
    assert keepers([edge(stored, new, 0.8)]) == {"new": ("stored", 0.8)}


def test_of_two_stored_articles_a_copy_points_at_the_one_it_resembles():
    first, second, new = member("p1", 0, prior=True), member("p2", 0, prior=True), member("c", 3)
    other = member("b", 2)  # bridges the two stored ones
    assert keepers([edge(first, other, 0.8), edge(second, other, 0.7), edge(second, new, 0.66)]) == \
        {"b": ("p1", 0.8), "c": ("p2", 0.66)}
    assert member("p", 9, prior=True).order < member("n", 1).order


def test_undated_articles_sort_after_dated_ones_then_by_first_seen():
    undated_first = member_order(False, None, (0, 0), "z")
    undated_second = member_order(False, None, (1, 0), "a")
    dated_late = member_order(False, START + timedelta(days=30), (5, 0), "m")
    assert dated_late < undated_first < undated_second


def test_oversized_buckets_compare_against_their_first_members_only():
    bucket = [member(f"m{n:03d}", n) for n in range(60)]
    pairs = candidate_pairs(bucket, max_bucket=50)
    assert len(pairs) == 50 * 49 // 2 + 10 * 50
    assert all(earlier.order < later.order for earlier, later in pairs)


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


def test_near_copies_across_bundles_point_at_the_earliest(signer, tmp_path):
    copies = edited_copies(WIRE)
    original = article("wire", WIRE, 0)
    first_bundle = [original, article("dateline", copies["dateline"], 30, site=1)]
    second_bundle = [article("cut", copies["cut last paragraph"], 60, site=2)]
    seeds = [article(path.stem, path.read_text(), 90 + n, site=3)
             for n, path in enumerate(sorted(SEED_TEXTS.glob("00[0-2]*.txt")))]
    with pipeline() as p:
        articles = ((p | "One" >> beam.Create(first_bundle + seeds), p | "Two" >> beam.Create(second_bundle))
                    | beam.Flatten())
        out = articles | DeduplicateArticles(
            DatasetMemory(str(tmp_path), MemorySettings(), SETTINGS), SETTINGS)
        assert_that(out["articles"] | "Kept" >> beam.Map(lambda a: a.article_id),
                    equal_to(["wire"] + [a.article_id for a in seeds]), label="Kept")
        assert_that(out["duplicates"] | "Rows" >> beam.Map(
                        lambda d: (d.article_id, d.duplicate_of, d.method, d.similarity >= 0.5)),
                    equal_to([("dateline", "wire", "near", True), ("cut", "wire", "near", True)]),
                    label="Copies")
        assert_that(out["articles"] | "Signed" >> beam.Map(lambda a: len(a.signature)),
                    equal_to([4 * SETTINGS.minhash_permutations] * 4), label="Signed")


def test_a_copy_of_a_stored_article_points_at_it(signer, tmp_path):
    stored = signed(article("stored-id", WIRE, 0), signer)
    memory = stored_dataset(tmp_path, [stored], days_ago=3)
    copy = article("late-copy", edited_copies(WIRE)["dateline"], 600, site=4)
    with pipeline() as p:
        out = p | beam.Create([copy]) | DeduplicateArticles(memory, SETTINGS)
        assert_that(out["articles"], equal_to([]), label="NothingNew")
        assert_that(out["duplicates"] | beam.Map(lambda d: (d.article_id, d.duplicate_of, d.method)),
                    equal_to([("late-copy", "stored-id", "near")]), label="PointsAtStored")


def test_stored_signatures_are_looked_up_within_the_look_back_only(tmp_path, signer):
    """Only stored articles ingested inside the window and sharing a band
    with a new one come back, with their signature and figures."""
    from transforms.memory import stored_lookalikes

    def store(article_id: str, text: str, days_ago: int) -> None:
        stored_dataset(tmp_path, [signed(article(article_id, text, 0), signer)],
                       days_ago=days_ago, lookback_days=0)

    other = (SEED_TEXTS / "001_967cd6e8aa18a310.txt").read_text()
    store("recent", WIRE, days_ago=3)
    store("old", WIRE, days_ago=45)
    store("unrelated", other, days_ago=2)
    since = datetime.now(UTC) - timedelta(days=SETTINGS.lookback_days)
    found = stored_lookalikes(str(tmp_path), [signer.sign(edited_copies(WIRE)["dateline"])], since, SETTINGS)
    assert [(m.article_id, m.prior, m.signature == signer.sign(WIRE), m.numbers == figures(WIRE))
            for m in found] == [("recent", True, True, True)]
    everything = stored_lookalikes(str(tmp_path), [signer.sign(WIRE)], None, SETTINGS)
    assert sorted(m.article_id for m in everything) == ["old", "recent"]


@pytest.mark.e2e
def test_a_run_stores_the_figures_each_text_states(tmp_path, capsys):
    """Figures are taken once, with the signature, and what dedup compared is
    what the articles table and the memory keep for later runs."""
    import duckdb

    from pipelines.cli import main

    out = tmp_path / "out"
    assert main(["run", "--feeds", str(DEMO_FEEDS), "--out", str(out), "-q"]) == 0
    stored = duckdb.sql(f"select text, numbers from read_parquet('{out}/articles/**/*.parquet')").fetchall()
    assert stored and any(numbers for _, numbers in stored)
    assert all(numbers == sorted(figures(text)) for text, numbers in stored)
    kept = duckdb.sql(f"select count(*) from read_parquet('{out}/_state/memory/texts/**/*.parquet') "
                      "where len(numbers) > 0").fetchall()[0][0]
    assert kept == sum(1 for _, numbers in stored if numbers)

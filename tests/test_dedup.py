"""Dedup stage: URL identity, content hashes, which copy survives, earlier runs."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import Article, FeedItem
from schemas.settings import DedupSettings, MemorySettings
from transforms.dedup import (
    DeduplicateArticles,
    DropSeenUrls,
    merge_listings,
    resolve_group,
    settle,
)
from transforms.memory import DatasetMemory
from transforms.textnorm import content_hash
from transforms.urls import canonicalize_url, url_id

from .conftest import stored_dataset

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DEDUP = DedupSettings()


def at(day: int) -> datetime:
    return datetime(2017, 8, day, tzinfo=UTC)


def article(url: str, text: str = "same text", day: int = 2, feed: int = 0,
            position: int = 0, listed: tuple = ()) -> Article:
    item = FeedItem(url=url, feed_url=f"http://feeds.example/{feed}", published_at=at(day),
                    first_seen=(feed, position), also_listed=listed)
    canonical = canonicalize_url(url)
    return Article(article_id=url_id(url), url=url, canonical_url=canonical, source="example",
                   feed_url=item.feed_url, title="t", text=text, published_at=at(day),
                   date_source="feed", fetched_at=NOW, content_hash=content_hash(text),
                   word_count=2, item=item)


@pytest.mark.parametrize("rule, variant", [
    ("scheme and host case", "HTTPS://News.Example.COM/a/b?id=7"),
    ("default port", "https://news.example.com:443/a/b?id=7"),
    ("fragment", "https://news.example.com/a/b?id=7#comments"),
    ("tracking parameters", "https://news.example.com/a/b?utm_source=tw&id=7&fbclid=xyz"),
    ("more tracking", "https://news.example.com/a/b?id=7&utm_campaign=x&gclid=1"),
    ("trailing slash", "https://news.example.com/a/b/?id=7"),
    ("www host", "https://www.news.example.com/a/b?id=7"),
    ("mobile host", "https://m.news.example.com/a/b?id=7"),
    ("amp host", "https://amp.news.example.com/a/b?id=7"),
    ("amp path suffix", "https://news.example.com/a/b/amp/?id=7"),
    ("amp path prefix", "https://news.example.com/amp/a/b?id=7"),
    ("amp parameter", "https://news.example.com/a/b?id=7&amp=1"),
    ("output type", "https://news.example.com/a/b?outputType=amp&id=7"),
    ("http and https", "http://news.example.com/a/b?id=7"),
    ("stacked prefixes", "https://www.m.news.example.com/a/b?id=7"),
    ("dot segments and doubled slashes", "https://news.example.com/a//c/../b/./?id=7"),
    ("campaign parameters", "https://news.example.com/a/b?id=7&CMP=rss&xtor=RSS-1&ref=rss"),
])
def test_canonical_url_drops_what_does_not_identify(rule, variant):
    assert canonicalize_url(variant) == "https://news.example.com/a/b?id=7", rule
    assert url_id(variant) == url_id("https://news.example.com/a/b?id=7")


def test_amp_file_names_and_index_pages():
    assert canonicalize_url("https://x.example/story.amp.html") == "https://x.example/story.html"
    assert canonicalize_url("https://x.example/news/index.html") == "https://x.example/news"
    assert canonicalize_url("https://x.example/") == "https://x.example/"


def test_percent_escapes_meet_in_one_form():
    arabic = "https://x.example/أخبار/سوريا"
    assert canonicalize_url(arabic) == canonicalize_url("https://x.example/%D8%A3%D8%AE%D8%A8%D8%A7%D8%B1/"
                                                        "%d8%b3%d9%88%d8%b1%d9%8a%d8%a7")


@pytest.mark.parametrize("first, second", [
    ("https://x.example/#!/article/123", "https://x.example/#!/article/124"),   # hashbang routes
    ("https://x.example/reviews/amp/guide", "https://x.example/reviews/guide"),  # a real section
    ("https://m.blogspot.com/post", "https://blogspot.com/post"),              # m is the blog's name
    ("https://x.example/story?p=123", "https://x.example/story?p=124"),        # ids in the query
    ("https://m.me/page", "https://me/page"),
])
def test_what_identifies_an_article_is_kept(first, second):
    assert url_id(first) != url_id(second)


def test_canonical_url_keeps_what_identifies():
    assert url_id("https://news.example.com/a?id=7") != url_id("https://news.example.com/a?id=8")
    assert url_id("http://news.example.com:8080/a") != url_id("http://news.example.com/a")
    assert canonicalize_url("https://x.example/p?b=2&a=1") == "https://x.example/p?a=1&b=2"


def test_url_id_is_stable_across_runs_and_versions():
    # Pinned: changing the id scheme would re-ingest every stored article.
    assert url_id("https://thedefensepost.com/2018/09/18/x/") == "b345ae3093554056"


def test_content_hash_ignores_typography_not_words():
    base = content_hash("The Coalition said: “no.”\n\nShQ agreed.")
    assert content_hash("the coalition said -- \"no\"   ShQ agreed") == base
    assert content_hash("The Coalition said: “yes.” ShQ agreed.") != base


def test_earliest_published_copy_survives():
    late, early = article("https://a.example/1", day=5), article("https://b.example/1", day=3)
    keeper, finished = resolve_group([late, early], [], "exact", NOW)
    assert keeper == early and finished == []
    kept, duplicates = settle(keeper, NOW)
    assert kept.copies == ()
    assert [(d.url, d.duplicate_of, d.method) for d in duplicates] == \
        [("https://a.example/1", early.article_id, "exact")]


def test_undated_copies_yield_to_dated_ones_then_go_by_feed_order():
    undated_late_fetch = replace(article("https://a.example/1", day=1, feed=0), date_source="fetched")
    undated_early_fetch = replace(article("https://b.example/1", day=1, feed=1), date_source="fetched",
                                  published_at=at(1) - timedelta(hours=1))
    dated = article("https://c.example/1", day=5, feed=2)
    keeper, _ = resolve_group([undated_early_fetch, undated_late_fetch, dated], [], "exact", NOW)
    assert keeper == dated
    keeper, _ = resolve_group([undated_early_fetch, undated_late_fetch], [], "exact", NOW)
    assert keeper == undated_late_fetch, "fetch times race; the feed list's order does not"


def test_a_listing_without_tracking_parameters_is_the_one_kept():
    tracked = FeedItem(url="https://a.example/w?utm_source=x&fbclid=1", feed_url="aggregator",
                       published_at=at(1), first_seen=(0, 0))
    own = FeedItem(url="https://a.example/w", feed_url="own-feed", published_at=at(2), first_seen=(1, 0))
    merged = merge_listings([tracked, own])
    assert merged.url == own.url and [item.url for item in merged.also_listed] == [tracked.url]


def test_ties_go_to_the_first_seen():
    second = article("https://a.example/1", feed=1)
    first = article("https://b.example/1", feed=0, position=4)
    keeper, _ = resolve_group([second, first], [], "exact", NOW)
    assert keeper == first


def test_a_copy_stored_earlier_wins_over_new_ones():
    new = article("https://a.example/1")
    keeper, duplicates = resolve_group([new], ["0123456789abcdef"], "exact", NOW)
    assert keeper is None
    assert [(d.url, d.duplicate_of) for d in duplicates] == [(new.url, "0123456789abcdef")]


def test_merged_listings_become_url_duplicates_of_the_survivor():
    item_a = FeedItem(url="https://a.example/1", feed_url="f1", first_seen=(0, 0))
    item_b = FeedItem(url="https://a.example/1?utm_source=x", feed_url="f2", first_seen=(1, 0))
    merged = merge_listings([item_b, item_a])
    assert merged.feed_url == "f1" and [i.feed_url for i in merged.also_listed] == ["f2"]
    dropped = article("https://c.example/9", day=9)
    dropped = replace(dropped, item=replace(dropped.item, also_listed=(item_b,)))
    keeper = article("https://d.example/1", day=1)
    survivor, _ = resolve_group([dropped, keeper], [], "exact", NOW)
    _, duplicates = settle(survivor, NOW)
    assert {(d.url, d.duplicate_of, d.method) for d in duplicates} == {
        ("https://c.example/9", keeper.article_id, "exact"),
        (item_b.url, keeper.article_id, "url")}


def pipeline():
    return TestPipeline(runner="FnApiRunner")


def empty_memory(tmp_path) -> DatasetMemory:
    return DatasetMemory(str(tmp_path), MemorySettings(), DEDUP)


def test_deduplicate_in_a_pipeline_within_and_across_runs(tmp_path):
    stored = replace(article("https://s.example/stored", text="stored story", day=1),
                     article_id="feedfacefeedface")
    memory = stored_dataset(tmp_path, [stored])
    fresh = article("https://a.example/new", text="a new story", day=4)
    copy_of_fresh = article("https://b.example/copy", text="A new story!", day=5)
    same_url = article("https://a.example/new?utm_medium=rss", text="a new story", day=6)
    copy_of_stored = article("https://c.example/old", text="Stored story.", day=1)
    with pipeline() as p:
        out = (p | beam.Create([fresh, copy_of_fresh, same_url, copy_of_stored])
               | DeduplicateArticles(memory, DEDUP))
        assert_that(out["articles"] | "Urls" >> beam.Map(lambda a: a.url),
                    equal_to([fresh.url]), label="OneSurvivor")
        assert_that(out["duplicates"]
                    | "Rows" >> beam.Map(lambda d: (d.url, d.duplicate_of, d.method)),
                    equal_to([(copy_of_fresh.url, fresh.article_id, "exact"),
                              (same_url.url, fresh.article_id, "url"),
                              (copy_of_stored.url, "feedfacefeedface", "exact")]),
                    label="Copies")


def test_a_copy_of_a_dropped_copy_points_at_the_article_kept(tmp_path):
    """A and B share text, B and C share a canonical URL: both copies point at A."""
    first = article("https://a.example/1", text="shared story", day=1)
    second = article("https://b.example/1", text="shared story", day=2)
    third = replace(article("https://b.example/1/amp", text="different wording", day=3),
                    article_id=second.article_id)
    with pipeline() as p:
        out = (p | beam.Create([first, second, third])
               | DeduplicateArticles(empty_memory(tmp_path), DEDUP))
        assert_that(out["articles"] | "Ids" >> beam.Map(lambda a: a.article_id),
                    equal_to([first.article_id]), label="Kept")
        assert_that(out["duplicates"] | "Rows" >> beam.Map(lambda d: (d.url, d.duplicate_of)),
                    equal_to([(second.url, first.article_id), (third.url, first.article_id)]),
                    label="PointAtKept")


def test_drop_seen_urls_merges_listings_and_skips_stored(tmp_path):
    seen = FeedItem(url="https://a.example/old", feed_url="f1")
    memory = stored_dataset(tmp_path, [article(seen.url, text="an old story", day=1)], days_ago=400)
    twice_a = FeedItem(url="https://a.example/new", feed_url="f1", first_seen=(0, 1))
    twice_b = FeedItem(url="https://a.example/new#top", feed_url="f2", first_seen=(1, 0))
    with pipeline() as p:
        items = p | beam.Create([seen, twice_a, twice_b]) | DropSeenUrls(memory)
        assert_that(items | beam.Map(lambda i: (i.url, len(i.also_listed))),
                    equal_to([(twice_a.url, 1)]))


def test_text_hashes_count_within_the_look_back_window_urls_for_good(tmp_path):
    """Ingestion time, not publication date, decides: a copy of a story
    ingested 10 days ago is caught, of one ingested 40 days ago is not; its
    URL is still known a year on."""
    recent = article("https://s.example/recent", text="recent story", day=1)
    old = article("https://s.example/old", text="old story", day=1)
    stored_dataset(tmp_path, [recent], days_ago=10)
    memory = stored_dataset(tmp_path, [old], days_ago=40)
    copies = [article("https://c.example/1", text="Recent story!", day=2),
              article("https://c.example/2", text="Old story!", day=2),
              replace(article("https://s.example/old?utm_source=x", text="reworded", day=2),
                      article_id=old.article_id)]
    with pipeline() as p:
        out = p | beam.Create(copies) | DeduplicateArticles(memory, DEDUP)
        assert_that(out["articles"] | "Kept" >> beam.Map(lambda a: a.url),
                    equal_to(["https://c.example/2"]), label="Kept")
        assert_that(out["duplicates"] | "Rows" >> beam.Map(lambda d: (d.url, d.duplicate_of, d.method)),
                    equal_to([("https://c.example/1", recent.article_id, "exact"),
                              (copies[2].url, old.article_id, "url")]), label="Copies")


SECTION = "https://news.example/world/"


def claiming(url: str, text: str, day: int = 2) -> Article:
    """An article whose page names a section page as its canonical URL (a misconfigured template)."""
    return replace(article(url, text=text, day=day), article_id=url_id(SECTION),
                   canonical_url=canonicalize_url(SECTION))


def test_different_stories_claiming_one_section_page_stay_apart(tmp_path):
    stories = [claiming(f"https://news.example/world/story-{n}", f"story number {n} of the day")
               for n in range(3)]
    with pipeline() as p:
        out = p | beam.Create(stories) | DeduplicateArticles(empty_memory(tmp_path), DEDUP)
        assert_that(out["articles"] | "Ids" >> beam.Map(lambda a: (a.url, a.article_id, a.canonical_url)),
                    equal_to([(story.url, url_id(story.url), canonicalize_url(story.url))
                              for story in stories]), label="AllKept")
        assert_that(out["duplicates"], equal_to([]), label="NoCopies")


def test_one_text_under_a_claimed_canonical_is_still_one_story(tmp_path):
    first = claiming("https://news.example/world/a", "the same story", day=1)
    second = claiming("https://news.example/world/b", "the same story", day=2)
    with pipeline() as p:
        out = p | beam.Create([first, second]) | DeduplicateArticles(empty_memory(tmp_path), DEDUP)
        assert_that(out["articles"] | "Urls" >> beam.Map(lambda a: a.url), equal_to([first.url]), label="One")
        assert_that(out["duplicates"] | "Rows" >> beam.Map(lambda d: (d.url, d.duplicate_of, d.method)),
                    equal_to([(second.url, url_id(SECTION), "url")]), label="Copy")


def test_a_new_story_claiming_a_stored_canonical_is_not_its_copy(tmp_path):
    # Later runs met every new story of such a site as a copy of the first one stored.
    stored = claiming("https://news.example/world/old", "the story of last week")
    memory = stored_dataset(tmp_path, [stored])
    new = claiming("https://news.example/world/new", "a story of today, told anew", day=3)
    again = claiming("https://news.example/world/old-print", "the story of last week", day=3)
    with pipeline() as p:
        out = p | beam.Create([new, again]) | DeduplicateArticles(memory, DEDUP)
        assert_that(out["articles"] | "Ids" >> beam.Map(lambda a: (a.url, a.article_id)),
                    equal_to([(new.url, url_id(new.url))]), label="NewKept")
        assert_that(out["duplicates"] | "Rows" >> beam.Map(lambda d: (d.url, d.duplicate_of)),
                    equal_to([(again.url, stored.article_id)]), label="SameTextIsCopy")


@pytest.mark.parametrize("feed_time", [datetime(1900, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC),
                                       None])
def test_a_listing_with_an_implausible_feed_date_takes_the_articles(feed_time):
    # `articles` would never keep 1900 or 9999; its duplicates row did.
    listing = FeedItem(url="https://a.example/1?ref=x", feed_url="f2", published_at=feed_time,
                       first_seen=(1, 0))
    kept = article("https://a.example/1", day=3)
    kept = replace(kept, item=replace(kept.item, also_listed=(listing,)))
    _, rows = settle(kept, NOW)
    assert [row.published_at for row in rows] == [kept.published_at]

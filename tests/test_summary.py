"""What the run summary says about failures a user can do something about."""
from __future__ import annotations

from pipelines.summary import RunSummary


def summary(**counters: int) -> RunSummary:
    return RunSummary("20260101T000000Z-abc123", "data", 1, 1.0, counters=dict(counters))


def test_refused_private_addresses_of_pages_or_feeds_say_how_to_allow_them():
    for failed in ({"fetch/rejected/blocked-address": 2},
                   {"feeds/failed/blocked-address/http://10.0.0.1/feed.xml": 1}):
        said = summary(**failed)
        assert len(said.hints()) == 1 and "--allow-private-network" in said.hints()[0]
        assert said.as_dict()["hints"] == said.hints()
        assert "--allow-private-network" in said.format(), "the full summary"
        assert "--allow-private-network" in said.line(), "-q and every stream poll"


def test_one_dead_article_link_gives_no_network_hint():
    said = summary(**{"fetch/rejected/dns": 1, "fetch/rejected/connection": 1, "feeds/polled": 3})
    assert said.hints() == []


def test_failures_without_a_remedy_give_no_hint():
    said = summary(**{"fetch/rejected/http-status": 3, "feeds/failed/http-500/https://a.example/feed": 1,
                      "feeds/failed/parse/https://b.example/feed": 1})
    assert said.hints() == [] and said.as_dict()["hints"] == []
    assert "hint" not in said.format() and "hint" not in said.line()


def test_a_failing_feed_is_listed_with_its_reason_in_words_and_what_to_do():
    feed = "https://feeds.example.org/rss"
    said = summary(**{"feeds/polled": 1, "feeds/rejected": 1, f"feeds/failed/dns/{feed}": 1})
    said.feed_errors = {feed: "cannot resolve feeds.example.org: Name or\nservice not known"}
    assert said.failing_feeds() == [{"feed": feed, "error": "dns", "message": said.feed_errors[feed]}]
    text = said.format()
    assert f"{feed}  dns: cannot resolve feeds.example.org: Name or service not known" in text
    assert "check the name, DNS and the network" in text


def test_a_run_that_could_poll_no_feed_says_so_and_one_that_polled_any_does_not():
    none = summary(**{"feeds/polled": 2, "feeds/rejected": 2})
    assert none.no_feed_polled() and none.as_dict()["no_feed_polled"]
    assert "NO FEED could be polled" in none.format() and "NO FEED could be polled" in none.line()
    some = summary(**{"feeds/polled": 2, "feeds/rejected": 1})
    idle = summary(**{"feeds/not_due": 2})  # nothing was due: not a failure
    resting = summary(**{"feeds/polled": 1, "feeds/rejected": 1, "feeds/not_due": 3})  # one new feed broken
    for said in (some, idle, resting):
        assert not said.no_feed_polled() and "NO FEED" not in said.format() + said.line()


def test_feeds_not_due_say_when_they_are_due_and_how_to_poll_now():
    from datetime import UTC, datetime

    said = summary(**{"feeds/not_due": 8})
    said.next_due = datetime(2026, 12, 4, 14, 30, tzinfo=UTC)
    assert "not due 8 (next due 2026-12-04 14:30 UTC; --force polls them now)" in said.format()
    assert said.as_dict()["feeds"]["next_due"] == "2026-12-04T14:30:00+00:00"
    said.next_due = datetime(2026, 12, 4, 14, 30, 20, tzinfo=UTC)
    assert "next due 2026-12-04 14:31 UTC" in said.format(), "never earlier than it is"


def test_actors_are_counted_by_articles_naming_them_and_by_primary_actor_apart():
    counters = {f"written/mentions/actor/actor-{n:02d}": 20 - n for n in range(12)}
    counters.update({"written/mentions/actor/isis": 30, "written/articles/actor/coalition": 2})
    said = summary(**counters)
    assert list(said.as_dict()["articles_naming_actor"])[:2] == ["isis", "actor-00"]
    text = said.format()
    assert "actors     isis 30, actor-00 20," in text and ", and 3 more  (articles naming each)" in text
    assert "primary    coalition 2  (articles by their main actor)" in text

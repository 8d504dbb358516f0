"""Feed state: conditional GET, unchanged bodies, back-off, Retry-After, <ttl>, disabling."""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from schemas.records import FeedState
from schemas.settings import FeedSettings
from transforms.failures import retry_after_seconds
from transforms.feedstate import (
    after_failure,
    after_success,
    is_due,
    load_states,
    next_interval,
    publisher_interval,
    save_states,
)

from .conftest import run_cli
from .loopback import rss

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
SETTINGS = FeedSettings()


def test_back_off_doubles_up_to_the_cap_and_disables_a_feed_that_keeps_failing():
    state, waits = FeedState("https://a.example/rss"), []
    for _ in range(12):
        state = after_failure(state, "http-status", "HTTP 503", NOW, SETTINGS)
        waits.append((state.next_poll_at - NOW).total_seconds() / 60)
    assert waits[:4] == [15, 30, 60, 120]
    assert max(waits) == 24 * 60
    assert state.failures == 12 and state.disabled
    recovered = after_success(state, "ok", NOW, SETTINGS)
    assert (recovered.failures, recovered.disabled, recovered.next_poll_at) == (0, False, None)


@pytest.mark.parametrize("header, seconds", [
    ("120", 120), ("Thu, 01 Jan 2026 13:00:00 GMT", 3600), ("²", None), ("soon", None),
    ("9" * 5000, float("inf")), ("Thu, 01 Jan 2026 11:00:00 GMT", 0)])
def test_retry_after_headers_as_servers_write_them(header, seconds):
    assert retry_after_seconds(header, NOW) == seconds


def test_retry_after_is_honoured_within_the_cap():
    waited = after_failure(FeedState("u"), "http-status", "HTTP 429", NOW, SETTINGS, retry_after_s=7200)
    assert waited.next_poll_at == NOW + timedelta(hours=2)
    capped = after_failure(FeedState("u"), "http-status", "HTTP 429", NOW, SETTINGS, retry_after_s=10**7)
    assert capped.next_poll_at == NOW + timedelta(hours=24)


@pytest.mark.parametrize("ttl, period, frequency, minutes", [
    ("60", None, None, 60), (None, "hourly", "2", 30), (None, "daily", None, 1440),
    ("30", "hourly", "1", 60), (None, None, None, None), ("soon", None, None, None),
    ("²", None, None, None), ("9" * 5000, None, None, 366 * 1440), (None, "hourly", "²", 60),
])
def test_publisher_intervals(ttl, period, frequency, minutes):
    wait = publisher_interval(ttl, period, frequency)
    assert (wait.total_seconds() / 60 if wait else None) == minutes


def test_state_file_round_trips_and_is_replaced_whole(tmp_path):
    states = [FeedState("https://a.example/rss", etag='"v1"', failures=2, next_poll_at=NOW),
              FeedState("https://b.example/rss", disabled=True, last_error="HTTP 404")]
    save_states(str(tmp_path), states)
    save_states(str(tmp_path), states)
    assert load_states(str(tmp_path)) == {state.url: state for state in states}
    assert [path.name for path in (tmp_path / "_state").iterdir()] == ["feeds.json"]
    assert is_due(states[1], NOW) and not is_due(states[0], NOW - timedelta(minutes=1))


def feed_state(out) -> dict:
    return json.loads((out / "_state" / "feeds.json").read_text())["feeds"]


@pytest.mark.e2e
def test_conditional_get_answered_304_costs_no_parsing(site, tmp_path):
    site.add("/rss", rss([{"link": "/gone"}]), etag='"v1"', content_type="application/rss+xml")
    out = tmp_path / "out"
    args = ("--feeds", site.url("/rss"), "--out", str(out), "--allow-private-network")
    assert run_cli(*args)[0] == 0
    assert feed_state(out)[site.url("/rss")]["etag"] == '"v1"'
    code, printed, summary = run_cli(*args)
    assert code == 0, printed
    assert summary["feeds"]["not_modified"] == 1 and summary["items"]["seen"] == 0 and summary["adds_up"]
    assert site.hits["/rss"] == 2 and site.conditional["/rss"] == 1
    assert site.hits["/gone"] == 1, "the entry was not parsed again"
    assert feed_state(out)[site.url("/rss")]["last_status"] == "not-modified"


@pytest.mark.e2e
def test_a_server_asking_to_wait_is_not_asked_again_before_time(site, tmp_path):
    site.add("/busy", "slow down", status=429, headers={"Retry-After": "3600"})
    site.add("/ttl", rss([], title="hourly").replace("<description>", "<ttl>60</ttl><description>"),
             content_type="application/rss+xml")
    out = tmp_path / "out"
    args = ("--feeds", site.url("/busy"), "--feeds", site.url("/ttl"), "--out", str(out),
            "--allow-private-network")
    assert run_cli(*args)[0] == 0
    state = feed_state(out)
    busy = datetime.fromisoformat(state[site.url("/busy")]["next_poll_at"])
    assert timedelta(minutes=59) < busy - datetime.now(UTC) <= timedelta(hours=1)
    assert state[site.url("/busy")]["failures"] == 1
    assert datetime.fromisoformat(state[site.url("/ttl")]["next_poll_at"]) > datetime.now(UTC)
    code, printed, summary = run_cli(*args)
    assert code == 0 and summary["feeds"]["not_due"] == 2, printed
    assert (site.hits["/busy"], site.hits["/ttl"]) == (1, 1)


@pytest.mark.e2e
def test_a_feed_that_keeps_failing_is_reported_disabled(site, tmp_path):
    out = tmp_path / "out"
    url = site.url("/missing.xml")
    save_states(str(out), [FeedState(url, failures=SETTINGS.disable_after_failures - 1,
                                     next_poll_at=datetime.now(UTC) - timedelta(minutes=1))])
    code, printed, summary = run_cli("--feeds", url, "--out", str(out), "--allow-private-network")
    assert code == 3, printed  # its only feed failed
    assert summary["feeds"]["disabled"] == [url]
    # What the user reads, whatever the column widths:
    assert re.search(rf"^\s*DISABLED\s+1 feeds keep failing: {re.escape(url)}$", printed, re.M), printed
    assert feed_state(out)[url]["disabled"] is True


@pytest.mark.e2e
def test_feed_state_is_saved_only_after_its_items_are_written(site, tmp_path):
    site.add("/rss", rss([{"link": "/story"}]), etag='"v1"', content_type="application/rss+xml")
    site.add("/story", "<html><body><article><p>" + "Shelling was reported near Idlib today. " * 20
             + "</p></article></body></html>")
    out = tmp_path / "out"
    out.mkdir()
    (out / "articles").write_text("a file where the articles folder belongs")
    args = ("--feeds", site.url("/rss"), "--out", str(out), "--allow-private-network")
    assert run_cli(*args)[0] == 1
    assert not (out / "_state" / "feeds.json").exists(), "no ETag saved for items never written"
    (out / "articles").unlink()
    code, printed, summary = run_cli(*args)
    assert code == 0 and summary["items"]["articles"] == 1, printed
    assert site.conditional["/rss"] == 0, "the feed was fetched whole again"


def test_absurd_failure_counts_retry_afters_and_ttls_stay_within_the_cap():
    cap = NOW + timedelta(hours=SETTINGS.backoff_cap_hours)
    state = FeedState("u", failures=10_000)
    assert after_failure(state, "http-status", "HTTP 404", NOW, SETTINGS).next_poll_at == cap
    assert after_failure(FeedState("u"), "http-status", "HTTP 503", NOW, SETTINGS,
                         retry_after_s=1e300).next_poll_at == cap
    wait = publisher_interval("99999999999999", None, None)
    assert after_success(FeedState("u"), "ok", NOW, SETTINGS, wait=wait).next_poll_at == cap


def test_a_feeds_ttl_still_holds_after_a_304():
    polled = after_success(FeedState("u"), "ok", NOW, SETTINGS, etag='"v1"', wait=timedelta(minutes=60))
    later = NOW + timedelta(minutes=61)
    again = after_success(polled, "not-modified", later, SETTINGS)
    assert again.next_poll_at == later + timedelta(minutes=60)
    changed = after_success(again, "ok", later, SETTINGS, etag='"v2"', wait=None)
    assert changed.next_poll_at is None, "a new body without <ttl> lifts it"


@pytest.mark.e2e
@pytest.mark.parametrize("damage", [
    lambda text: text[:40],  # a torn write
    lambda text: text.replace('"failures": 0', '"failures": "3"'),  # a mistaken hand edit
    lambda text: "[]",
])
def test_a_damaged_state_file_is_set_aside_and_the_run_goes_on(site, tmp_path, damage):
    site.add("/rss", rss([{"link": "/gone"}]), etag='"v1"', content_type="application/rss+xml")
    out = tmp_path / "out"
    args = ("--feeds", site.url("/rss"), "--out", str(out), "--allow-private-network")
    assert run_cli(*args)[0] == 0
    state_file = out / "_state" / "feeds.json"
    damaged = damage(state_file.read_text())
    assert damaged != state_file.read_text()
    state_file.write_text(damaged)
    code, printed, summary = run_cli(*args)
    assert code == 0, printed
    feeds = summary["feeds"]
    assert (feeds["polled"], feeds["not_modified"], feeds["unchanged"]) == (1, 0, 0)
    assert site.conditional["/rss"] == 0, "polled afresh"
    (aside,) = (out / "_state").glob("feeds.json.damaged-*")
    assert aside.read_text() == damaged, "the damaged file is kept for a look"
    assert feed_state(out)[site.url("/rss")]["etag"] == '"v1"', "a good state written again"


@pytest.mark.e2e
def test_a_disabled_feed_is_reported_on_every_run_not_only_when_retried(site, tmp_path):
    out = tmp_path / "out"
    url = site.url("/missing.xml")
    save_states(str(out), [FeedState(url, failures=SETTINGS.disable_after_failures, disabled=True,
                                     next_poll_at=datetime.now(UTC) + timedelta(hours=20))])
    code, printed, summary = run_cli("--feeds", url, "--out", str(out), "--allow-private-network")
    assert code == 0 and summary["feeds"]["not_due"] == 1, printed
    assert summary["feeds"]["disabled"] == [url]
    assert site.hits[url] == 0


STORY = ("<html><body><article><p>" + "Shelling was reported near Idlib today. " * 20
         + "</p></article></body></html>")


@pytest.mark.e2e
def test_an_article_that_failed_for_a_while_is_retried_though_its_feed_is_unchanged(site, tmp_path):
    site.add("/rss", rss([{"link": "/busy"}, {"link": "/gone"}, {"link": "/fine"}]), etag='"v1"',
             content_type="application/rss+xml")
    site.add("/busy", "try later", status=503, headers={"Retry-After": "3600"})  # not in this run
    site.add("/fine", STORY)
    out = tmp_path / "out"
    args = ("--feeds", site.url("/rss"), "--out", str(out), "--allow-private-network")
    code, printed, summary = run_cli(*args)
    assert code == 0 and (summary["items"]["articles"], summary["items"]["rejected"]) == (1, 2), printed
    site.add("/busy", STORY.replace("Idlib", "Deir ez-Zor"))
    code, printed, summary = run_cli(*args)
    assert code == 0 and summary["items"]["articles"] == 1, printed
    assert (site.hits["/busy"], site.hits["/gone"], site.hits["/fine"]) == (2, 2, 1), \
        "the 503 is retried (the 404 with it, as before feed state); the stored article is not"
    code, printed, summary = run_cli(*args)
    assert code == 0, printed
    assert summary["feeds"]["not_modified"] == 1, "nothing left to retry: validators are used again"


@pytest.mark.e2e
def test_a_run_that_could_poll_no_feed_exits_3_says_why_and_force_polls_again(site, tmp_path, capsys):
    args = ("--feeds", site.url("/gone.xml"), "--out", str(tmp_path / "out"), "--allow-private-network")
    code, printed, summary = run_cli(*args)
    assert code == 3, "not success: cron and CI must see it"
    assert capsys.readouterr().err.strip() == ("news-ingest: error: no feed could be polled: every feed "
                                               "failed (the summary says why)")
    assert summary["no_feed_polled"] and "NO FEED could be polled" in printed
    assert summary["failing_feeds"][0]["message"].startswith("HTTP 404")
    assert "find its current URL" in printed
    code, printed, summary = run_cli(*args)
    assert (code, summary["feeds"]["not_due"], site.hits["/gone.xml"]) == (0, 1, 1), "waiting: no failure"
    assert summary["feeds"]["next_due"] and "--force polls them now" in printed
    code, _, summary = run_cli(*args, "--force")
    assert (code, summary["feeds"]["rejected"], site.hits["/gone.xml"]) == (3, 1, 2)


# --- adaptive polling ----------------------------------------------------------------------

def hourly(count: int, newest: datetime = NOW) -> list[datetime]:
    return [newest - timedelta(hours=hours) for hours in range(count)]


def test_a_feed_publishing_hourly_is_polled_every_half_hour_and_says_why():
    interval = next_interval(FeedState("f"), True, hourly(20), NOW, SETTINGS)
    # 20 entries from 19 h ago to now: one every 57 min, two polls per entry.
    assert interval.seconds == pytest.approx(19 * 3600 / 20 / 2)
    assert interval.reason == "20 entries in 19.0 h: one every 57 min"
    state = after_success(FeedState("f"), "ok", NOW, SETTINGS, interval=interval)
    assert state.next_poll_at == NOW + timedelta(seconds=interval.seconds)
    assert (state.paced_entries, state.paced_since) == (20, NOW - timedelta(hours=19))


def test_the_pace_is_bounded_by_the_floor_and_the_ceiling():
    busy = [NOW - timedelta(minutes=minutes) for minutes in range(50)]
    assert next_interval(FeedState("f"), True, busy, NOW, SETTINGS).seconds == 600
    weekly = [NOW - timedelta(weeks=weeks) for weeks in range(10)]
    quiet = next_interval(FeedState("f"), True, weekly, NOW, SETTINGS)
    assert quiet.seconds == 24 * 3600 and quiet.reason.endswith("(at most 24.0 h)")
    wide = FeedSettings(min_interval_minutes=30, max_interval_hours=48)
    assert next_interval(FeedState("f"), True, busy, NOW, wide).seconds == 1800
    assert next_interval(FeedState("f"), True, weekly, NOW, wide).seconds == 48 * 3600


def test_a_feed_gone_quiet_waits_longer_gradually_and_never_loses_its_pace():
    """A quiet night: each unchanged poll counts the same entries over a longer span."""
    state = after_success(FeedState("f"), "ok", NOW, SETTINGS,
                          interval=next_interval(FeedState("f"), True, hourly(20), NOW, SETTINGS))
    waits = []
    moment = NOW
    for _ in range(6):
        moment = state.next_poll_at
        state = after_success(state, "unchanged", moment, SETTINGS,
                              interval=next_interval(state, False, [], moment, SETTINGS))
        waits.append(state.interval_s)
    assert waits == sorted(waits) and waits[-1] < 2 * waits[0]  # slower, linearly, not doubling
    assert waits[-1] == pytest.approx((moment - (NOW - timedelta(hours=19))).total_seconds() / 40)


def test_an_undated_feed_waits_less_after_a_change_and_more_after_none():
    state = FeedState("f", interval_s=3600)
    assert next_interval(state, True, [], NOW, SETTINGS).seconds == 1800
    assert next_interval(state, False, [], NOW, SETTINGS).seconds == 5400
    assert next_interval(FeedState("f"), True, [], NOW, SETTINGS).seconds == 600  # the floor, at first
    future = [NOW + timedelta(days=400)]  # a date far ahead is the feed's clock: not a pace
    assert "no dated entries" in next_interval(FeedState("f"), True, future, NOW, SETTINGS).reason
    no_floor = FeedSettings(min_interval_minutes=0)
    waits = [next_interval(FeedState("f", interval_s=wait), False, [], NOW, no_floor).seconds
             for wait in (None, 90)]
    assert 0 < waits[0] < waits[1]  # with no floor, a feed with nothing new still slows down


def test_the_publishers_ttl_wins_when_longer_and_off_means_every_run():
    pace = next_interval(FeedState("f"), True, hourly(20), NOW, SETTINGS)
    state = after_success(FeedState("f"), "ok", NOW, SETTINGS, wait=timedelta(hours=2), interval=pace)
    assert state.next_poll_at == NOW + timedelta(hours=2)
    assert state.interval_reason == "the publisher asks for 2.0 h (<ttl>)"
    off = FeedSettings(max_interval_hours=0)
    assert next_interval(FeedState("f"), True, hourly(20), NOW, off) is None
    assert after_success(FeedState("f"), "ok", NOW, off).next_poll_at is None


def test_a_state_file_of_an_older_version_without_a_pace_loads(tmp_path):
    folder = tmp_path / "_state"
    folder.mkdir()
    (folder / "feeds.json").write_text(json.dumps({"version": 1, "feeds": {"https://a.example/rss": {
        "etag": None, "last_modified": None, "body_hash": "x", "last_status": "ok", "failures": 0,
        "disabled": False, "last_error": None, "min_interval_s": None,
        "last_polled_at": "2026-01-01T12:00:00+00:00", "next_poll_at": None}}}))
    state = load_states(str(tmp_path))["https://a.example/rss"]
    assert state.paced_entries is None and is_due(state, NOW)
    interval = next_interval(state, False, [], NOW, SETTINGS)
    assert interval.seconds == 900  # undated so far: 1.5 x the 10-minute floor


@pytest.mark.e2e
def test_a_run_polls_each_feed_at_its_own_pace_and_reports_it(site, tmp_path, capsys):
    recent = datetime.now(UTC).replace(microsecond=0)
    site.add("/busy", rss([{"link": f"/b{n}", "pubDate": format_datetime(recent - timedelta(minutes=5 * n))}
                           for n in range(20)]), content_type="application/rss+xml")
    site.add("/daily", rss([{"link": f"/d{n}", "pubDate": format_datetime(recent - timedelta(days=n))}
                            for n in range(20)]), content_type="application/rss+xml")
    out = tmp_path / "out"
    args = ("--feeds", site.url("/busy"), "--feeds", site.url("/daily"), "--out", str(out),
            "--allow-private-network", "--host-delay", "0", "--max-interval", "24h")
    run = run_cli(*args)
    assert run.code == 0, run.printed
    assert run.summary["feeds"]["by_interval"] == {"<=15min": 1, "<=24h": 1}
    assert "intervals  next poll of the feeds polled: <=15min 1, <=24h 1" in run.printed
    state = feed_state(out)
    assert state[site.url("/daily")]["interval_reason"].startswith("20 entries in 19.0 days: one every")
    again = run_cli(*args)
    assert again.code == 0 and again.summary["feeds"]["not_due"] == 2 and site.hits["/daily"] == 1
    from pipelines.cli import main

    capsys.readouterr()
    assert main(["report", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Feeds by polling interval" in printed and "20 entries in 19.0 days" in printed

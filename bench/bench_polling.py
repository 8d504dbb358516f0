"""Adaptive polling against a fixed 15-minute poll, on a simulated week of feeds.

200 feeds publish for a week (plus two weeks of history before it) as
Poisson processes with a daily rhythm (three times as busy at midday as at
night, UTC); their rates are log-normal, median 6 entries a day, from a
few a week to a few hundred a day, and one feed in ten is dormant (nothing
this week). Each feed lists its newest 20 entries; one in five dates none
of them. `news-ingest run` is assumed to run every 15 minutes:

  fixed      every feed polled on every run (what `--max-interval 0` does);
  adaptive   a feed polled only when due, its next poll set by the very
             functions a run uses (transforms/feedstate.py: next_interval,
             after_success), bounded by 10 min and 24 h.

For each: requests (polls), the delay from an entry's publication to the
first poll that lists it (mean, median, 95th percentile), and entries
missed (pushed off a feed's 20 before any poll saw them). Also the same
with one poll per new entry instead of two (FeedSettings.polls_per_item).

    .venv/bin/python bench/bench_polling.py [--feeds 200] [--days 7] [--seed 1]
"""
from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from bisect import bisect_right
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from schemas.records import FeedState  # noqa: E402
from schemas.settings import FeedSettings  # noqa: E402
from transforms.feedstate import after_success, is_due, next_interval  # noqa: E402

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
TICK = timedelta(minutes=15)  # the cron interval of `news-ingest run`
LISTED = 20  # entries a feed lists


def publication_times(rate_per_day: float, start: datetime, end: datetime,
                      rng: random.Random) -> list[datetime]:
    """A Poisson process with a daily rhythm (peak at 12:00 UTC, 3:1 against night), by thinning."""
    peak = rate_per_day * 1.5 / 86400  # the busiest moment's rate, per second
    times, moment = [], start
    while True:
        moment += timedelta(seconds=rng.expovariate(peak))
        if moment >= end:
            return times
        hour = moment.hour + moment.minute / 60
        if rng.random() < (2 + math.cos((hour - 12) / 24 * 2 * math.pi)) / 3:
            times.append(moment)


def make_feeds(count: int, days: int, rng: random.Random) -> list[dict]:
    feeds = []
    history = START - timedelta(days=14)
    for number in range(count):
        rate = math.exp(rng.gauss(math.log(6), 1.3))
        end = START + timedelta(days=days)
        if number % 10 == 9:  # dormant: published until some weeks ago, nothing this week
            end = START - timedelta(days=rng.uniform(1, 10))
        feeds.append({"times": publication_times(rate, history, end, rng), "dated": number % 5 != 4,
                      "rate": rate})
    return feeds


def listed_at(times: list[datetime], moment: datetime) -> list[datetime]:
    """The entries a feed lists at `moment`: its newest LISTED published by then."""
    upto = bisect_right(times, moment)
    return times[max(0, upto - LISTED):upto]


def simulate(feeds: list[dict], days: int, settings: FeedSettings | None) -> dict:
    """Polls every TICK (all feeds when `settings` is None, else the due ones); requests and delays."""
    requests, delays, missed = 0, [], 0
    end = START + timedelta(days=days)
    for feed in feeds:
        state, last_listed, seen = FeedState("feed"), None, set()
        moment = START
        while moment < end:
            if settings is None or is_due(state, moment):
                requests += 1
                listed = listed_at(feed["times"], moment)
                for published in listed:
                    if published >= START and published not in seen:
                        delays.append((moment - published).total_seconds() / 60)
                    seen.add(published)
                if settings is not None:
                    changed = listed != last_listed
                    dates = listed if feed["dated"] else []
                    interval = next_interval(state, changed, dates, moment, settings)
                    state = after_success(state, "ok" if changed else "unchanged", moment, settings,
                                          interval=interval)
                last_listed = listed
            moment += TICK
        still_listed = set(listed_at(feed["times"], end))  # unseen, not lost: the next poll has them
        missed += sum(1 for published in feed["times"]
                      if START <= published < end and published not in seen and published not in still_listed)
    delays.sort()
    return {"requests": requests, "entries": sum(1 for feed in feeds for published in feed["times"]
                                                 if START <= published < end), "missed": missed,
            "mean": statistics.fmean(delays) if delays else 0.0,
            "median": statistics.median(delays) if delays else 0.0,
            "p95": delays[int(0.95 * (len(delays) - 1))] if delays else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    feeds = make_feeds(args.feeds, args.days, random.Random(args.seed))
    rates = sorted(feed["rate"] for feed in feeds)
    print(f"{args.feeds} feeds over {args.days} days (seed {args.seed}): entries a day per feed "
          f"median {statistics.median(rates):.1f}, 10th percentile {rates[len(rates) // 10]:.1f}, "
          f"90th {rates[9 * len(rates) // 10]:.1f}; one in ten dormant, one in five undated; "
          f"`run` every {TICK.total_seconds() / 60:.0f} min")
    adaptive = FeedSettings()
    runs = [("fixed 15 min", None), ("adaptive (default)", adaptive),
            ("adaptive, 1 poll per entry", replace(adaptive, polls_per_item=1.0))]
    results = [(label, simulate(feeds, args.days, settings)) for label, settings in runs]
    baseline = results[0][1]["requests"]
    print(f"{'':28}{'requests':>10}{'vs fixed':>10}{'delay mean':>12}{'median':>8}{'p95':>8}{'missed':>8}")
    for label, result in results:
        print(f"{label:<28}{result['requests']:>10,}{result['requests'] / baseline:>10.2f}"
              f"{result['mean']:>10.1f} m{result['median']:>6.1f} m{result['p95']:>6.0f} m"
              f"{result['missed']:>5} of {result['entries']:,}")


if __name__ == "__main__":
    main()

"""The run summary, built from the pipeline's metrics counters.

Counters are named where the event happens (`items/seen` in the feeds stage,
`written/articles` in the write stage, ...). The accounting contract: every
item a feed listed is written as an article, a duplicate or a reject, or was
already ingested by an earlier run; `adds_up` checks it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from apache_beam.metrics.metric import MetricsFilter

from schemas.settings import METRICS_NAMESPACE
from transforms.feedstate import INTERVAL_BUCKETS


def counters_of(result) -> dict[str, int]:
    """Final value of every counter of this project in a finished pipeline."""
    values: dict[str, int] = {}
    for counter in result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        name = counter.key.metric.name
        values[name] = values.get(name, 0) + int(value or 0)
    return values


class Timing(NamedTuple):
    """Milliseconds spent on one feed's requests, or on its pages."""
    total_ms: int
    count: int
    max_ms: int


def timings_of(result) -> dict[str, Timing]:
    """Every distribution of this project in a finished pipeline (per-feed timings)."""
    timings: dict[str, Timing] = {}
    query = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    for distribution in query["distributions"]:
        value = distribution.committed or distribution.attempted
        if value is None or not value.count:
            continue
        name = distribution.key.metric.name
        before = timings.get(name, Timing(0, 0, 0))
        timings[name] = Timing(before.total_ms + value.sum, before.count + value.count,
                               max(before.max_ms, value.max))
    return timings


def stage_seconds_of(result) -> dict[str, float]:
    """CPU-side time per stage (top-level transform) as the runner measured
    it, for runners that report Beam's execution-time metrics; else empty."""
    if not hasattr(result, "monitoring_metrics"):
        return {}
    stages: dict[str, float] = {}
    for counter in result.monitoring_metrics().query()["counters"]:
        if counter.key.metric.name.endswith("ptransform_execution_time:total_msecs:v1"):
            stage = counter.key.step.split("/")[0]
            stages[stage] = stages.get(stage, 0.0) + (counter.committed or 0) / 1000
    return {stage: round(seconds, 2) for stage, seconds in
            sorted(stages.items(), key=lambda item: -item[1]) if seconds}


def _with_prefix(counters: dict[str, int], prefix: str) -> dict[str, int]:
    return {name[len(prefix):]: value for name, value in sorted(counters.items())
            if name.startswith(prefix) and value}


# The text summary lists slow feeds from here on (all are in --summary-json).
SLOW_FEED_SECONDS = 1.0

# Actors named in the text summary (all are in --summary-json).
TEXT_ACTORS = 10

# What the user can do about a failure, by error type: the stages that
# record failures do not know the command line, this summary does.
FAILURE_HINTS = {
    "blocked-address": "non-public addresses are refused; --allow-private-network allows them "
                       "(intranet feeds, tests)",
    "dns": "a host name did not resolve: check the name, DNS and the network",
    "connection": "a server refused or dropped the connection: check the network",
    "http-404": "a feed is not where its URL says (404): find its current URL",
    "http-410": "a feed is gone for good (410): take it out of the list",
    "http-403": "a server refuses us (403): it may block crawlers",
}


@dataclass
class RunSummary:
    run_id: str
    out_dir: str
    feeds_listed: int
    seconds: float
    counters: dict[str, int] = field(default_factory=dict)
    timings: dict[str, Timing] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    # Damaged dataset files this run moved to DIR/_state/quarantine/ (paths in that folder).
    quarantined: list[str] = field(default_factory=list)
    # From the feed state after the run: why each failing feed failed, in
    # words, and when the first of the feeds this run found not due is due.
    feed_errors: dict[str, str] = field(default_factory=dict)
    next_due: datetime | None = None
    # Processes that cleaned and classified (transforms/workers.py), and each one's peak memory.
    workers: int = 1
    worker_peak_rss_mib: list[float] = field(default_factory=list)

    def count(self, name: str) -> int:
        return self.counters.get(name, 0)

    def slowest_feeds(self, limit: int = 5) -> list[dict]:
        """Feeds by the time their requests and their pages' took (requests
        overlap, so this is time spent waiting on a site, not wall time)."""
        feeds = {name.split("/", 2)[2] for name in self.timings
                 if name.startswith(("feeds/ms/", "fetch/ms/"))}
        rows = []
        for feed in feeds:
            own = self.timings.get(f"feeds/ms/{feed}", Timing(0, 0, 0))
            pages = self.timings.get(f"fetch/ms/{feed}", Timing(0, 0, 0))
            rows.append({"feed": feed, "seconds": (own.total_ms + pages.total_ms) / 1000,
                         "feed_seconds": own.total_ms / 1000, "pages": pages.count,
                         "pages_seconds": pages.total_ms / 1000,
                         "slowest_page_seconds": pages.max_ms / 1000})
        return sorted(rows, key=lambda row: (-row["seconds"], row["feed"]))[:limit]

    def failing_feeds(self) -> list[dict]:
        """Feeds whose request failed in this run, with what failed (`http-404`, `parse`, ...)."""
        failed = (name.partition("/") for name in _with_prefix(self.counters, "feeds/failed/"))
        return sorted(({"feed": feed, "error": label, "message": self.feed_errors.get(feed, "")}
                       for label, _, feed in failed), key=lambda row: row["feed"])

    def no_feed_polled(self) -> bool:
        """Every feed failed (none was merely resting): nothing new could even be looked for."""
        failed, resting = self.count("feeds/rejected"), self.count("feeds/not_due")
        return 0 < failed == self.count("feeds/polled") and not resting

    def hints(self) -> list[str]:
        """What to do about this run's failures, for those that have a remedy."""
        failed_feeds = {row["error"] for row in self.failing_feeds()}
        # Of pages, only what holds for every page: one dead article link says nothing of the network.
        failed_pages = set(_with_prefix(self.counters, "fetch/rejected/")) & {"blocked-address"}
        return [hint for error, hint in FAILURE_HINTS.items() if error in failed_feeds | failed_pages]

    @property
    def item_rejects(self) -> int:
        """Rejects of feed entries (a failed feed has no entries to count)."""
        return sum(value for stage, value in _with_prefix(self.counters, "written/rejects/").items()
                   if stage != "feed")

    @property
    def accounted(self) -> int:
        return (self.count("written/articles") + self.count("written/duplicates")
                + self.item_rejects + self.count("items/already_ingested"))

    def adds_up(self) -> bool:
        return self.accounted == self.count("items/seen")

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id, "out": self.out_dir, "seconds": round(self.seconds, 2),
            "feeds": {"listed": self.feeds_listed, "polled": self.count("feeds/polled"),
                      "not_modified": self.count("feeds/not_modified"),
                      "unchanged": self.count("feeds/unchanged"),
                      "not_due": self.count("feeds/not_due"),
                      "next_due": self.next_due.isoformat() if self.next_due else None,
                      "rejected": self.count("feeds/rejected"),
                      "disabled": sorted(_with_prefix(self.counters, "feeds/disabled/")),
                      "by_interval": self._by_interval()},
            "items": {"seen": self.count("items/seen"),
                      "fetched": self.count("fetch/ok"),
                      "extracted": self.count("clean/ok"),
                      "articles": self.count("written/articles"),
                      "duplicates": self.count("written/duplicates"),
                      "rejected": self.item_rejects,
                      "already_ingested": self.count("items/already_ingested")},
            "adds_up": self.adds_up(),
            "no_feed_polled": self.no_feed_polled(),
            "duplicates_by_method": _with_prefix(self.counters, "written/duplicates/"),
            "rejects_by_stage": _with_prefix(self.counters, "written/rejects/"),
            "articles_by_actor": _with_prefix(self.counters, "written/articles/actor/"),
            "articles_naming_actor": _by_count(_with_prefix(self.counters, "written/mentions/actor/")),
            "articles_by_language": _with_prefix(self.counters, "classify/language/"),
            "slowest_feeds": self.slowest_feeds(),
            "failing_feeds": self.failing_feeds(),
            "hints": self.hints(),
            "stage_seconds": self.stage_seconds,
            "quarantined": self.quarantined,
            "archive": {"records": self.count("archive/pages"), "bytes": self.count("archive/bytes"),
                        "failed": self.count("archive/failed")},
            "workers": {"processes": self.workers,
                        "peak_rss_mib": [round(mib) for mib in self.worker_peak_rss_mib]},
        }

    def line(self) -> str:
        """One line per poll of `news-ingest stream`."""
        data = self.as_dict()
        feeds, items = data["feeds"], data["items"]
        disabled = f", DISABLED {len(feeds['disabled'])}" if feeds["disabled"] else ""
        return (f"{self.run_id}: feeds polled {feeds['polled']} (not modified {feeds['not_modified']}, "
                f"unchanged {feeds['unchanged']}), failed {feeds['rejected']}, not due "
                f"{feeds['not_due']}{disabled}; items seen {items['seen']}: articles {items['articles']}, "
                f"duplicates {items['duplicates']}, rejected {items['rejected']}, already ingested "
                f"{items['already_ingested']}  ({self.seconds:.1f} s)"
                + ("" if self.adds_up() else "  (MISMATCH: please report this)")
                + (f"; QUARANTINED {_files(len(self.quarantined))}: see _state/quarantine/"
                   if self.quarantined else "")
                + ("; NO FEED could be polled" if self.no_feed_polled() else "")
                + "".join(f"; hint: {hint}" for hint in data["hints"]))

    def format(self) -> str:
        data = self.as_dict()
        feeds, items = data["feeds"], data["items"]
        lines = [
            f"run {self.run_id} -> {self.out_dir}  ({self.seconds:.1f} s)",
            f"  feeds      listed {feeds['listed']}, polled {feeds['polled']} (not modified "
            f"{feeds['not_modified']}, unchanged {feeds['unchanged']}), failed {feeds['rejected']}, "
            f"not due {feeds['not_due']}{self._next_due()}",
            *([f"  DISABLED   {len(feeds['disabled'])} feeds keep failing: " + ", ".join(feeds["disabled"])]
              if feeds["disabled"] else []),
            *([f"  intervals  next poll of the feeds polled: {_pairs(feeds['by_interval'])}"]
              if set(feeds["by_interval"]) - {"every-run"} else []),
            f"  items      seen {items['seen']}, fetched {items['fetched']}, "
            f"extracted {items['extracted']}",
            f"    articles written   {items['articles']:>6}",
            f"    duplicates         {items['duplicates']:>6}  {_pairs(data['duplicates_by_method'])}",
            f"    rejected           {items['rejected']:>6}  {_pairs(data['rejects_by_stage'], skip='feed')}",
            f"    already ingested   {items['already_ingested']:>6}",
            f"    = {self.accounted} of {items['seen']} items accounted for"
            + ("" if self.adds_up() else "  (MISMATCH: please report this)"),
            f"  actors     {_pairs(dict(list(data['articles_naming_actor'].items())[:TEXT_ACTORS])) or '-'}"
            + _more(len(data["articles_naming_actor"]) - TEXT_ACTORS)
            + ("  (articles naming each)" if data["articles_naming_actor"] else ""),
            f"  primary    {_pairs(data['articles_by_actor']) or '-'}"
            + ("  (articles by their main actor)" if data["articles_by_actor"] else ""),
            f"  languages  {_pairs(data['articles_by_language']) or '-'}",
            *([f"  archive    {data['archive']['records']} pages and feeds kept as fetched, "
               f"{_size(data['archive']['bytes'])} (DIR/raw/)"
               + (f"; {data['archive']['failed']} could not be archived (-v says why)"
                  if data["archive"]["failed"] else "")]
              if data["archive"]["records"] or data["archive"]["failed"] else []),
            *_listing("slowest", [_slow_feed(row) for row in data["slowest_feeds"]
                                  if row["seconds"] >= SLOW_FEED_SECONDS]),
            *_listing("failing", [f"{row['feed']}  {row['error']}" + (f": {_cut(row['message'])}"
                                                                      if row["message"] else "")
                                  for row in data["failing_feeds"]]),
            *(["  NO FEED could be polled: every feed failed (see above); nothing new was looked for"]
              if self.no_feed_polled() else []),
            *_listing("hint", data["hints"]),
            *([f"  QUARANTINED {_files(len(self.quarantined))}, moved to {self.out_dir}/_state/"
               f"quarantine/ (the warnings say what each cost): " + ", ".join(self.quarantined[:3])]
              if self.quarantined else []),
        ]
        return "\n".join(line.rstrip() for line in lines)


    def _by_interval(self) -> dict[str, int]:
        """Feeds polled, by the wait until their next poll (adaptive polling), shortest first."""
        counted = _with_prefix(self.counters, "feeds/interval/")
        order = [f"<={label}" for _, label in INTERVAL_BUCKETS]
        named = {f"<={label}" if label in dict(INTERVAL_BUCKETS).values() else label: value
                 for label, value in counted.items()}
        return {label: named[label] for label in [*order, "longer", "every-run"] if label in named}

    def _next_due(self) -> str:
        if not self.count("feeds/not_due") or self.next_due is None:
            return ""
        due = (self.next_due + timedelta(seconds=59)).replace(second=0, microsecond=0)  # never early
        return f" (next due {due:%Y-%m-%d %H:%M} UTC; --force polls them now)"


def _cut(text: str, limit: int = 160) -> str:
    """One line of at most `limit` characters, control characters as spaces."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _more(count: int) -> str:
    return f", and {count} more" if count > 0 else ""


def _by_count(counts: dict[str, int]) -> dict[str, int]:
    """Most first, then by name."""
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _pairs(counts: dict[str, int], skip: str | None = None) -> str:
    return ", ".join(f"{name} {value}" for name, value in counts.items() if name != skip)


def _slow_feed(row: dict) -> str:
    pages = f"{row['pages']} page{'s' if row['pages'] != 1 else ''}"
    return (f"{row['seconds']:5.1f} s  {row['feed']}  (feed {row['feed_seconds']:.1f} s, {pages} "
            f"{row['pages_seconds']:.1f} s, slowest {row['slowest_page_seconds']:.1f} s)")


def _listing(label: str, rows: list[str]) -> list[str]:
    """Rows under a label in the summary's first column."""
    return [f"  {label if number == 0 else '':<9}  {row}" for number, row in enumerate(rows)]


def _size(count: int) -> str:
    return f"{count / 1e6:,.1f} MB" if count >= 1e6 else f"{count / 1e3:,.0f} kB"


def _files(count: int) -> str:
    return f"{count} damaged file{'' if count == 1 else 's'}"

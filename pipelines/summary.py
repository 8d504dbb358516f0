"""The run summary, built from the pipeline's metrics counters.

Counters are named where the event happens (`items/seen` in the feeds stage,
`written/articles` in the write stage, ...). The accounting contract: every
item a feed listed is written as an article, a duplicate or a reject, or was
already ingested by an earlier run; `adds_up` checks it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from apache_beam.metrics.metric import MetricsFilter

from schemas.settings import METRICS_NAMESPACE


def counters_of(result) -> dict[str, int]:
    """Final value of every counter of this project in a finished pipeline."""
    values: dict[str, int] = {}
    for counter in result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        name = counter.key.metric.name
        values[name] = values.get(name, 0) + int(value or 0)
    return values


def _with_prefix(counters: dict[str, int], prefix: str) -> dict[str, int]:
    return {name[len(prefix):]: value for name, value in sorted(counters.items())
            if name.startswith(prefix) and value}


@dataclass
class RunSummary:
    run_id: str
    out_dir: str
    feeds_listed: int
    seconds: float
    counters: dict[str, int] = field(default_factory=dict)

    def count(self, name: str) -> int:
        return self.counters.get(name, 0)

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
                      "rejected": self.count("feeds/rejected"),
                      "disabled": sorted(_with_prefix(self.counters, "feeds/disabled/"))},
            "items": {"seen": self.count("items/seen"),
                      "fetched": self.count("fetch/ok"),
                      "extracted": self.count("clean/ok"),
                      "articles": self.count("written/articles"),
                      "duplicates": self.count("written/duplicates"),
                      "rejected": self.item_rejects,
                      "already_ingested": self.count("items/already_ingested")},
            "adds_up": self.adds_up(),
            "duplicates_by_method": _with_prefix(self.counters, "written/duplicates/"),
            "rejects_by_stage": _with_prefix(self.counters, "written/rejects/"),
            "articles_by_actor": _with_prefix(self.counters, "written/articles/actor/"),
            "articles_by_language": _with_prefix(self.counters, "classify/language/"),
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
                + ("" if self.adds_up() else "  (MISMATCH: please report this)"))

    def format(self) -> str:
        data = self.as_dict()
        feeds, items = data["feeds"], data["items"]
        lines = [
            f"run {self.run_id} -> {self.out_dir}  ({self.seconds:.1f} s)",
            f"  feeds      listed {feeds['listed']}, polled {feeds['polled']} (not modified "
            f"{feeds['not_modified']}, unchanged {feeds['unchanged']}), failed {feeds['rejected']}, "
            f"not due {feeds['not_due']}",
            *([f"  DISABLED   {len(feeds['disabled'])} feeds keep failing: " + ", ".join(feeds["disabled"])]
              if feeds["disabled"] else []),
            f"  items      seen {items['seen']}, fetched {items['fetched']}, "
            f"extracted {items['extracted']}",
            f"    articles written   {items['articles']:>6}",
            f"    duplicates         {items['duplicates']:>6}  {_pairs(data['duplicates_by_method'])}",
            f"    rejected           {items['rejected']:>6}  {_pairs(data['rejects_by_stage'], skip='feed')}",
            f"    already ingested   {items['already_ingested']:>6}",
            f"    = {self.accounted} of {items['seen']} items accounted for"
            + ("" if self.adds_up() else "  (MISMATCH: please report this)"),
            f"  per actor  {_pairs(data['articles_by_actor']) or '-'}",
            f"  languages  {_pairs(data['articles_by_language']) or '-'}",
        ]
        return "\n".join(line.rstrip() for line in lines)


def _pairs(counts: dict[str, int], skip: str | None = None) -> str:
    return ", ".join(f"{name} {value}" for name, value in counts.items() if name != skip)

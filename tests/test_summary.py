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


def test_failures_without_a_remedy_give_no_hint():
    said = summary(**{"fetch/rejected/http-status": 3, "feeds/failed/dns/https://a.example/feed": 1})
    assert said.hints() == [] and said.as_dict()["hints"] == []
    assert "hint" not in said.format() and "hint" not in said.line()

"""Counting what happens, for the run summary and for live progress.

Every count goes to a Beam metrics counter in this project's namespace: the
summary reads those once the pipeline has finished, on any runner. Beam's
runners give counters only at the end, so each count also goes to a tally
kept by this process, which `news-ingest run` shows as progress while an
in-process runner works (with workers in other processes it stays empty).
"""
from __future__ import annotations

import threading
from collections import Counter as _Tally

from apache_beam.metrics import Metrics

from schemas.settings import METRICS_NAMESPACE

_tally: _Tally[str] = _Tally()
_tally_lock = threading.Lock()


class Counter:
    """A Beam counter that also counts in this process's live tally."""

    def __init__(self, name: str):
        self.name = name
        self._beam = Metrics.counter(METRICS_NAMESPACE, name)

    def inc(self, n: int = 1) -> None:
        self._beam.inc(n)
        with _tally_lock:
            _tally[self.name] += n


def counter(name: str) -> Counter:
    return Counter(name)


def distribution(name: str):
    """A Beam distribution (sum, count, min, max): timings for the summary."""
    return Metrics.distribution(METRICS_NAMESPACE, name)


def live_counts() -> dict[str, int]:
    """What this process has counted so far, since it started."""
    with _tally_lock:
        return dict(_tally)

"""Continuous ingestion: poll every interval, write each window as its own files.

On a streaming runner (Dataflow, Flink, ...) `build_stream_pipeline` is one
long-running Beam pipeline: a PeriodicImpulse ticks every interval, each tick
polls the feeds (ListFeeds/PollFeeds, with their state), a per-key
Deduplicate with a time-to-live drops items an earlier poll already carried,
and the items are cut into fixed windows of one interval, each going through
the same ingest graph as a batch run and landing as new files named after
the window (no file is ever rewritten).

The DirectRunner cannot run that graph as a stream on one machine (it runs a
PeriodicImpulse with batch semantics: a GroupByKey after it fires only at the
end). Locally, `run_locally` therefore runs the batch pipeline once per
interval -- the same transforms, one window at a time -- until stopped.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import timedelta

import apache_beam as beam
from apache_beam.transforms import window
from apache_beam.transforms.deduplicate import DeduplicatePerKey
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Duration

from schemas.settings import Settings
from transforms.feeds import ListFeeds, PollFeeds, WriteFeedStates
from transforms.urls import url_id

from .ingest import ingest


def stream_ingest(items, feed_rejects, feed_states, out_dir: str, run_id: str, settings: Settings,
                  interval_s: float, feed_bodies=None) -> dict:
    """Items arriving over time -> the dataset, one set of files per window."""
    windows = window.FixedWindows(interval_s)
    once = (items
            | "AcrossWindows" >> beam.WindowInto(window.GlobalWindows())
            | "KeyByUrl" >> beam.Map(lambda item: (url_id(item.url), item))
            | "OncePerStream" >> DeduplicatePerKey(
                processing_time_duration=Duration(seconds=settings.stream.seen_ttl_hours * 3600))
            | "Items" >> beam.Values())
    windowed = once | "ItemWindows" >> beam.WindowInto(windows)
    trigger = windowed | "WindowsWithItems" >> beam.combiners.Count.Globally().without_defaults()
    rejects = feed_rejects | "RejectWindows" >> beam.WindowInto(windows)
    bodies = None if feed_bodies is None else feed_bodies | "BodyWindows" >> beam.WindowInto(windows)
    outputs = ingest(trigger, windowed, rejects, out_dir, run_id, settings, bodies)
    _ = (feed_states
         | "StateWindows" >> beam.WindowInto(windows)
         | "RememberFeeds" >> WriteFeedStates(
             out_dir, after=outputs["written"], rejects=outputs["rejects"]))
    return outputs


def build_stream_pipeline(pipeline: beam.Pipeline, feed_urls: list[str], out_dir: str, run_id: str,
                          settings: Settings, interval_s: float, polls: int = 0, ticks=None) -> dict:
    """The streaming graph, polling `polls` times (0: until cancelled);
    `ticks` replaces the PeriodicImpulse (tests pass a TestStream).

    Each tick gets its own window before polling: grouping then closes
    with the window instead of waiting for the global one's end.
    """
    if ticks is None:
        start = time.time()
        stop = start + polls * interval_s - interval_s / 2 if polls else MAX_TIMESTAMP
        ticks = pipeline | "EveryInterval" >> PeriodicImpulse(
            start_timestamp=start, stop_timestamp=stop, fire_interval=interval_s)
    feeds = (ticks
             | "PollWindows" >> beam.WindowInto(window.FixedWindows(interval_s))
             | "FeedList" >> ListFeeds(feed_urls, out_dir))
    polled = feeds | "PollFeeds" >> PollFeeds(settings.fetch, settings.feeds, settings.write.archive)
    return stream_ingest(polled.items, polled.rejects, polled.states, out_dir, run_id, settings,
                         interval_s, polled.bodies)


class Stopper:
    """SIGINT and SIGTERM handling for the local loop: the first lets the poll
    in progress finish and write (or ends the wait at once); a second aborts.
    SIGTERM is what `docker stop`, Kubernetes and systemd send by default."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    SLICE_S = 0.25  # how soon a wait between polls sees a stop

    def __init__(self):
        # A plain flag, never a threading.Event: the handler runs in the main
        # thread, and Event.set takes the lock that thread may hold inside
        # Event.wait -- the handler then waits on itself forever (seen once).
        self.requested = False
        self.polling = False
        self.signal_number = signal.SIGINT

    @property
    def exit_status(self) -> int:
        """128 + the signal, as shells report a process it stopped."""
        return 128 + int(self.signal_number)

    def __enter__(self) -> Stopper:
        self._previous = {number: signal.signal(number, self._handle) for number in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _handle(self, signum, frame) -> None:
        if not self.requested:
            self.signal_number = signum
        if self.requested or not self.polling:
            self.requested = True
            if self.polling:
                raise KeyboardInterrupt
            return
        self.requested = True
        _say("news-ingest: stopping after the current poll (signal again to abort it)\n")

    def wait(self, seconds: float) -> bool:
        """Sleep until the next poll; False when a stop was asked for (seen
        within a slice of the sleep: a signal does not cut `time.sleep` short)."""
        deadline = time.monotonic() + seconds
        while not self.requested and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, self.SLICE_S))
        return not self.requested


def _say(text: str) -> None:
    """Write to stdout from a signal handler: straight to the descriptor, as
    `print` would fail re-entering the buffer the interrupted code may be writing."""
    # stdout closed (None, or no descriptor) or a pipe nobody reads: nothing to tell.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.write(sys.stdout.fileno(), text.encode())


def run_locally(run_once: Callable[[int], None], interval: timedelta, polls: int, stopper: Stopper) -> int:
    """Call `run_once(n)` every interval until `polls` are done (0: until
    stopped). Returns how many polls ran."""
    done = 0
    while not stopper.requested and (polls == 0 or done < polls):
        started = time.monotonic()
        stopper.polling = True
        try:
            run_once(done)
        finally:
            stopper.polling = False
        done += 1
        if polls and done >= polls:
            break
        if not stopper.wait(interval.total_seconds() - (time.monotonic() - started)):
            break
    return done

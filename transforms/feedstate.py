"""Feed state between polls: validators, back-off, disabling (plain functions).

DIR/_state/feeds.json remembers per feed its ETag and Last-Modified (for a
conditional GET), the hash of its last body (an unchanged body is not parsed
again), its last status, consecutive failures, when it may be polled next
and why (its own pace, learned from its entries' dates, or its publisher's
<ttl>) and whether it is disabled. The file is replaced atomically (written aside,
then renamed): a crash leaves the old state or the new one, never half.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from apache_beam.io.filesystems import FileSystems

from schemas.layout import FEED_STATE, run_stamp
from schemas.records import FeedState
from schemas.settings import FeedSettings

from .quarantine import is_regular_file

_LOG = logging.getLogger(__name__)
# Statuses after which a feed is polled again soon (its own pace), not backed off.
HEALTHY = ("ok", "not-modified", "unchanged")
# Longer than any back-off cap; what a feed may ask for before the cap applies.
_LONGEST_MINUTES = 366 * 1440
# Entries dated this far ahead are a feed's clock or time zone, not the future.
_CLOCK_SLACK = timedelta(hours=24)
_PERIOD_MINUTES = {"hourly": 60, "daily": 1440, "weekly": 10080, "monthly": 43200, "yearly": 525600}


def body_hash(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def is_due(state: FeedState, now: datetime) -> bool:
    return state.next_poll_at is None or state.next_poll_at <= now


def publisher_interval(ttl: str | None, update_period: str | None,
                       update_frequency: str | None) -> timedelta | None:
    """How long the feed asks readers to wait: <ttl> minutes, or
    sy:updatePeriod / sy:updateFrequency (e.g. hourly, 2 -> 30 minutes)."""
    minutes = []
    if _whole_number(ttl) is not None:
        minutes.append(_whole_number(ttl))
    period = _PERIOD_MINUTES.get((update_period or "").strip().lower())
    if period:
        minutes.append(period / max(1, _whole_number(update_frequency) or 1))
    return timedelta(minutes=min(max(minutes), _LONGEST_MINUTES)) if minutes else None


def _whole_number(text) -> int | None:
    """A feed's ASCII whole number, at most _LONGEST_MINUTES (feeds write
    anything here, including Unicode digits and thousands of them)."""
    text = str(text or "").strip()
    if not (text.isascii() and text.isdigit()):
        return None
    return min(int(text), _LONGEST_MINUTES) if len(text) <= 9 else _LONGEST_MINUTES


class PollInterval(NamedTuple):
    seconds: float
    reason: str  # why, in words, for the state file and the report
    # The pace it was learned from: this many entries since this time.
    entries: int | None = None
    since: datetime | None = None


def next_interval(state: FeedState, changed: bool, dates: list[datetime], now: datetime,
                  settings: FeedSettings) -> PollInterval | None:
    """How long the feed waits for its next poll (None: adaptive polling is off).

    A feed read anew with dated entries sets its pace from them; one that did
    not change keeps the pace it had, counted up to now (so a quiet night
    lengthens the wait gradually, never past what its pace allows); a feed
    that dates nothing waits less after a change and more after none."""
    if not settings.max_interval_hours:
        return None
    if changed and dates:
        recent = sorted((date for date in dates if date <= now + _CLOCK_SLACK), reverse=True)
        recent = recent[:settings.rate_entries]
        if recent:
            return _paced(len(recent), recent[-1], now, settings)
    if not changed and state.paced_entries and state.paced_since:
        return _paced(state.paced_entries, state.paced_since, now, settings)
    last = max(state.interval_s or 0, settings.min_interval_minutes * 60, 60.0)
    if changed:
        return _bounded(last / 2, settings, "no dated entries; the feed changed: sooner")
    return _bounded(last * 1.5, settings, "nothing new since the last poll: later")


def _paced(entries: int, since: datetime, now: datetime, settings: FeedSettings) -> PollInterval:
    """`entries` published from `since` to now: one poll per 1/polls_per_item of their gap."""
    span = max((now - since).total_seconds(), 60.0)
    every = span / entries
    interval = _bounded(every / settings.polls_per_item, settings,
                        f"{entries} entries in {_duration(span)}: one every {_duration(every)}")
    return interval._replace(entries=entries, since=since)


def _bounded(seconds: float, settings: FeedSettings, reason: str) -> PollInterval:
    floor, ceiling = settings.min_interval_minutes * 60, settings.max_interval_hours * 3600
    if seconds < floor:
        return PollInterval(floor, f"{reason} (at least {_duration(floor)})")
    if seconds > ceiling:
        return PollInterval(ceiling, f"{reason} (at most {_duration(ceiling)})")
    return PollInterval(seconds, reason)


def _duration(seconds: float) -> str:
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# Feeds by their next wait, for the run summary and the report: (at most, label).
INTERVAL_BUCKETS = ((15 * 60, "15min"), (3600, "1h"), (6 * 3600, "6h"), (24 * 3600, "24h"))


def interval_bucket(state: FeedState) -> str:
    """The bucket of the wait between the feed's last poll and its next ("every-run": none)."""
    if not (state.next_poll_at and state.last_polled_at):
        return "every-run"
    wait = (state.next_poll_at - state.last_polled_at).total_seconds()
    return next((label for most, label in INTERVAL_BUCKETS if wait <= most), "longer")


def after_success(state: FeedState, status: str, now: datetime, settings: FeedSettings,
                  etag: str | None = None, last_modified: str | None = None,
                  hash_of_body: str | None = None, wait: timedelta | None = None,
                  interval: PollInterval | None = None) -> FeedState:
    """The state after a poll that worked (new content, 304, or the same body).

    The next poll waits `interval` (the feed's own pace, when adaptive
    polling is on), never less than the publisher's `wait` (<ttl>,
    sy:updatePeriod). A 304 or an unchanged body says nothing new about the
    feed's <ttl>, so the interval it asked for last time still holds."""
    if wait is None and status != "ok" and state.min_interval_s:
        wait = timedelta(seconds=state.min_interval_s)
    wait = _capped(wait.total_seconds(), settings) if wait else None
    poll_in, reason = (timedelta(seconds=interval.seconds), interval.reason) if interval else (None, None)
    if wait and (poll_in is None or wait > poll_in):
        poll_in, reason = wait, f"the publisher asks for {_duration(wait.total_seconds())} (<ttl>)"
    return replace(state, etag=etag or state.etag, last_modified=last_modified or state.last_modified,
                   body_hash=hash_of_body or state.body_hash, last_status=status, last_polled_at=now,
                   failures=0, disabled=False, last_error=None,
                   min_interval_s=wait.total_seconds() if wait else None,
                   interval_s=interval.seconds if interval else None, interval_reason=reason,
                   paced_entries=interval.entries if interval else None,
                   paced_since=interval.since if interval else None,
                   next_poll_at=now + poll_in if poll_in else None)


def after_failure(state: FeedState, error_type: str, message: str, now: datetime,
                  settings: FeedSettings, retry_after_s: float | None = None) -> FeedState:
    """The state after a failed poll: exponential back-off (at least the
    server's Retry-After), capped; disabled after too many failures in a row."""
    failures = state.failures + 1
    seconds = settings.backoff_base_minutes * 60 * 2.0 ** min(failures - 1, 64)
    wait = _capped(max(seconds, retry_after_s or 0), settings)
    return replace(state, last_status=error_type, last_polled_at=now, failures=failures,
                   next_poll_at=now + wait, disabled=failures >= settings.disable_after_failures,
                   last_error=message[:300])


def _capped(seconds: float, settings: FeedSettings) -> timedelta:
    """A wait of at most the back-off cap, whatever a server or feed asked for."""
    return timedelta(seconds=min(seconds, settings.backoff_cap_hours * 3600))


def _encode(state: FeedState) -> dict:
    return {key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in asdict(state).items()}


# What each remembered field must be; anything else means the file was damaged or mis-edited.
_FIELD_TYPES = {"etag": (str, type(None)), "last_modified": (str, type(None)),
                "body_hash": (str, type(None)), "last_status": (str,), "failures": (int,),
                "disabled": (bool,), "last_error": (str, type(None)),
                "min_interval_s": (int, float, type(None)), "interval_s": (int, float, type(None)),
                "interval_reason": (str, type(None)), "paced_entries": (int, type(None)),
                "paced_since": (str, type(None)),
                "last_polled_at": (str, type(None)), "next_poll_at": (str, type(None))}


def _decode(data: dict) -> FeedState:
    fields = {key: value for key, value in data.items() if key in FeedState.__dataclass_fields__}
    for key, value in fields.items():
        wrong_bool = isinstance(value, bool) and bool not in _FIELD_TYPES.get(key, (str,))
        if key in _FIELD_TYPES and (wrong_bool or not isinstance(value, _FIELD_TYPES[key])):
            raise TypeError(f"{fields.get('url')}: {key} is {value!r}")
    for key in ("last_polled_at", "next_poll_at", "paced_since"):
        if fields.get(key):
            fields[key] = datetime.fromisoformat(fields[key]).astimezone(UTC)
    return FeedState(**fields)


class DamagedState(ValueError):
    """The state file exists but cannot be read back."""


def read_states(out_dir: str) -> dict[str, FeedState]:
    """The remembered state of every feed, read only; DamagedState if the file is unreadable."""
    path = FileSystems.join(out_dir, *FEED_STATE)
    if not FileSystems.exists(path):
        return {}
    try:
        if not is_regular_file(path):  # a FIFO would block the read forever
            raise ValueError("not a regular file")
        with FileSystems.open(path) as handle:
            document = json.loads(handle.read().decode("utf-8"))
        return {url: _decode({"url": url, **data}) for url, data in document["feeds"].items()}
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise DamagedState(f"{type(error).__name__}: {str(error)[:100]}") from error


def load_states(out_dir: str) -> dict[str, FeedState]:
    """The remembered state of every feed (empty on a first run).

    A state file that cannot be read back (damaged on disk, edited by hand)
    is set aside with a warning and every feed starts afresh: the cost is one
    unconditional poll each, and earlier articles are still not ingested
    twice (that is the dataset's own fingerprints' job)."""
    path = FileSystems.join(out_dir, *FEED_STATE)
    try:
        return read_states(out_dir)
    except DamagedState as error:
        aside = f"{path}.damaged-{run_stamp(datetime.now(UTC))}"
        FileSystems.rename([path], [aside])
        _LOG.warning("feed state %s is unreadable (%s); moved to %s, every feed is polled afresh",
                     path, error, aside)
        return {}


def save_states(out_dir: str, states: list[FeedState]) -> str:
    """Replace the state file atomically: written aside, then renamed."""
    path = FileSystems.join(out_dir, *FEED_STATE)
    temporary = FileSystems.join(out_dir, FEED_STATE[0], f".feeds-{secrets.token_hex(4)}.json.inprogress")
    document = {"version": 1, "feeds": {state.url: {key: value for key, value in _encode(state).items()
                                                    if key != "url"}
                                        for state in sorted(states, key=lambda state: state.url)}}
    with FileSystems.create(temporary) as handle:
        handle.write(json.dumps(document, indent=1, sort_keys=True).encode("utf-8"))
    if os.path.isabs(temporary):  # a local disk: on it before the rename makes it the state
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
    FileSystems.rename([temporary], [path])
    return path

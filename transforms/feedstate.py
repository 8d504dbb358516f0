"""Feed state between polls: validators, back-off, disabling (plain functions).

DIR/_state/feeds.json remembers per feed its ETag and Last-Modified (for a
conditional GET), the hash of its last body (an unchanged body is not parsed
again), its last status, consecutive failures, when it may be polled next
and whether it is disabled. The file is replaced atomically (written aside,
then renamed): a crash leaves the old state or the new one, never half.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta

from apache_beam.io.filesystems import FileSystems

from schemas.records import FeedState
from schemas.settings import FeedSettings

STATE_FILE = ("_state", "feeds.json")
# Statuses after which a feed is polled again soon (its own pace), not backed off.
HEALTHY = ("ok", "not-modified", "unchanged")
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
    if ttl and str(ttl).strip().isdigit():
        minutes.append(int(str(ttl).strip()))
    period = _PERIOD_MINUTES.get((update_period or "").strip().lower())
    if period:
        frequency = str(update_frequency or "1").strip()
        minutes.append(period / max(1, int(frequency) if frequency.isdigit() else 1))
    return timedelta(minutes=max(minutes)) if minutes else None


def after_success(state: FeedState, status: str, now: datetime, settings: FeedSettings,
                  etag: str | None = None, last_modified: str | None = None,
                  hash_of_body: str | None = None, wait: timedelta | None = None) -> FeedState:
    """The state after a poll that worked (new content, 304, or the same body)."""
    cap = timedelta(hours=settings.backoff_cap_hours)
    return replace(state, etag=etag or state.etag, last_modified=last_modified or state.last_modified,
                   body_hash=hash_of_body or state.body_hash, last_status=status, last_polled_at=now,
                   failures=0, disabled=False, last_error=None,
                   next_poll_at=now + min(wait, cap) if wait else None)


def after_failure(state: FeedState, error_type: str, message: str, now: datetime,
                  settings: FeedSettings, retry_after_s: float | None = None) -> FeedState:
    """The state after a failed poll: exponential back-off (at least the
    server's Retry-After), capped; disabled after too many failures in a row."""
    failures = state.failures + 1
    wait = timedelta(minutes=settings.backoff_base_minutes * 2 ** (failures - 1))
    if retry_after_s:
        wait = max(wait, timedelta(seconds=retry_after_s))
    wait = min(wait, timedelta(hours=settings.backoff_cap_hours))
    return replace(state, last_status=error_type, last_polled_at=now, failures=failures,
                   next_poll_at=now + wait, disabled=failures >= settings.disable_after_failures,
                   last_error=message[:300])


def _encode(state: FeedState) -> dict:
    return {key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in asdict(state).items()}


def _decode(data: dict) -> FeedState:
    fields = {key: value for key, value in data.items() if key in FeedState.__dataclass_fields__}
    for key in ("last_polled_at", "next_poll_at"):
        if fields.get(key):
            fields[key] = datetime.fromisoformat(fields[key]).astimezone(UTC)
    return FeedState(**fields)


def load_states(out_dir: str) -> dict[str, FeedState]:
    """The remembered state of every feed (empty on a first run)."""
    path = FileSystems.join(out_dir, *STATE_FILE)
    if not FileSystems.exists(path):
        return {}
    with FileSystems.open(path) as handle:
        document = json.loads(handle.read().decode("utf-8"))
    return {url: _decode({"url": url, **data}) for url, data in document.get("feeds", {}).items()}


def save_states(out_dir: str, states: list[FeedState]) -> str:
    """Replace the state file atomically: written aside, then renamed."""
    path = FileSystems.join(out_dir, *STATE_FILE)
    temporary = FileSystems.join(out_dir, STATE_FILE[0], f".feeds-{secrets.token_hex(4)}.json.inprogress")
    document = {"version": 1, "feeds": {state.url: {key: value for key, value in _encode(state).items()
                                                    if key != "url"}
                                        for state in sorted(states, key=lambda state: state.url)}}
    with FileSystems.create(temporary) as handle:
        handle.write(json.dumps(document, indent=1, sort_keys=True).encode("utf-8"))
    FileSystems.rename([temporary], [path])
    return path

"""What a failed download is, and whether it is worth another try.

Every failure of the fetch stage, for feeds and pages alike, is a
`FetchError` carrying a short `error_type` for the rejects table. The retry
policy reads only that record and `FetchSettings`, so it needs no network.
"""
from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from schemas.settings import FetchSettings


class FetchError(Exception):
    """A download that failed, classified for the rejects table."""

    def __init__(self, error_type: str, message: str, http_status: int | None = None,
                 retry_after_s: float | None = None):
        super().__init__(message)
        self.error_type = error_type
        self.http_status = http_status
        self.retry_after_s = retry_after_s  # the server's Retry-After, when it sent one


def failure_label(error: FetchError) -> str:
    """A failure's short name for summaries: `http-503`, `timeout`, `parse`, ..."""
    if error.error_type == "http-status" and error.http_status:
        return f"http-{error.http_status}"
    return error.error_type


# Failures that say nothing about the page itself: worth another try later.
_TEMPORARY_TYPES = frozenset({"timeout", "connection", "dns", "io", "internal-error", "robots-unreachable",
                              "host-unavailable"})
_TEMPORARY_STATUSES = frozenset({408, 425, 429})


def retry_wait(error: FetchError, attempt: int, settings: FetchSettings) -> float | None:
    """Seconds to wait before trying again in this run, or None: not worth it
    now (a page's own fault, or a server asking for longer than we wait)."""
    if attempt >= settings.retries:
        return None
    if error.error_type == "connection" or (
            error.error_type == "http-status" and error.http_status in settings.retry_statuses):
        wait = error.retry_after_s
        if wait is None:
            wait = settings.retry_wait_s * 2 ** attempt
        return wait if wait <= settings.max_retry_wait_s else None
    return None


def is_temporary(error_type: str, http_status: int | None) -> bool:
    """Worth trying again at a later poll: the failure says nothing about the page."""
    if error_type == "http-status":
        return http_status is not None and (http_status in _TEMPORARY_STATUSES or http_status >= 500)
    return error_type in _TEMPORARY_TYPES


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²": str.isdigit takes any Unicode digit
        return float(value) if len(value) <= 12 else float("inf")  # longer: "never", whatever the digits
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())

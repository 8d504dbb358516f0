"""The arguments of `news-ingest run` and `stream`, without Beam: `--help`
and the commands that run no pipeline start without importing it (about a
second). pipelines/options.py gives them to Beam's options and checks them.
"""
from __future__ import annotations

import argparse
import os
import re
from dataclasses import replace
from decimal import Decimal

from schemas.settings import PROJECT_URL, ClassifySettings, DedupSettings, FeedSettings, FetchSettings

_DEFAULT_FETCH = FetchSettings()
_DEFAULT_FEEDS = FeedSettings()


class PreflightError(Exception):
    """The run cannot start; the message is shown to the user as is."""


class UsageError(PreflightError):
    """The command line itself is wrong (exit status 2)."""


def add_rules_arguments(parser) -> None:
    """The files that say what an article is about (run, stream, extract)."""
    parser.add_argument(
        "--gazetteer", metavar="FILE",
        help="the actors and their aliases, as schemas/data/gazetteer.yaml (default: that file); "
             "`news-ingest gazetteer --check FILE` says what it changes")
    parser.add_argument(
        "--event-types", metavar="FILE",
        help="the event types and their patterns, as schemas/data/event_types.yaml (default: that file)")
    parser.add_argument(
        "--outlets", metavar="FILE",
        help="outlets' countries and languages by domain, as schemas/data/outlets.yaml: added to "
             "that file, and winning where both name a domain")


def add_workers_argument(parser, help_text: str = "processes that do the pages' CPU work on this machine "
                         "(clean and classify; a run's also sign and compress them) (default: one per "
                         "core, for work big enough to repay starting them; 1: this process alone)") -> None:
    """How many processes do the CPU work (run, stream, extract, reprocess)."""
    parser.add_argument("--workers", type=int, default=None, metavar="N", help=help_text)


def add_discover_arguments(parser) -> None:
    """The fetching options of `discover` (its client is the run's)."""
    parser.add_argument("--allow-private-network", action="store_true", default=False,
                        help="allow loopback, private and link-local addresses (tests, intranets)")
    parser.add_argument("--host-delay", type=float, default=_DEFAULT_FETCH.host_delay_s, metavar="S",
                        help="seconds between request starts to one host "
                             f"(default: {_DEFAULT_FETCH.host_delay_s:g})")
    parser.add_argument("--contact", default=PROJECT_URL, metavar="URL",
                        help="contact URL sent in the User-Agent (default: the project's)")


def add_ingest_arguments(parser) -> None:
    """The options of an ingestion run (Beam's own are added by Beam)."""
    add_rules_arguments(parser)
    add_workers_argument(parser)
    parser.add_argument(
        "--feeds", action="append", default=None, metavar="F",
        help="feed list: an OPML file, a text file of feed URLs (one a line, "
             "# comments) or one feed URL/path; repeat for several")
    parser.add_argument(
        "--out", default="data", metavar="DIR",
        help="dataset folder or gs:// / s3:// prefix (default: data)")
    parser.add_argument(
        "--allow-private-network", action="store_true", default=False,
        help="allow loopback, private and link-local addresses (tests, intranets)")
    parser.add_argument(
        "--concurrency", type=int, default=_DEFAULT_FETCH.concurrency, metavar="N",
        help=f"parallel downloads per worker (default: {_DEFAULT_FETCH.concurrency})")
    parser.add_argument(
        "--connect-timeout", type=float, default=_DEFAULT_FETCH.connect_timeout_s,
        metavar="S", help=f"seconds to connect (default: {_DEFAULT_FETCH.connect_timeout_s:g})")
    parser.add_argument(
        "--read-timeout", type=float, default=_DEFAULT_FETCH.read_timeout_s, metavar="S",
        help=f"seconds of silence while reading (default: {_DEFAULT_FETCH.read_timeout_s:g})")
    parser.add_argument(
        "--total-timeout", type=float, default=_DEFAULT_FETCH.total_timeout_s, metavar="S",
        help="seconds one response may take in all, redirects included "
             f"(default: {_DEFAULT_FETCH.total_timeout_s:g})")
    parser.add_argument(
        "--max-page-bytes", type=byte_size, default=_DEFAULT_FETCH.max_page_bytes, metavar="SIZE",
        help="largest page accepted, in bytes or with a unit: 500k, 5MB, 5MiB "
             f"(default: {_DEFAULT_FETCH.max_page_bytes})")
    parser.add_argument(
        "--per-host", type=int, default=_DEFAULT_FETCH.per_host_concurrency, metavar="N",
        help=f"parallel requests to one host (default: {_DEFAULT_FETCH.per_host_concurrency})")
    parser.add_argument(
        "--host-delay", type=float, default=_DEFAULT_FETCH.host_delay_s, metavar="S",
        help=f"seconds between request starts to one host (default: {_DEFAULT_FETCH.host_delay_s:g})")
    parser.add_argument(
        "--pause-host-after", type=int, default=_DEFAULT_FETCH.host_failures_to_pause, metavar="N",
        help="a host failing N requests in a row gets no more in the run; its pages wait for "
             f"the next poll (default: {_DEFAULT_FETCH.host_failures_to_pause}; 0: never)")
    parser.add_argument(
        "--retries", type=int, default=_DEFAULT_FETCH.retries, metavar="N",
        help="tries again after 429/502/503/504 or a dropped connection, waiting Retry-After "
             f"(at most {_DEFAULT_FETCH.max_retry_wait_s:g} s) or 1 s, 2 s, ... "
             f"(default: {_DEFAULT_FETCH.retries})")
    parser.add_argument(
        "--force", action="store_true", default=False,
        help="poll every feed now, whatever its interval or back-off (feeds wait after failures)")
    parser.add_argument(
        "--dedup-days", type=int, default=DedupSettings().lookback_days, metavar="N",
        help="how many days of stored articles later copies are compared with "
             f"(default: {DedupSettings().lookback_days}; 0: all); URLs are remembered for good")
    parser.add_argument(
        "--min-interval", default=f"{_DEFAULT_FEEDS.min_interval_minutes:g}m", metavar="DURATION",
        help="adaptive polling: the shortest wait between two polls of a feed "
             f"(default: {_DEFAULT_FEEDS.min_interval_minutes:g}m)")
    parser.add_argument(
        "--max-interval", default=f"{_DEFAULT_FEEDS.max_interval_hours:g}h", metavar="DURATION",
        help="adaptive polling: the longest wait, whatever a feed's pace (default: "
             f"{_DEFAULT_FEEDS.max_interval_hours:g}h; 0: no adaptive polling, every feed on every run)")
    parser.add_argument(
        "--compact-every", default="1d", metavar="DURATION",
        help="after a run (or poll), compact the dataset's small files when the last compaction "
             "is this old: 12h, 1d, 7d (default: 1d; 0: never, e.g. when `news-ingest compact` "
             "is scheduled separately)")
    parser.add_argument(
        "--archive", dest="archive", action="store_const", const=True, default=None,
        help="keep every fetched page as it came, in WARC files under DIR/raw/, so `news-ingest "
             "reprocess --what text` can clean it again (default: on for a new dataset and one "
             "that has DIR/raw/, off for one an older version wrote without it)")
    parser.add_argument(
        "--no-archive", dest="archive", action="store_const", const=False,
        help="keep no raw pages (30 kB of disk a page less; `reprocess --what text` has nothing to read)")
    parser.add_argument(
        "--contact", default=PROJECT_URL, metavar="URL",
        help="contact URL or e-mail sent in the User-Agent (default: the project URL)")


_SIZE = re.compile(r"(\d{1,15}(?:\.\d{1,9})?)\s*(?:([kmg])(i?))?b?", re.IGNORECASE)


def byte_size(text: str) -> int:
    """A size given as bytes or with a unit: 5000000, 500k, 5MB, 5MiB, 1.5G
    (k, M, G: powers of 1000; with i, of 1024). For argparse: a bad value
    is its usage error."""
    match = _SIZE.fullmatch(text.strip())
    size = None
    if match:
        number, unit, binary = match.groups()
        size = Decimal(number) * (1024 if binary else 1000) ** " KMG".index((unit or " ").upper())
    if size is None or size != size.to_integral_value():
        raise argparse.ArgumentTypeError(f"not a size in whole bytes: {text[:40]!r} "
                                         "(e.g. 5000000, 500k, 5MB, 5MiB)")
    return int(size)


def writable_file(path: str | None, option: str) -> None:
    """PreflightError unless `path` (when given) can be written: found out
    before a run changes anything, not after."""
    if not path:
        return
    try:
        existed = os.path.lexists(path)
        with open(path, "a", encoding="utf-8"):
            pass
        if not existed:  # only the check made it: no empty file left should the command fail
            os.remove(path)
    except OSError as error:
        raise PreflightError(f"cannot write {option} {path}: {error.strerror or error}") from None


def worker_count(given: int | None, here: bool = True) -> int:
    """Processes to clean and classify in: `--workers` as given, else one
    per core. `here`: the work is done in this process (no runner with
    worker processes of its own -- Dataflow, Flink, Beam's multi_processing
    mode -- which run the DoFns there: 1, and no --workers above it)."""
    from transforms.workers import cores

    if given is not None and given < 1:
        raise UsageError(f"--workers must be 1 or more, not {given}")
    if not here:
        if given is not None and given > 1:
            raise UsageError("--workers is for work on this machine; give the runner's own option "
                             "(Dataflow: --max_num_workers, Beam's multi_processing: --direct_num_workers)")
        return 1
    return given if given is not None else cores()


def classify_settings(options) -> ClassifySettings:
    """The bundled gazetteer and event types, or the user's files, checked
    (PreflightError naming the file and line). Imported here, not above:
    the tagging code is not needed for --help."""
    from transforms.rulefiles import EVENT_TYPES, GAZETTEER, OUTLETS, RulesError, read_rules

    try:
        return replace(
            ClassifySettings(),
            gazetteer=read_rules(options.gazetteer, GAZETTEER) if options.gazetteer else None,
            event_types=read_rules(options.event_types, EVENT_TYPES) if options.event_types else None,
            outlets=read_rules(options.outlets, OUTLETS) if options.outlets else None)
    except RulesError as error:
        raise PreflightError(str(error)) from error

"""Command-line options of `news-ingest run` and `stream`, and the checks
made before a pipeline is built (a bad feed list, interval or output folder
fails fast, in one line).
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
from dataclasses import replace
from datetime import date, timedelta
from urllib.parse import urlsplit

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import (
    DirectOptions,
    PipelineOptions,
    PortableOptions,
    StandardOptions,
)

from schemas.layout import RAW, STATE, TABLES, delete_files, holds_files, matching_files
from schemas.settings import VERSION, DedupSettings, FeedSettings, FetchSettings, Settings
from transforms.feedlist import read_feed_list

from .arguments import PreflightError, UsageError, add_ingest_arguments, classify_settings

_DEFAULT_FETCH = FetchSettings()


class IngestOptions(PipelineOptions):
    """Options of an ingestion run; any Beam option may be given beside them."""

    @classmethod
    def _add_argparse_args(cls, parser):
        add_ingest_arguments(parser)


def settings_from(options: IngestOptions) -> Settings:
    """Stage settings from parsed options; the rest keep their defaults."""
    for name in ("concurrency", "connect_timeout", "read_timeout", "total_timeout", "max_page_bytes",
                 "per_host"):
        if getattr(options, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive")
    for name in ("host_delay", "retries", "pause_host_after"):
        if getattr(options, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be 0 or more")
    fetch = replace(
        _DEFAULT_FETCH,
        concurrency=options.concurrency,
        connect_timeout_s=options.connect_timeout,
        read_timeout_s=options.read_timeout,
        total_timeout_s=max(options.total_timeout, options.read_timeout),
        max_page_bytes=options.max_page_bytes,
        per_host_concurrency=options.per_host,
        host_delay_s=options.host_delay,
        retries=options.retries,
        host_failures_to_pause=options.pause_host_after or 10**9,
        allow_private_network=options.allow_private_network,
        user_agent=f"news-ingest/{VERSION} (+{options.contact})")
    if options.dedup_days < 0:
        raise UsageError("--dedup-days must be 0 or more")
    return Settings(fetch=fetch, dedup=replace(DedupSettings(), lookback_days=options.dedup_days),
                    feeds=feed_settings(options), classify=classify_settings(options))


def feed_settings(options) -> FeedSettings:
    """--force and the adaptive polling bounds (--min-interval, --max-interval)."""
    shortest = _seconds_or_zero(options.min_interval, "--min-interval")
    longest = _seconds_or_zero(options.max_interval, "--max-interval")
    if longest > _LONGEST_INTERVAL.total_seconds() or shortest > _LONGEST_INTERVAL.total_seconds():
        raise UsageError(f"--min-interval and --max-interval are at most {_LONGEST_INTERVAL.days} days")
    if longest and longest < shortest:
        raise UsageError(f"--max-interval {options.max_interval} is shorter than --min-interval "
                         f"{options.min_interval}")
    return replace(FeedSettings(), force=options.force, min_interval_minutes=shortest / 60,
                   max_interval_hours=longest / 3600)



def check_beam_options(options: PipelineOptions, command: str) -> None:
    """UsageError, in one line, for a flag neither this program nor Beam
    knows, or a Beam option Beam refuses (Beam's own parser would print its
    whole usage, some 140 lines, and exit)."""
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            known = options.get_all_options()
    except SystemExit:
        lines = [line for line in said.getvalue().splitlines() if line.strip()]
        reason = lines[-1].split("error: ", 1)[-1] if lines else "an Apache Beam option is not valid"
        raise UsageError(f"{reason} (an Apache Beam option)") from None
    everything = options.get_all_options(retain_unknown_options=True)
    unknown = sorted(f"--{name}" for name in everything.keys() - known.keys())
    if unknown:
        raise UsageError(f"unknown option {unknown[0]} (see news-ingest {command} --help)")


def use_local_runner(options: PipelineOptions) -> None:
    """Run the DirectRunner's in-process engine (FnApiRunner) directly.

    The DirectRunner first tries to download the Prism runner binary, which
    can stall a scheduled run on a machine without internet.
    """
    standard = options.view_as(StandardOptions)
    if standard.runner in (None, "DirectRunner"):
        standard.runner = "FnApiRunner"


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


# A feed polled less often than this is better served by a scheduled `run`.
_LONGEST_INTERVAL = timedelta(days=7)


def _seconds(text: str, option: str) -> float:
    spec = text.strip().lower()
    parts = _DURATION_PART.findall(spec)
    if not parts or "".join(number + unit for number, unit in parts) != spec:
        raise UsageError(f"{option} {text!r} is not a duration like 30s, 5m, 1h or 1h30m")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _seconds_or_zero(text: str, option: str) -> float:
    """A duration, where a bare 0 needs no unit."""
    return 0.0 if re.fullmatch(r"0+(\.0*)?[smhd]?", text.strip().lower()) else _seconds(text, option)


def parse_compact_every(text: str) -> timedelta | None:
    """--compact-every: a duration, or None for 0 (never)."""
    seconds = _seconds_or_zero(text, "--compact-every")
    return timedelta(seconds=seconds) if seconds else None


def given_out(out: str) -> str:
    """`--out` as given, unless it is empty (an unset `$OUT` in a crontab):
    that is an error, never the working folder."""
    if not out.strip():
        raise UsageError("--out is empty: give the dataset folder (an unset variable in a crontab?)")
    return out


def existing_dataset(out: str) -> str:
    """A dataset folder that must exist already (maintenance commands)."""
    given_out(out)
    parts = (STATE, *TABLES)
    if not urlsplit(out).scheme or len(urlsplit(out).scheme) == 1:
        out = os.path.abspath(out)
        if not os.path.isdir(out):
            raise PreflightError(f"--out {out} is not a folder")
        found = any(os.path.isdir(os.path.join(out, part)) for part in parts)
    else:
        found = any(matching_files(out, part, "**") for part in parts)
    if not found:
        raise PreflightError(f"--out {out} is not a news-ingest dataset (no _state or tables in it)")
    return out


def parse_interval(text: str) -> timedelta:
    """'30s', '5m', '1h', '1h30m' -> a timedelta of at least one second."""
    seconds = _seconds(text, "--interval")
    if seconds < 1:
        raise UsageError(f"--interval {text!r} is shorter than one second")
    if seconds > _LONGEST_INTERVAL.total_seconds():
        raise UsageError(f"--interval {text!r} is longer than {_LONGEST_INTERVAL.days} days; "
                         f"schedule `news-ingest run` instead")
    return timedelta(seconds=seconds)


def runs_in_process(options: PipelineOptions) -> bool:
    """True when the pipeline executes inside this process (the local
    runners, or the portable job API served in process with
    --job_endpoint=embed): such runners run a stream with batch semantics."""
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    if runner in ("DirectRunner", "FnApiRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner"):
        return True
    return runner == "PortableRunner" and options.view_as(PortableOptions).job_endpoint == "embed"


def parse_day(text: str | None, option: str) -> date | None:
    """A YYYY-MM-DD day of a command-line option, or None when not given."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a day (YYYY-MM-DD)") from None


def runs_dofns_here(options: PipelineOptions) -> bool:
    """Whether the DoFns run in this process, where our worker processes
    can take their work: the local runners, not in Beam's multi_processing
    mode (PortableRunner's embedded job server runs them in its SDK
    environment, Docker or a process of its own)."""
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    return runner != "PortableRunner" and counts_in_process(options)


def counts_in_process(options: PipelineOptions) -> bool:
    """True when the pipeline's work, and so its counting, happens in this
    process: an in-process runner not fanning out to worker processes."""
    return (runs_in_process(options)
            and options.view_as(DirectOptions).direct_running_mode != "multi_processing")


def feed_urls(specs: list[str] | None) -> list[str]:
    """All feed URLs of the given feed lists, in order, each once."""
    if not specs:
        raise UsageError("--feeds is required (an OPML file, a text list or a feed URL)")
    urls: list[str] = []
    for spec in specs:
        try:
            urls.extend(read_feed_list(spec))
        except ValueError as error:
            raise PreflightError(str(error)) from error
    return list(dict.fromkeys(urls))


def with_archive_choice(settings: Settings, given: bool | None, out: str) -> Settings:
    """`--archive`/`--no-archive` as given; else on, unless the dataset has
    articles but no raw archive (an older version's): it stays as it was."""
    archive = given
    if archive is None:
        archive = (holds_files(FileSystems.join(out, RAW))
                   or not holds_files(FileSystems.join(out, "articles")))
    return replace(settings, write=replace(settings.write, archive=archive))


def output_dir(out: str) -> str:
    """The output location, absolute if local, after proving it is writable.
    An empty one is an error (see `given_out`)."""
    given_out(out)
    if not urlsplit(out).scheme or len(urlsplit(out).scheme) == 1:  # a local path
        out = os.path.abspath(out)
        if os.path.exists(out) and not os.path.isdir(out):
            raise PreflightError(f"--out {out} exists and is not a folder")
    probe = FileSystems.join(out, STATE, f".probe-{secrets.token_hex(4)}")
    try:
        with FileSystems.create(probe) as handle:
            handle.write(b"ok")
        delete_files([probe])
    except Exception as error:  # any file system's failure means: not writable
        with contextlib.suppress(Exception):  # a full disk may still have made it: not left behind
            delete_files([probe])
        raise PreflightError(f"cannot write to --out {out}: {error}") from error
    return out

"""`news-ingest`: the command line.

    news-ingest run --feeds F [--feeds F2 ...] --out DIR [beam options]
    news-ingest stream --feeds F --out DIR --interval 15m [--polls N] [beam options]
    news-ingest extract PAGE.html [PAGE2.html ...] [--url URL]
    news-ingest report [--out DIR] [--since DATE] [--until DATE]
    news-ingest compact [--out DIR] [--before DATE]
    news-ingest memory [--out DIR] [--rebuild]
    news-ingest verify [--out DIR] [--repair]
    news-ingest reprocess [--out DIR] [--what tags|text] [--since DATE] [--until DATE] [--redo-dedup]
    news-ingest discover URL [URL ...] [--opml FILE]

argparse (stdlib) because Beam's own options are argparse too: `run` and
`stream` parse their options with `parse_known_args` and hand the rest to
Beam, which checks them. Beam-dependent modules are imported inside the
commands that build a pipeline: `--help`, `--version` and `extract` never
import Beam (a second saved), and logging is filtered before Beam's
import-time warnings fire.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from pathlib import Path

from .arguments import (
    PreflightError,
    UsageError,
    add_discover_arguments,
    add_ingest_arguments,
    add_rules_arguments,
    add_workers_argument,
    classify_settings,
    worker_count,
    writable_file,
)
from .drivers import (
    Terminated,
    anything_due,
    compact_if_due,
    interrupted,
    pipeline_failure,
    run_batch,
    stream_locally,
    stream_on_runner,
    worker_pool,
)
from .exits import EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_NO_FEED, EXIT_USAGE, fail, stdout_gone


class _DropNoise(logging.Filter):
    """Beam's import-time warning about optional Google Cloud clients is not
    the user's concern on a local run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


# Libraries whose logs are about single odd pages or Beam's internals: the
# summary and the rejects table say what matters. -v shows their warnings, -vv all.
_NOISY_LOGGERS = ("trafilatura", "htmldate", "courlan", "charset_normalizer", "apache_beam")


def _configure_logging(verbosity: int) -> None:
    """-q: errors only; default: our warnings; -v: our progress and info, the
    libraries' and Beam's warnings (and a failed pipeline's traceback); -vv: everything."""
    root_level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.WARNING}.get(verbosity, logging.INFO)
    # force: importing Beam may already have configured the root logger.
    logging.basicConfig(level=root_level, format="%(levelname)s %(name)s: %(message)s", force=True)
    for name in ("pipelines", "transforms"):
        logging.getLogger(name).setLevel(logging.INFO if verbosity >= 1 else logging.NOTSET)
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(
            logging.CRITICAL if verbosity <= 0 else logging.WARNING if verbosity == 1 else logging.NOTSET)


def _preflight(args: argparse.Namespace, beam_args: list[str]):
    """Beam options, feed URLs, settings and output folder, or a PreflightError."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from .options import (
        check_beam_options,
        feed_urls,
        output_dir,
        parse_compact_every,
        runs_dofns_here,
        settings_from,
        with_archive_choice,
    )

    parse_compact_every(args.compact_every)
    writable_file(getattr(args, "summary_json", None), "--summary-json")
    options = PipelineOptions(beam_args)
    check_beam_options(options, args.command)
    workers = worker_count(args.workers, runs_dofns_here(options))
    urls, settings, out = feed_urls(args.feeds), settings_from(args), output_dir(args.out)
    return options, urls, with_archive_choice(settings, args.archive, out), out, workers


def _preflight_failure(error: Exception) -> int:
    return fail(str(error), EXIT_USAGE if isinstance(error, UsageError) else 1)


def cmd_run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from transforms.quarantine import quarantined_files

    from .lock import LockedError, RunLock, held_by_another
    from .options import use_local_runner

    try:
        options, urls, settings, out, workers = _preflight(args, beam_args)
    except PreflightError as error:
        return _preflight_failure(error)
    use_local_runner(options)
    terminated, quarantined = Terminated(), quarantined_files(out)
    try:  # the workers start before the lock is taken (they must not share it), when a feed is due
        with (terminated, worker_pool(workers, settings,
                                      anything_due(out, urls, settings) and not held_by_another(out)),
              RunLock(out)):  # its start may quarantine a damaged commit list
            summary = run_batch(options, urls, out, settings, args.verbosity, quarantined)
            compact_if_due(out, args, settings)
    except LockedError as error:
        return fail(str(error), EXIT_LOCKED)
    except (KeyboardInterrupt, Exception) as error:
        if interrupted(error):
            return fail(f"{'stopped by SIGTERM' if terminated.received else 'interrupted'}; files it "
                        "finished are kept, its other items are polled again next time",
                        128 + signal.SIGTERM if terminated.received else EXIT_INTERRUPTED)
        return fail(pipeline_failure(error, "run", out))  # the pipeline itself broke: one line
    print(summary.line() if args.verbosity < 0 else summary.format())
    if args.summary_json:
        with open(args.summary_json, "w", encoding="utf-8") as handle:
            json.dump(summary.as_dict(), handle, indent=2)
    if summary.no_feed_polled():
        return fail("no feed could be polled: every feed failed (the summary says why)", EXIT_NO_FEED)
    return 0


def cmd_stream(args: argparse.Namespace, beam_args: list[str]) -> int:
    from .lock import LockedError
    from .options import parse_interval, runs_in_process, use_local_runner

    try:
        interval = parse_interval(args.interval)
        if args.polls < 0:
            raise UsageError("--polls must be 0 (until stopped) or more")
        if args.force:
            raise UsageError("--force is for `run`: a stream polls each feed at its own pace "
                             "(run `news-ingest run --force` once to poll every feed now)")
        options, urls, settings, out, workers = _preflight(args, beam_args)
        if args.detach and runs_in_process(options):
            raise UsageError("--detach needs a runner outside this process (DataflowRunner, "
                             "FlinkRunner, or PortableRunner with a --job_endpoint host:port)")
    except PreflightError as error:
        return _preflight_failure(error)
    use_local_runner(options)
    try:
        if runs_in_process(options):
            return stream_locally(options, urls, out, settings, interval, args, workers)
        return stream_on_runner(options, urls, out, settings, interval, args)
    except LockedError as error:
        return fail(str(error), EXIT_LOCKED)


def cmd_extract(args: argparse.Namespace) -> int:
    from schemas.settings import Settings

    from .extract import extract_pages

    try:
        workers = worker_count(args.workers)
        settings = Settings(classify=classify_settings(args))
    except PreflightError as error:
        return _preflight_failure(error)
    if not args.pages and not args.warc:
        return fail("give saved pages (PAGE ..., or - for standard input) or --warc FILE", EXIT_USAGE)
    return extract_pages(args.pages, args.url, sys.stdin.buffer, sys.stdout, sys.stderr, settings,
                         tuple(args.warc or ()), workers)


def cmd_discover(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from schemas.settings import VERSION, FetchSettings

    from .discover import check_pages, discover_sites, render, write_opml

    try:
        check_pages(args.urls)
        if args.host_delay < 0:
            raise UsageError("--host-delay must be 0 or more")
        writable_file(args.opml, "--opml")
    except UsageError as error:
        return fail(str(error), EXIT_USAGE)
    except PreflightError as error:
        return fail(str(error))
    settings = replace(FetchSettings(), allow_private_network=args.allow_private_network,
                       host_delay_s=args.host_delay, user_agent=f"news-ingest/{VERSION} (+{args.contact})")
    found = discover_sites(args.urls, settings)
    if args.verbosity >= 0:
        print(render(found, args.verbosity > 0))
    feeds = sum(len(site.feeds) for site in found)
    if args.opml and feeds:
        try:
            write_opml(found, args.opml)
        except OSError as error:
            return fail(f"--opml {args.opml}: {error.strerror or error}")
        if args.verbosity >= 0:
            print(f"wrote {args.opml}: run it with `news-ingest run --feeds {args.opml}`")
    if not feeds:
        return fail(f"no feed found from {len(found)} page{'' if len(found) == 1 else 's'}"
                    + (f"; {args.opml} not written" if args.opml else ""), EXIT_NO_FEED)
    return 0


def cmd_gazetteer(args: argparse.Namespace) -> int:
    from transforms.rulefiles import GAZETTEER, RulesError, gazetteer_changes, read_rules

    try:
        text = read_rules(args.check, GAZETTEER)
    except RulesError as error:
        return fail(str(error))
    changes = gazetteer_changes(text)
    print(f"{args.check}: a usable gazetteer; against the bundled one: "
          f"{len(changes) or 'no'} change{'' if len(changes) == 1 else 's'}")
    for change in changes:
        print(f"  {change}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .options import given_out, parse_day
    from .report import LISTED, MOST_LISTED, MOST_TOP, ReportError, build_report, check_writable, write_text
    from .report_html import render as html_text
    from .report_text import json_text
    from .report_text import render as plain_text

    try:
        since, until = parse_day(args.since, "--since"), parse_day(args.until, "--until")
        if since and until and since > until:
            raise UsageError(f"--since {since} is after --until {until}")
        if not 1 <= args.top <= MOST_TOP:
            raise UsageError(f"--top must be between 1 and {MOST_TOP:,}")
        listed = LISTED if args.list is None else args.list
        if not 0 <= listed <= MOST_LISTED:
            raise UsageError(f"--list must be between 0 and {MOST_LISTED:,}")
        if args.html == "-" and args.json == "-":
            raise UsageError("only one of --html and --json can be - (standard output)")
        report = build_report(given_out(args.out), since, until, args.top, listed)
    except UsageError as error:
        return fail(str(error), EXIT_USAGE)
    except ReportError as error:
        return fail(str(error))
    html_path = args.html or str(Path(report.out_dir) / "report.html")
    outputs = [(path, render) for path, render in ((html_path, html_text), (args.json, json_text)) if path]
    to_stdout = any(path == "-" for path, _ in outputs)
    reader_gone = False
    if args.verbosity >= 0 and not to_stdout:
        try:
            print(plain_text(report), flush=True)
        except BrokenPipeError:  # `report | head`: the page is still written
            reader_gone = True
    try:
        for path, _ in outputs:
            if path != "-":
                check_writable(path)
        for path, render in outputs:
            if path == "-":
                sys.stdout.write(render(report))
            else:
                write_text(path, render(report))
    except ReportError as error:
        return fail(f"{error}{'' if args.html else ' (--html FILE writes the page elsewhere)'}")
    except BrokenPipeError:
        raise  # the reader of standard output left: main() stops quietly
    except OSError as error:
        return fail(f"cannot write the report: {error}")
    if reader_gone:
        return stdout_gone()
    if html_path != "-" and not to_stdout:
        print(f"\npage: {html_path}" if args.verbosity >= 0 else html_path)
    return 0


def cmd_reprocess(args: argparse.Namespace, beam_args: list[str]) -> int:
    from apache_beam.options.pipeline_options import PipelineOptions

    from schemas.settings import Settings

    from .jobs import CleanJobs
    from .lock import LockedError, RunLock, held_by_another
    from .options import check_beam_options, existing_dataset, parse_day, runs_dofns_here, use_local_runner
    from .reprocess import MemoryInterrupted, days_to_reprocess, reprocess

    terminated = Terminated()
    try:
        since, until = parse_day(args.since, "--since"), parse_day(args.until, "--until")
        if since and until and since > until:
            raise UsageError(f"--since {since} is after --until {until}")
        options = PipelineOptions(beam_args)
        check_beam_options(options, "reprocess")
        workers = worker_count(args.workers, runs_dofns_here(options))
        settings = Settings(classify=classify_settings(args))
        out = existing_dataset(args.out)
        writable_file(args.summary_json, "--summary-json")
        use_local_runner(options)
        # Cleaning archived pages again is the work to share; the workers start before the lock.
        cleans = args.what == "text" and bool(days_to_reprocess(out, since, until)) \
            and not held_by_another(out)
        with terminated, worker_pool(workers, settings, cleans, CleanJobs), RunLock(out):
            summary = reprocess(options, out, args.what, since, until, settings, args.redo_dedup)
    except PreflightError as error:
        return _preflight_failure(error)
    except LockedError as error:
        return fail(str(error), EXIT_LOCKED)
    except MemoryInterrupted as error:
        return fail(str(error), 128 + signal.SIGTERM if terminated.received else EXIT_INTERRUPTED)
    except (KeyboardInterrupt, Exception) as error:
        if interrupted(error):
            return fail(f"{'stopped by SIGTERM' if terminated.received else 'interrupted'}; the dataset "
                        "is as it was (nothing is published before the end)",
                        128 + signal.SIGTERM if terminated.received else EXIT_INTERRUPTED)
        return fail(pipeline_failure(error, "reprocess", args.out))
    print(summary.line() if args.verbosity < 0 else summary.format())
    if args.summary_json:
        with open(args.summary_json, "w", encoding="utf-8") as handle:
            json.dump(summary.as_dict(), handle, indent=2)
    return 0


def _maintenance(args: argparse.Namespace, work) -> int:
    """Run `work(out)` on an existing local or remote dataset, holding its lock."""
    from .lock import LockedError, RunLock
    from .options import existing_dataset

    try:
        out = existing_dataset(args.out)
        with RunLock(out):
            return work(out)
    except UsageError as error:
        return fail(str(error), EXIT_USAGE)
    except PreflightError as error:
        return fail(str(error))
    except LockedError as error:
        return fail(str(error), EXIT_LOCKED)
    except KeyboardInterrupt:
        return fail("interrupted; the dataset is as it was, or as far as it got (every step is atomic)",
                    EXIT_INTERRUPTED)
    except Exception as error:  # a file that cannot be read or written: one line
        return fail(f"{args.command} failed: {type(error).__name__}: {error}")


def cmd_compact(args: argparse.Namespace) -> int:
    from .compact import compact
    from .options import parse_day

    try:
        before = parse_day(args.before, "--before")
    except UsageError as error:
        return fail(str(error), EXIT_USAGE)

    def work(out: str) -> int:
        summary = compact(out, before)
        print(summary.line())
        for table, (files, after) in summary.per_table.items():
            if files and args.verbosity >= 0:
                print(f"  {table:<11}{files:,} files -> {after:,}")
        if summary.partitions and not summary.swapped_atomically and args.verbosity >= 0:
            print("  (this file system cannot swap folders atomically: readers may have seen "
                  "old and new files together for a moment)")
        for reason in summary.skipped:
            print(f"news-ingest: error: left as it was: {reason}", file=sys.stderr)
        return 1 if summary.skipped else 0

    return _maintenance(args, work)


def cmd_memory(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from schemas.settings import DedupSettings, MemorySettings
    from transforms.memory import manifest_serves, read_manifest

    from .rebuild import memory_status, rebuild_memory

    if args.dedup_days is not None and args.dedup_days < 0:
        return fail("--dedup-days must be 0 or more", EXIT_USAGE)
    settings = MemorySettings()

    def work(out: str) -> int:
        manifest = read_manifest(out)
        if args.rebuild:
            kept = args.dedup_days if args.dedup_days is not None else \
                (manifest or {}).get("texts_days", DedupSettings().lookback_days)
            started = time.monotonic()
            built = rebuild_memory(out, settings, replace(DedupSettings(), lookback_days=kept))
            print(f"memory rebuilt from {built.line()} in {time.monotonic() - started:.1f} s")
            return 0
        if not manifest_serves(manifest, settings, 1):
            raise PreflightError(f"{out} has no dataset memory this version reads; the next run builds "
                                 f"it, or `news-ingest memory --rebuild --out {args.out}`")
        print(memory_status(out))
        return 0

    return _maintenance(args, work)


def cmd_verify(args: argparse.Namespace) -> int:
    """Not `_maintenance`: its lock settles what a crash left, which verify must see first."""
    from .lock import LockedError
    from .options import existing_dataset
    from .verify import verify

    try:
        return verify(existing_dataset(args.out), args.repair, print, details=args.verbosity >= 0)
    except UsageError as error:
        return fail(str(error), EXIT_USAGE)
    except PreflightError as error:
        return fail(str(error))
    except LockedError as error:
        return fail(str(error), EXIT_LOCKED)
    except KeyboardInterrupt:
        return fail("interrupted; verify itself changes nothing, and each step of --repair is atomic",
                    EXIT_INTERRUPTED)
    except Exception as error:  # a file that cannot be listed or written: one line
        return fail(f"verify failed: {type(error).__name__}: {error}")


def _add_verbosity(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """-v/-q before or after the command; `_verbosity` adds the two places up."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="count", default=0,
                       dest="verbose" if top else "verbose_after",
                       help="progress lines even without a terminal, our own logs and a failed "
                            "pipeline's traceback; -vv: Beam's and the libraries' logs too")
    group.add_argument("-q", "--quiet", action="store_true", dest="quiet" if top else "quiet_after",
                       help="no progress, a one-line result, errors only")


def _verbosity(args: argparse.Namespace) -> int:
    """-1 quiet, 0 default, 1 for -v, 2 for -vv (or -v before and after the command)."""
    verbose = args.verbose + getattr(args, "verbose_after", 0)
    quiet = args.quiet or getattr(args, "quiet_after", False)
    if quiet and verbose:
        raise UsageError("-q and -v cannot go together")
    return -1 if quiet else verbose


def _version() -> str:
    """What a bug report needs: ours and the two libraries that shape the output."""
    from importlib.metadata import PackageNotFoundError, version

    from schemas.settings import VERSION

    def of(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    return f"news-ingest {VERSION} (Apache Beam {of('apache-beam')}, trafilatura {of('trafilatura')})"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="news-ingest",
        description="Ingest news feeds: fetch, clean, deduplicate, tag actors, write Parquet.")
    _add_verbosity(parser, top=True)
    parser.add_argument("--version", action="version", version=_version(),
                        help="print the versions of news-ingest, Apache Beam and trafilatura, and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="poll every feed once, ingest what is new, print a summary",
        description="Poll every feed once, ingest what is new and print the run summary. "
                    "Any Apache Beam pipeline option (--runner, --direct_num_workers, "
                    "--direct_running_mode, --project, ...) is passed to Beam.",
        epilog="Exit status: 0 when the run completed (failed feeds and articles are in "
               "DIR/rejects), 1 when it could not run, 2 for bad options, 3 when no feed could be "
               "polled (every feed failed), 75 when another run holds DIR, 130 after Ctrl-C, 143 "
               "after SIGTERM, 141 when the reader of its output left.")
    from schemas.settings import DedupSettings

    add_ingest_arguments(run)
    _add_verbosity(run)
    run.add_argument("--summary-json", metavar="FILE", help="also write the summary as JSON")

    stream = commands.add_parser(
        "stream", help="poll the feeds every interval until stopped, one summary line per poll",
        description="Poll the feeds every --interval and ingest what is new, so new items are "
                    "queryable within two intervals. On this machine each poll is a run of the batch "
                    "pipeline; with --runner DataflowRunner, FlinkRunner or PortableRunner it is one "
                    "streaming Beam pipeline writing a new set of files per window.",
        epilog="Ctrl-C stops after the poll in progress has written (a second Ctrl-C aborts it; "
               "its items are polled again on the next start; SIGTERM does the same). Exit status: 0 "
               "after --polls polls, 130 when stopped with Ctrl-C, 143 with SIGTERM, 1 when it could "
               "not start (or, with --polls, a poll failed), 2 for bad options, 75 when another run "
               "holds DIR, 141 when the reader of its output left.")
    add_ingest_arguments(stream)
    _add_verbosity(stream)
    stream.add_argument("--interval", default="15m", metavar="DURATION",
                        help="time between polls: 30s, 5m, 1h, 1h30m (default: 15m)")
    stream.add_argument("--polls", type=int, default=0, metavar="N",
                        help="stop after N polls (default: 0, until stopped)")
    stream.add_argument("--detach", action="store_true",
                        help="return once a streaming runner has accepted the job, instead of "
                             "waiting for it (flex template launchers, cron-less deployments)")

    extract = commands.add_parser(
        "extract", help="clean and classify saved pages, print one JSON object per page",
        description="Run the clean and classify stages on saved HTML pages and print one "
                    "JSON object per page. '-' reads a page from standard input; --warc reads the "
                    "HTML responses of a WARC file (e.g. Common Crawl's CC-NEWS).",
        epilog="Exit status: 0 when every page gave an article, 1 when one could not be read or "
               "cleaned (each said in one line on stderr), 2 for bad options.")
    extract.add_argument("pages", nargs="*", metavar="PAGE", help="saved HTML page, or -")
    extract.add_argument("--warc", action="append", metavar="FILE",
                         help="a WARC file (.warc or .warc.gz) whose HTML responses are the pages; "
                              "repeat for several")
    extract.add_argument("--url", help="the URL the page(s) came from (for canonical URL and source)")
    add_rules_arguments(extract)
    add_workers_argument(extract)
    _add_verbosity(extract)

    discover = commands.add_parser(
        "discover", help="find a site's feeds and sitemaps from a page, check them, write OPML",
        description="From each page (a site's home page or any other) find the feeds it declares "
                    "(<link rel=\"alternate\">), the Sitemap: lines of its robots.txt and the usual feed "
                    "paths (/feed/, /rss.xml, /atom.xml, /feed.json, news sitemaps, ...), fetch each with "
                    "the run's guarded client and keep those that are real feeds, with how many entries "
                    "they list and how fresh they are. robots.txt is obeyed for the page and the guessed "
                    "paths.",
        epilog="Exit status: 0 when a feed was found, 2 for bad options or URLs, 3 when no page "
               "gave a feed (nothing is written then).")
    discover.add_argument("urls", nargs="+", metavar="URL", help="a page of the site, e.g. its home page")
    discover.add_argument("--opml", metavar="FILE",
                          help="also write the feeds found as an OPML feed list for `run --feeds FILE`")
    add_discover_arguments(discover)
    _add_verbosity(discover)

    compact = commands.add_parser(
        "compact", help="rewrite each partition's many small files as one (rows and ids unchanged)",
        description="Rewrite every partition of more than one file as one file, with the same rows, ids "
                    "and columns, so readers open a few files instead of one per run. A reader never "
                    "sees old and new files together on a local disk (the folder is swapped in one "
                    "atomic step). `run` and `stream` do this once a day by default (--compact-every).",
        epilog="Exit status: 0 when done, 1 when DIR is not a dataset or a file cannot be read or "
               "written, 2 for bad options, 75 when a run holds DIR.")
    compact.add_argument("--out", default="data", metavar="DIR", help="the dataset folder (default: data)")
    compact.add_argument("--before", metavar="DATE",
                         help="only partitions of publication days before DATE, YYYY-MM-DD (default: all)")
    _add_verbosity(compact)

    memory = commands.add_parser(
        "memory", help="what the dataset memory (_state/memory/) holds; --rebuild makes it anew",
        description="The dataset memory is what dedup knows of earlier runs (URL and id fingerprints, "
                    "text hashes, MinHash signatures of the look-back window), kept under "
                    "DIR/_state/memory/ so a run reads only what its new items need. It is derived "
                    "from the tables: --rebuild makes it anew from them (a run does so by itself when "
                    "the memory is missing, e.g. on a dataset of an older version).",
        epilog="Exit status: 0 when done, 1 when DIR is not a dataset or a file cannot be read, 2 for "
               "bad options, 75 when a run holds DIR.")
    memory.add_argument("--out", default="data", metavar="DIR", help="the dataset folder (default: data)")
    memory.add_argument("--rebuild", action="store_true", help="rebuild the memory from the tables")
    memory.add_argument("--dedup-days", type=int, default=None, metavar="N",
                        help="with --rebuild: days of signatures to keep, as `run --dedup-days` (default: "
                             f"as the memory kept, else {DedupSettings().lookback_days}; 0: all)")
    _add_verbosity(memory)

    verify = commands.add_parser(
        "verify", help="check a dataset as fsck checks a disk; --repair does what the next run would",
        description="Read every table file whole and every state file a run reads, and report commits a "
                    "crash interrupted, hidden leftovers, files outside the writer's layout, bad or "
                    "inconsistent partitions, damaged state, duplicates pointing at no stored article and "
                    "URLs stored twice: one line per kind, with a count and examples. Holds the run lock "
                    "and changes nothing.",
        epilog="Exit status: 0 when the dataset is sound, 1 when a problem was found (after --repair: one "
               "is left) or DIR is not a dataset, 2 for bad options, 75 when a run holds DIR.")
    verify.add_argument("--out", default="data", metavar="DIR", help="the dataset folder (default: data)")
    verify.add_argument("--repair", action="store_true",
                        help="then do what the next run would -- roll interrupted commits forward, remove "
                             "hidden leftovers, move unreadable files to _state/quarantine/, rebuild a "
                             "damaged memory -- and check again; rows are never rewritten")
    _add_verbosity(verify)

    report = commands.add_parser(
        "report", help="what the dataset holds: actors per day, sources, languages, duplicates, "
                       "rejects, failing feeds; a page to explore them in DIR/report.html",
        description="Read the dataset with DuckDB and print what it holds: articles per day for the "
                    "top actors, sources, languages, the duplicate rate and largest syndication "
                    "clusters, rejects by stage and error type, failing or disabled feeds. Also writes "
                    "a self-contained page (no network needed to view it): a chart, the newest articles "
                    "with filters by actor, source, language, event type, date and title words, and "
                    "the tables, whose actors and sources filter the list.",
        epilog="Exit status: 0 when the report was written (an empty dataset gives an empty report), "
               "1 when DIR is not a local dataset, 2 for bad options.")
    report.add_argument("--out", default="data", metavar="DIR", help="the dataset folder (default: data)")
    report.add_argument("--since", metavar="DATE", help="first publication day, YYYY-MM-DD (default: all)")
    report.add_argument("--until", metavar="DATE", help="last publication day, YYYY-MM-DD (default: all)")
    report.add_argument("--top", type=int, default=8, metavar="N",
                        help="actors in the chart and the actor tables (default: 8; at most 1000)")
    report.add_argument("--list", type=int, metavar="N",
                        help="newest articles the page lists to filter and search (default: 50000; 0: none)")
    report.add_argument("--html", metavar="FILE",
                        help="where the page goes (default: DIR/report.html; - for standard output)")
    report.add_argument("--json", metavar="FILE",
                        help="also write the report as JSON (- for standard output)")
    _add_verbosity(report)

    reprocess = commands.add_parser(
        "reprocess", help="tag (or clean and tag) the stored articles again with today's gazetteer, "
                          "event types and code; nothing is fetched",
        description="Read the stored articles of the publication days in range and run classification "
                    "again (--what tags: actors, primary actor, mentions, event types, language) with "
                    "the current gazetteer and event types, or also clean each page again from the raw "
                    "archive (--what text). Each day where an article changed has its articles and "
                    "mentions files rewritten; all are published in one commit, so a crash leaves the old "
                    "files or the new ones. Article ids stay; an article whose primary actor changed "
                    "moves to its new actor folder; changed rows get reprocessed_at and code_version. "
                    "A Beam pipeline: Beam options (--runner, --direct_num_workers, ...) are passed on.",
        epilog="Exit status: 0 when done, 1 when DIR is not a dataset or the pipeline failed (nothing "
               "changed then), 2 for bad options, 75 when a run holds DIR, 130 after Ctrl-C, 143 after "
               "SIGTERM.")
    reprocess.add_argument("--out", default="data", metavar="DIR", help="the dataset folder (default: data)")
    reprocess.add_argument("--what", choices=("tags", "text"), default="tags",
                           help="tags: classify the stored text again (default); text: clean each page "
                                "again from the raw archive, then classify")
    reprocess.add_argument("--since", metavar="DATE", help="first publication day, YYYY-MM-DD (default: all)")
    reprocess.add_argument("--until", metavar="DATE", help="last publication day, YYYY-MM-DD (default: all)")
    reprocess.add_argument("--redo-dedup", action="store_true",
                           help="then compare the articles of the days reprocessed again: one that is now an "
                                "exact or near copy of another fetched within the runs' look-back moves to "
                                "duplicates (default: ingestion's decisions stay)")
    reprocess.add_argument("--summary-json", metavar="FILE", help="also write the summary as JSON")
    add_workers_argument(reprocess, "processes that clean the archived pages again with --what text "
                                    "(default: one per core; 1: this process alone)")
    add_rules_arguments(reprocess)
    _add_verbosity(reprocess)

    gazetteer = commands.add_parser(
        "gazetteer", help="check a gazetteer file and say what it changes against the bundled one",
        description="Check a gazetteer (the actors and their aliases, as schemas/data/gazetteer.yaml) "
                    "before `run --gazetteer FILE` uses it: every mistake is named with its line. Then "
                    "list the actors and aliases it adds or removes against the bundled one.",
        epilog="Exit status: 0 when the file is usable, 1 when it is not, 2 for bad options.")
    gazetteer.add_argument("--check", required=True, metavar="FILE", help="the gazetteer to check")
    _add_verbosity(gazetteer)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        code = _command(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()  # a reader that left shows here, not in Python's own flush at exit
        return code
    except BrokenPipeError:  # what was done is kept: only its printing was cut short
        return stdout_gone()


def _command(argv: list[str]) -> int:
    logging.getLogger().addFilter(_DropNoise())  # before anything imports Beam
    try:
        parser = _parser()
        args, rest = parser.parse_known_args(argv)

        try:
            args.verbosity = _verbosity(args)
        except UsageError as error:
            return fail(str(error), EXIT_USAGE)
        _configure_logging(args.verbosity)
        if args.command == "run":
            return cmd_run(args, rest)
        if args.command == "stream":
            return cmd_stream(args, rest)
        if args.command == "reprocess":
            return cmd_reprocess(args, rest)
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        if args.command == "report":
            return cmd_report(args)
        if args.command == "compact":
            return cmd_compact(args)
        if args.command == "memory":
            return cmd_memory(args)
        if args.command == "verify":
            return cmd_verify(args)
        if args.command == "gazetteer":
            return cmd_gazetteer(args)
        if args.command == "discover":
            return cmd_discover(args)
        return cmd_extract(args)
    except KeyboardInterrupt:  # before a command's own handling began: nothing was written
        return fail("interrupted", EXIT_INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())

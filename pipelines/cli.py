"""`news-ingest`: the command line.

    news-ingest run --feeds F [--feeds F2 ...] --out DIR [beam options]
    news-ingest extract PAGE.html [PAGE2.html ...] [--url URL]

argparse (stdlib) because Beam's own options are argparse too: `run` parses
its options with `parse_known_args` and hands the rest to Beam, which checks
them. Beam-dependent modules are imported inside functions so logging
is filtered before Beam's import-time warnings fire.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time

EXIT_USAGE = 2
# Another run holds the output folder: try again later (sysexits EX_TEMPFAIL).
EXIT_LOCKED = 75


class _DropNoise(logging.Filter):
    """Beam's import-time warning about optional Google Cloud clients is not
    the user's concern on a local run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


def _quiet_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        # Extraction libraries log every odd page at WARNING; rejects record what matters.
        for name in ("trafilatura", "htmldate", "courlan", "charset_normalizer"):
            logging.getLogger(name).setLevel(logging.ERROR)
        # A failing pipeline is reported in one line by `run`; -v shows Beam's traceback.
        logging.getLogger("apache_beam").setLevel(logging.CRITICAL)


def _fail(message: str, code: int = 1) -> int:
    print(f"news-ingest: error: {' '.join(message.split())}", file=sys.stderr)
    return code


def cmd_run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from apache_beam.options.pipeline_options import PipelineOptions

    from .options import (
        PreflightError,
        feed_urls,
        new_run_id,
        output_dir,
        settings_from,
        unknown_options,
        use_local_runner,
    )

    options = PipelineOptions(beam_args)
    unknown = unknown_options(options)
    if unknown:
        return _fail(f"unknown option {unknown[0]} (see news-ingest run --help)", EXIT_USAGE)
    try:
        urls = feed_urls(args.feeds)
        settings = settings_from(args)
        out = output_dir(args.out)
    except PreflightError as error:
        return _fail(str(error))
    use_local_runner(options)
    run_id = new_run_id()

    import apache_beam as beam

    from .batch import build_pipeline
    from .lock import LockedError, RunLock
    from .summary import RunSummary, counters_of

    started = time.monotonic()
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, urls, out, run_id, settings)
    try:
        with RunLock(out):
            result = pipeline.run()
            result.wait_until_finish()
    except LockedError as error:
        return _fail(str(error), EXIT_LOCKED)
    except Exception as error:  # the pipeline itself broke: say so in one line
        logging.getLogger(__name__).debug("pipeline failed", exc_info=True)
        return _fail(f"run failed: {type(error).__name__}: {str(error).splitlines()[0][:300]} "
                     "(run with -v for details)")
    summary = RunSummary(run_id, out, len(urls), time.monotonic() - started, counters_of(result))
    print(summary.format())
    if args.summary_json:
        with open(args.summary_json, "w", encoding="utf-8") as handle:
            json.dump(summary.as_dict(), handle, indent=2)
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from .extract import extract_pages

    return extract_pages(args.pages, args.url, sys.stdin.buffer, sys.stdout, sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="news-ingest",
        description="Ingest news feeds: fetch, clean, deduplicate, tag actors, write Parquet.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show Beam and library logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="poll every feed once, ingest what is new, print a summary",
        description="Poll every feed once, ingest what is new and print the run summary. "
                    "Any Apache Beam pipeline option (--runner, --direct_num_workers, "
                    "--direct_running_mode, --project, ...) is passed to Beam.",
        epilog="Exit status: 0 when the run completed (failed feeds and articles are in "
               "DIR/rejects), 1 when it could not run, 2 for bad options, 75 when another run "
               "holds DIR.")
    from .options import IngestOptions

    IngestOptions._add_argparse_args(run)
    run.add_argument("--summary-json", metavar="FILE", help="also write the summary as JSON")

    extract = commands.add_parser(
        "extract", help="clean and classify saved pages, print one JSON object per page",
        description="Run the clean and classify stages on saved HTML pages and print one "
                    "JSON object per page. '-' reads a page from standard input.")
    extract.add_argument("pages", nargs="+", metavar="PAGE", help="saved HTML page, or -")
    extract.add_argument("--url", help="the URL the page(s) came from (for canonical URL and source)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.getLogger().addFilter(_DropNoise())  # before anything imports Beam
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    _quiet_logging(args.verbose)
    if args.command == "run":
        return cmd_run(args, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return cmd_extract(args)


if __name__ == "__main__":
    sys.exit(main())

"""How `run` and `stream` are driven: the pipeline run once (with progress
and its summary), once per interval in this process, or submitted to a
streaming runner; the run lock held around each, SIGTERM treated as Ctrl-C,
an old dataset's memory built first and daily compaction after.

The command line (cli.py) parses options and prints; these functions build
and run pipelines. Beam is imported inside them, after logging is set up.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .exits import EXIT_INTERRUPTED, fail


def pipeline_failure(error: Exception, what: str, out: str) -> str:
    """One line for a pipeline that broke, with the way out when there is one."""
    from transforms.memory import MemoryDamaged

    logging.getLogger(__name__).info("pipeline failed", exc_info=True)
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
    # Worker processes send their whole traceback as the message: its last line says what broke.
    cause = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    # Beam re-raises a worker's exception wrapped: its class is known by name only.
    remedy = (f"; rebuild it with `news-ingest memory --rebuild --out {out}`"
              if MemoryDamaged.__name__ in str(error) else " (run with -v for details)")
    return f"{what} failed: {type(error).__name__}: {cause[:300]}{remedy}"


def interrupted(error: BaseException) -> bool:
    """Ctrl-C inside a pipeline: Beam re-raises it wrapped (RuntimeError: KeyboardInterrupt ...)."""
    while error is not None:
        if isinstance(error, KeyboardInterrupt) or str(error).startswith("KeyboardInterrupt"):
            return True
        error = error.__cause__ or error.__context__
    return False


@contextlib.contextmanager
def worker_pool(workers: int, settings, needed: bool = True, jobs: type | None = None) -> Iterator:
    """While the block runs, `workers` processes do `jobs` (by default
    RunJobs: a run's clean, sign, classify and archive records) for this
    process's pages (transforms/workers.py); none for one worker, or when
    not `needed`. Open it before the run lock: the workers must not share it."""
    if workers <= 1 or not needed:
        yield None
        return
    from transforms.workers import WorkerPool

    from .jobs import RunJobs

    with WorkerPool(workers, settings, jobs or RunJobs) as pool:
        yield pool


def anything_due(out: str, urls: list[str], settings) -> bool:
    """Whether the run may find new items: a feed it would poll (new, due,
    or --force). A dataset whose feed state cannot be read polls them all."""
    from transforms.feedstate import DamagedState, is_due, read_states

    if settings.feeds.force:
        return True
    try:
        states = read_states(out)
    except (DamagedState, OSError):
        return True
    now = datetime.now(UTC)
    return any(url not in states or is_due(states[url], now) for url in urls)


def run_batch(options, urls: list[str], out: str, settings, verbosity: int,
              quarantined: set[str] | None = None):
    """Build and run the batch pipeline once, showing progress; its summary
    (naming the damaged files quarantined since `quarantined` was listed, by
    default since its start)."""
    import apache_beam as beam

    from schemas.layout import new_run_id
    from transforms.quarantine import quarantined_files
    from transforms.workers import open_pool

    from .batch import build_pipeline
    from .options import counts_in_process
    from .progress import Progress, worker_output_aside
    from .summary import RunSummary, counters_of, stage_seconds_of, timings_of

    started, run_id, polled_since = time.monotonic(), new_run_id(), datetime.now(UTC)
    quarantined = quarantined_files(out) if quarantined is None else quarantined
    ensure_memory(out, settings, verbosity)
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, urls, out, run_id, settings)
    counting = counts_in_process(options)
    with (worker_output_aside(not counting and verbosity < 2) as stderr,
          Progress.for_verbosity(len(urls), verbosity, counting, stderr)):
        result = pipeline.run()
        result.wait_until_finish()
    feed_errors, next_due = feed_outcomes(out, urls, polled_since)
    pool = open_pool()
    return RunSummary(run_id, out, len(urls), time.monotonic() - started, counters_of(result),
                      timings_of(result), stage_seconds_of(result),
                      sorted(quarantined_files(out) - quarantined), feed_errors, next_due,
                      workers=pool.workers if pool else 1,
                      worker_peak_rss_mib=pool.peak_rss_mib() if pool else [])


def feed_outcomes(out: str, urls: list[str], polled_since: datetime
                  ) -> tuple[dict[str, str], datetime | None]:
    """From the feed state the run saved: each failing feed's last error in
    words, and when the first of the feeds it did not poll (not due) is due."""
    from transforms.feedstate import DamagedState, read_states

    try:
        states = read_states(out)
    except (DamagedState, OSError):
        return {}, None
    listed = [states[url] for url in urls if url in states]
    now = datetime.now(UTC)
    resting = [state for state in listed if not state.last_polled_at or state.last_polled_at < polled_since]
    due = [state.next_poll_at for state in resting if state.next_poll_at and state.next_poll_at > now]
    return ({state.url: state.last_error for state in listed if state.last_error},
            min(due) if due else None)


def ensure_memory(out: str, settings, verbosity: int) -> None:
    """A dataset written by an older version gets its memory first (once);
    call holding the run lock."""
    from .rebuild import ensure_memory

    built = ensure_memory(out, settings.memory, settings.dedup)
    if built and built.files_read and verbosity >= 0:
        print(f"news-ingest: built the dataset memory from {built.line()}; later runs read only it",
              file=sys.stderr, flush=True)


def compact_if_due(out: str, args: argparse.Namespace, settings) -> None:
    """Once a `--compact-every` (default a day), after a run or poll."""
    from .compact import compact_if_due
    from .options import parse_compact_every

    every = parse_compact_every(args.compact_every)
    if every is None:
        return
    try:
        done = compact_if_due(out, every.total_seconds(), settings.write)
    except Exception as error:  # noqa: BLE001 - the run's own work is done and kept: say so, go on
        print(f"news-ingest: warning: compaction failed ({type(error).__name__}: {error}); it is tried "
              f"again after the next run", file=sys.stderr, flush=True)
        return
    if done and (done.partitions or done.skipped) and args.verbosity >= 0:
        print(f"news-ingest: {done.line()}", file=sys.stderr, flush=True)
        for reason in done.skipped:
            print(f"  left as it was: {reason}", file=sys.stderr, flush=True)


class Terminated:
    """SIGTERM (`docker stop`, systemd, Kubernetes, `kill`) ends a run as
    Ctrl-C does -- finished files kept, half-written ones removed -- and is
    said in one line; without it the run vanished with status -15."""

    def __init__(self):
        self.received, self._previous = False, None

    def __enter__(self) -> Terminated:
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.received = True
        raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGTERM, self._previous)


def stream_locally(options, urls, out, settings, interval, args: argparse.Namespace,
                   workers: int = 1) -> int:
    """One batch pipeline per interval in this process, under one lock (an
    in-process runner would hold a streaming pipeline's output to the end)."""
    from transforms.quarantine import quarantined_files

    from .lock import RunLock, held_by_another, settle
    from .stream import Stopper, run_locally

    failed, quarantined = [], quarantined_files(out)

    def poll(number: int) -> None:
        if pool is not None:
            pool.renew()  # a worker died in an earlier poll: the next ones have every core again
        try:  # the first poll also names what taking the lock set aside
            print(run_batch(options, urls, out, settings, args.verbosity,
                            quarantined if number == 0 else None).line(), flush=True)
            compact_if_due(out, args, settings)
        except BrokenPipeError:
            raise  # the reader of our lines left (`| head`): the poll's data is written; stop
        except Exception as error:
            if interrupted(error):
                raise KeyboardInterrupt from error
            if lock.local:
                settle(Path(out))  # what the broken poll half wrote
            failed.append(fail(pipeline_failure(error, "poll", out)))  # the next poll may work

    print(f"news-ingest: polling {len(urls)} feeds every {args.interval} into {out}; Ctrl-C stops",
          flush=True)
    stopper, lock = Stopper(), RunLock(out)
    try:
        with worker_pool(workers, settings, not held_by_another(out)) as pool, lock, stopper:
            run_locally(poll, interval, args.polls, stopper)
    except KeyboardInterrupt:
        return fail("aborted; the interrupted poll's items are polled again on the next start",
                    stopper.exit_status)
    if stopper.requested:
        return stopper.exit_status
    return 1 if failed else 0


def stream_on_runner(options, urls, out, settings, interval, args: argparse.Namespace) -> int:
    """The streaming pipeline, submitted to a runner that executes streams.

    Attached, this process holds the run lock and Ctrl-C cancels the job;
    detached (--detach, what a Dataflow flex template launcher needs) it
    returns once the runner has accepted the job, which then runs until
    cancelled on the runner.
    """
    import apache_beam as beam
    from apache_beam.options.pipeline_options import StandardOptions

    from schemas.layout import new_run_id

    from .lock import LockedError, RunLock
    from .stream import build_stream_pipeline

    options.view_as(StandardOptions).streaming = True
    pipeline = beam.Pipeline(options=options)
    build_stream_pipeline(pipeline, urls, out, new_run_id(), settings, interval.total_seconds(),
                          args.polls)
    if args.detach:
        try:
            with RunLock(out):  # only while the memory is made sure of: the job runs on
                ensure_memory(out, settings, args.verbosity)
            result = pipeline.run()
        except LockedError:
            raise
        except Exception as error:
            return fail(pipeline_failure(error, "stream", out))
        print(f"news-ingest: streaming job {_job_name(result)} submitted; "
              f"it writes into {out} until cancelled on the runner", flush=True)
        return 0
    with RunLock(out):
        try:
            ensure_memory(out, settings, args.verbosity)
            result = pipeline.run()
        except Exception as error:
            return fail(pipeline_failure(error, "stream", out))
        print(f"news-ingest: streaming pipeline submitted ({type(result).__name__}); Ctrl-C cancels it",
              flush=True)
        try:
            result.wait_until_finish()
        except KeyboardInterrupt:
            result.cancel()
            return EXIT_INTERRUPTED
        except Exception as error:
            return fail(pipeline_failure(error, "stream", out))
    return 0


def _job_name(result) -> str:
    """The runner's id for a submitted job (Dataflow and portable results both
    keep one; a Dataflow result built for a template launcher has none)."""
    try:
        job_id = result.job_id() if hasattr(result, "job_id") else getattr(result, "_job_id", None)
    except Exception:  # noqa: BLE001 - DataflowPipelineResult without a job raises AttributeError
        job_id = None
    return str(job_id or "(id assigned by the launcher)")

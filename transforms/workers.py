"""Worker processes for the CPU-bound steps of work on this machine.

Beam's local runner executes a pipeline in one process, so cleaning and
classifying -- nearly all of a run's time -- had one core. `WorkerPool`
starts worker processes once, before the work starts: forked after this
process has built the jobs (the Cleaner and Classifier with the language
model, the gazetteer, the clutter data), they inherit them and start in
milliseconds, not the second of a fresh interpreter. What they do is given
as a class of jobs (pipelines/jobs.py); elements go to them and results
come back pickled. transforms/pooled.py is the DoFn side, `ordered` the
side of a plain loop (`news-ingest extract`).

A worker that dies (killed, out of memory, a crash in a C library) breaks
the pool: what it held is done again in this process, and the rest of the
work too, after one warning line. Workers ignore Ctrl-C (this process
stops them) and die with this process, so a killed run leaves none behind.

A fork copies the calling thread alone, and a lock another thread held
would stay locked in the child: with other threads running (a program
that embeds news-ingest, a test serving pages) the workers start as fresh
processes from multiprocessing's fork server instead, which costs about a
second. No Beam here: `extract` starts without it.
"""
from __future__ import annotations

import ctypes
import gc
import math
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent import futures
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from schemas.settings import Settings

# Elements handed out per worker at a time: enough that none waits for work
# while results are taken back, few enough that pages wait unread, not in memory.
IN_FLIGHT_PER_WORKER = 4
_PR_SET_PDEATHSIG = 1  # Linux prctl(2): a signal for the child when its parent dies

# In a worker: its jobs. In this process: those of the open pool, which
# forked workers inherit.
_JOBS = None
_POOL: WorkerPool | None = None


def cores() -> int:
    """The cores this process may use: its CPU affinity (`taskset`, cpuset),
    and a container's CPU quota (`docker --cpus`, a Kubernetes CPU limit),
    rounded up. The default number of workers."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = _cpu_quota()
    return max(1, min(count, math.ceil(quota))) if quota else count


# cgroup v2, then v1: (file, its quota and period) -- "max" or -1 means none.
_QUOTA_FILES = (("/sys/fs/cgroup/cpu.max",),
                ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def _cpu_quota() -> float | None:
    """CPUs the container's quota allows (1.5 for `--cpus 1.5`), None when unlimited or unknown."""
    for files in _QUOTA_FILES:
        try:
            words = " ".join(Path(path).read_text() for path in files).split()
        except OSError:
            continue
        try:
            quota, period = float(words[0]), float(words[1])
        except (ValueError, IndexError):  # "max 100000": no quota
            return None
        return quota / period if quota > 0 and period > 0 else None
    return None


class WorkerFailed(Exception):
    """An exception raised in a worker that could not travel back as it
    was (its class cannot be rebuilt from its arguments): its class name and
    message."""


def _work(job: str, element):
    try:
        return getattr(_JOBS, job)(element)
    except Exception as error:
        try:
            pickle.loads(pickle.dumps(error))
        except Exception:  # noqa: BLE001 - any failure to travel: say it in words instead
            raise WorkerFailed(f"{type(error).__name__}: {error}") from None
        raise


def _peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM), in MiB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def _start_worker(owner: int, jobs: type | None, settings: Settings | None) -> None:
    """In each worker as it starts: Ctrl-C is left to the process that
    opened the pool (`owner`), SIGTERM ends the worker, and the worker dies
    with the owner -- killed with it when forked from it (Linux), and in any
    case on its own within a second of the owner's end (a worker from the
    fork server is not the owner's child). `jobs`: build them (a fresh
    process, not forked with them)."""
    global _JOBS
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    threading.Thread(target=_end_with, args=(owner,), name="end-with-owner", daemon=True).start()
    if jobs is not None:
        _JOBS = jobs(settings)


def _end_with(owner: int) -> None:
    while True:
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            os._exit(1)
        except OSError:  # alive, though not ours to signal
            pass
        time.sleep(1)


class WorkerPool:
    """`workers` processes doing the methods of `jobs(settings)` (a class
    whose instance's methods each take one element); this process's open
    pool (`open_pool`) until closed. A context manager.

    Open it before taking files a killed run must not leave held (the run
    lock): forked workers share this process's open files."""

    def __init__(self, workers: int, settings: Settings, jobs: type):
        global _JOBS, _POOL
        if _POOL is not None:
            raise RuntimeError("a worker pool is already open in this process")
        self.workers, self.settings, self.jobs = workers, settings, jobs
        _JOBS = jobs(settings)  # here too: done in place once the pool is broken
        _POOL = self
        self._start()

    def _start(self) -> None:
        self.broken = False
        alone = threading.current_thread() is threading.main_thread() and threading.active_count() == 1
        if alone:
            context, initargs = multiprocessing.get_context("fork"), (os.getpid(), None, None)
            gc.freeze()  # what exists now stays out of the collector: its pages stay shared
        else:
            context = multiprocessing.get_context("forkserver")
            initargs = (os.getpid(), self.jobs, self.settings)
            context.set_forkserver_preload([self.jobs.__module__])  # imported once, in the server
        self._executor = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker,
                                             initargs=initargs)
        try:
            self._executor.submit(os.getpid).result()  # with fork, the first task starts every worker
        except Exception as error:  # noqa: BLE001 - they could not all start (fork refused...): work here
            self._kill()  # those that did would wait for work, and this process's exit for them
            self._executor.shutdown(wait=False, cancel_futures=True)
            self.mark_broken(error)
        finally:
            gc.unfreeze()

    def renew(self) -> None:
        """New workers for broken ones (a long `stream` between two polls)."""
        if self.broken:
            self._kill()
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._start()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, kind, *_exc) -> None:
        self.close(abort=kind is not None)

    def close(self, abort: bool = False) -> None:
        """Stop the workers: when they are done with what they hold, or at
        once (`abort`: the work failed or was interrupted). A Ctrl-C while
        waiting for them stops them at once too: left waiting, the workers
        and this process's exit would wait for each other for ever."""
        global _JOBS, _POOL
        if _POOL is self:
            _POOL, _JOBS = None, None
        try:
            if abort:
                self._kill()
            self._executor.shutdown(wait=True, cancel_futures=True)
        except BaseException:
            self._kill()
            self._executor.shutdown(wait=False, cancel_futures=True)
            raise

    def _kill(self) -> None:
        # The executor has no public way to stop its processes before Python 3.14.
        for process in list((self._executor._processes or {}).values()):
            process.kill()

    def submit(self, job: str, element) -> futures.Future:
        """A future of `job` on `element`: in a worker, or done here once the pool is broken."""
        if not self.broken:
            try:
                return self._executor.submit(_work, job, element)
            except BrokenProcessPool as error:
                self.mark_broken(error)
        done = futures.Future()
        done.set_result(_work(job, element))
        return done

    def result(self, job: str, future: futures.Future, element):
        """The future's result; `job` done here if the pool broke meanwhile."""
        try:
            return future.result()
        except BrokenProcessPool as error:
            self.mark_broken(error)
            return _work(job, element)

    def ordered(self, job: str, pairs: Iterable[tuple]) -> Iterator[tuple]:
        """(key, `job` of element) for each (key, element), in order, with at
        most IN_FLIGHT_PER_WORKER elements per worker handed out (a large
        input is read as it is used)."""
        waiting: deque = deque()
        for key, element in pairs:
            waiting.append((key, self.submit(job, element), element))
            if len(waiting) >= self.workers * IN_FLIGHT_PER_WORKER:
                key, future, element = waiting.popleft()
                yield key, self.result(job, future, element)
        while waiting:
            key, future, element = waiting.popleft()
            yield key, self.result(job, future, element)

    def peak_rss_mib(self) -> list[float]:
        """The workers' peak resident memory in MiB (shared pages counted in
        each), as far as the pool can tell: a question goes to whichever
        worker is free, so one may answer twice."""
        if self.broken:
            return []
        try:
            return [future.result() for future in
                    [self._executor.submit(_peak_rss_mib) for _ in range(self.workers)]]
        except BrokenProcessPool:
            return []

    def mark_broken(self, error: BaseException) -> None:
        if not self.broken:
            self.broken = True
            cause = " ".join(str(error.__cause__ or error).split())[:200]
            print(f"news-ingest: warning: the worker processes stopped ({cause}); this process does "
                  "the rest of the work alone", file=sys.stderr, flush=True)


def open_pool() -> WorkerPool | None:
    """This process's open pool, unless there is none or it is broken."""
    pool = _POOL
    return None if pool is None or pool.broken else pool

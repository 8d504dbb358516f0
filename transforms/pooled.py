"""PooledFn: the base DoFn of the stages whose work goes to this machine's
worker processes (transforms/workers.py) -- clean, classify, near-copy
signatures and the raw archive's records (gzip).

Each element is handed to the open pool, if there is one and its jobs
are this DoFn's (built with its settings), and each result is emitted as it comes back,
in its element's window, from this process: Beam's counters, progress and
the summary count as without workers. Without a pool (`--workers 1`, or a
runner with worker processes of its own: Dataflow, Flink, Beam's
multi_processing mode) the work is done in place, as it always was.
"""
from __future__ import annotations

from concurrent import futures

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from .workers import IN_FLIGHT_PER_WORKER, WorkerPool, open_pool


class PooledFn(beam.DoFn):
    """Subclasses set `job` (the name of the pool's job) and implement
    `pool_does_mine(pool)`, `inline(element)` and `emit(element, result)`
    (a generator, like a DoFn's process). What is still out when a bundle
    ends is waited for in `finish_bundle`."""

    job = ""

    def setup(self):
        pool = open_pool()
        self._pool = pool if pool is not None and self.pool_does_mine(pool) else None

    def start_bundle(self):
        self._running: dict = {}  # future -> element as a WindowedValue

    def process(self, element, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam,
                pane=beam.DoFn.PaneInfoParam):
        if self._pool is None:
            yield from self.emit(element, self.inline(element))
            return
        future = self._pool.submit(self.job, element)
        self._running[future] = WindowedValue(element, timestamp, (window,), pane)
        yield from self._arrived(wait=len(self._running) >= self._pool.workers * IN_FLIGHT_PER_WORKER)

    def finish_bundle(self):
        while self._running:
            yield from self._arrived(wait=True)

    def _arrived(self, wait: bool):
        """Emit what has come back (waiting for at least one if `wait`)."""
        arrived = (futures.wait(self._running, return_when=futures.FIRST_COMPLETED).done if wait
                   else [future for future in self._running if future.done()])
        for future in arrived:
            windowed = self._running.pop(future)
            result = self._pool.result(self.job, future, windowed.value)
            for output in self.emit(windowed.value, result):
                if isinstance(output, beam.pvalue.TaggedOutput):
                    yield beam.pvalue.TaggedOutput(output.tag, windowed.with_value(output.value))
                else:
                    yield windowed.with_value(output)

    def pool_does_mine(self, pool: WorkerPool) -> bool:
        raise NotImplementedError

    def inline(self, element):
        raise NotImplementedError

    def emit(self, element, result):
        raise NotImplementedError

"""What a person watching a run sees on stderr while it works.

`Progress`: a thread reads this process's tally of counts
(transforms/metrics.py) and shows feeds polled, items seen, fetched,
extracted and written, with the fetch rate. On a terminal it redraws one
line and erases it when the run ends, so the summary stands alone; in CI
logs and files it prints nothing unless asked (-v), and then a plain line
every 10 s.

`worker_output_aside`: Beam's worker processes (--direct_running_mode
multi_processing) log their start-up and shut-down to the stderr they
inherit; that goes to a file instead, shown only when the run fails.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import TextIO

from transforms.metrics import live_counts

REDRAW_S = 0.5
LOG_LINE_S = 10.0
_WRITTEN = ("written/articles", "written/duplicates")


def progress_line(counts: dict[str, int], feeds_total: int, seconds: float) -> str:
    """What the run has done so far, from the counts it has made."""
    feeds_done = counts.get("feeds/polled", 0) + counts.get("feeds/not_due", 0)
    seen, fetched, extracted = (counts.get(name, 0) for name in ("items/seen", "fetch/ok", "clean/ok"))
    written = sum(value for name, value in counts.items()
                  if name in _WRITTEN or name.startswith("written/rejects/"))
    rate = fetched / seconds if seconds > 0 else 0.0
    minutes, secs = divmod(int(seconds), 60)
    return (f"{minutes}:{secs:02d}  feeds {feeds_done}/{feeds_total}  items seen {seen}, "
            f"fetched {fetched} ({rate:.1f}/s), extracted {extracted}, written {written}")


class Progress:
    """Context manager showing progress while its block runs.

    `live`: redraw one line (a terminal); `log_every_s`: else print a plain
    line this often; neither: show nothing. `counting` is False when the
    work runs in other processes, whose counts arrive only at the end: then
    only the time is shown.
    """

    def __init__(self, feeds_total: int, stream: TextIO | None = None, live: bool = False,
                 log_every_s: float | None = None, counting: bool = True):
        self.feeds_total = feeds_total
        self.stream = stream or sys.stderr
        self.live, self.log_every_s, self.counting = live, log_every_s, counting
        self._done = threading.Event()
        self._drawing = threading.Lock()
        self._skip_redraw = False
        self._thread: threading.Thread | None = None

    @classmethod
    def for_verbosity(cls, feeds_total: int, verbosity: int, counting: bool = True,
                      stream: TextIO | None = None) -> Progress:
        """Quiet (-q, -1) shows nothing; by default only a terminal gets
        progress; -v adds plain lines where there is no terminal."""
        stream = stream or sys.stderr
        if stream is None:  # stderr closed (2>&-): nowhere to show anything
            return cls(feeds_total, None)
        live = verbosity >= 0 and stream.isatty()
        return cls(feeds_total, stream, live=live,
                   log_every_s=LOG_LINE_S if verbosity >= 1 and not live else None, counting=counting)

    def __enter__(self) -> Progress:
        if self.live or self.log_every_s:
            self._baseline, self._started = live_counts(), time.monotonic()
            if self.live:  # a log line must not land on the end of the progress line
                self._handlers = [handler for handler in logging.getLogger().handlers
                                  if getattr(handler, "stream", None) is self.stream]
                for handler in self._handlers:
                    handler.addFilter(self._clear_line)
            self._thread = threading.Thread(target=self._show, name="progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        if self._thread is None:
            return
        self._done.set()
        self._thread.join()
        if self.live:
            for handler in self._handlers:
                handler.removeFilter(self._clear_line)
            self._clear_line()

    def _clear_line(self, _record: logging.LogRecord | None = None) -> bool:
        """Erase the line; as a log handler's filter, also skip the next
        redraw, so the record is written on a line of its own."""
        with self._drawing:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._skip_redraw = _record is not None
        return True

    def current(self) -> str:
        seconds = time.monotonic() - self._started
        if not self.counting:
            minutes, secs = divmod(int(seconds), 60)
            return f"{minutes}:{secs:02d}  running in worker processes: counts come at the end"
        counts = live_counts()
        delta = {name: value - self._baseline.get(name, 0) for name, value in counts.items()}
        return progress_line(delta, self.feeds_total, seconds)

    def _width(self) -> int:
        """Columns of the terminal we draw on (stderr's, which stdout's may not be)."""
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            columns = 0
        return columns or shutil.get_terminal_size().columns  # 0: a terminal that does not say

    def _show(self) -> None:
        while not self._done.wait(REDRAW_S if self.live else self.log_every_s):
            with self._drawing:
                if self._skip_redraw:
                    self._skip_redraw = False
                    continue
                if self.live:
                    self.stream.write("\r" + self.current()[:self._width() - 1] + "\x1b[K")
                else:
                    self.stream.write(f"news-ingest: {self.current()}\n")
                self.stream.flush()


@contextlib.contextmanager
def worker_output_aside(enabled: bool) -> Iterator[TextIO]:
    """While the block runs, file descriptor 2 (inherited by processes
    started meanwhile) points to a temporary file; yields a stream to the
    real stderr, which this process's log handlers write to meanwhile. The
    file is removed, unless the block fails: then its path is logged."""
    if not enabled:
        yield sys.stderr
        return
    sys.stderr.flush()
    saved = os.dup(2)
    handlers = [handler for handler in logging.getLogger().handlers
                if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr]
    with (tempfile.NamedTemporaryFile(prefix="news-ingest-workers-", suffix=".log", delete=False) as log,
          os.fdopen(os.dup(saved), "w", buffering=1) as real):
        os.dup2(log.fileno(), 2)
        for handler in handlers:
            handler.setStream(real)
        try:
            yield real
        except KeyboardInterrupt:  # stopped on purpose: nothing to look into
            os.unlink(log.name)
            raise
        except BaseException:
            logging.getLogger(__name__).error("Beam's worker processes logged to %s", log.name)
            raise
        else:
            os.unlink(log.name)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            for handler in handlers:
                handler.setStream(sys.stderr)

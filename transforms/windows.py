"""Which window a DoFn runs in, as the dataset's file names say it.

A batch run is one global window and its files carry the run id; a stream
writes each window as new files named after the window's start (see
schemas/layout.py for run ids).
"""
from __future__ import annotations

from datetime import UTC, datetime

from apache_beam.transforms.window import GlobalWindow

from schemas.layout import run_stamp


def window_run_id(run_id: str, window) -> str:
    """The name stem of a window's files: a batch run's id, or for a stream
    the window's start time with the stream's suffix -- every window writes
    new files, and file names still start with when their rows were ingested."""
    if isinstance(window, GlobalWindow):
        return run_id
    start = datetime.fromtimestamp(window.start.micros / 1e6, UTC)
    return f"{run_stamp(start)}-{run_id.split('-', 1)[-1]}"

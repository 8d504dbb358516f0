"""Exit statuses and the one-line error every command ends with."""
from __future__ import annotations

import contextlib
import os
import sys

EXIT_USAGE = 2
# `run` could poll no feed: every feed that was due failed (no network, a
# wrong list): distinct from success, which cron and CI should not take it for.
EXIT_NO_FEED = 3
# Another run holds the output folder: try again later (sysexits EX_TEMPFAIL).
EXIT_LOCKED = 75
# The reader of our standard output left (`| head`): 128 + SIGPIPE, as a
# tool stopped by that signal would end.
EXIT_BROKEN_PIPE = 141
# Stopped with Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def stdout_gone() -> int:
    """Stop quietly once standard output is closed: anything still buffered,
    and Python's own flush at exit, go to /dev/null instead of a traceback."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


def fail(message: str, code: int = 1) -> int:
    """Say what went wrong in one line on stderr; return the exit status."""
    print(f"news-ingest: error: {' '.join(message.split())}", file=sys.stderr)
    return code

"""Exit statuses and the one-line error every command ends with."""
from __future__ import annotations

import sys

EXIT_USAGE = 2
# Another run holds the output folder: try again later (sysexits EX_TEMPFAIL).
EXIT_LOCKED = 75
# Stopped with Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = 1) -> int:
    """Say what went wrong in one line on stderr; return the exit status."""
    print(f"news-ingest: error: {' '.join(message.split())}", file=sys.stderr)
    return code

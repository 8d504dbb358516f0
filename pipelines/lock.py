"""One run at a time per output folder.

`run` and `stream` hold DIR/_state/run.lock while they work: created
exclusively (O_EXCL), naming the process that holds it. A second start on the
same DIR stops with a clear message; a lock left by a process that died (on
this host) is taken over. Holding the lock, a start also removes the hidden
`.inprogress` files a crashed run may have left (readers never saw them), and
a run leaving on an exception (Ctrl-C included) removes its own.

Object stores (gs://, s3://) have no exclusive create: there the scheduler
must not overlap runs (the Kubernetes CronJob in deploy/ forbids it).
"""
from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

LOCK_FILE = ("_state", "run.lock")


class LockedError(Exception):
    """Another run holds the lock on this output folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    def __init__(self, out_dir: str):
        self.local = not urlsplit(out_dir).scheme or len(urlsplit(out_dir).scheme) == 1
        self.path = Path(out_dir, *LOCK_FILE)
        self.held = False

    def __enter__(self) -> RunLock:
        if not self.local:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _attempt in range(2):
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder.get("host") == socket.gethostname() and not _alive(int(holder.get("pid", 0))):
                    self.path.unlink(missing_ok=True)  # its process is gone: a stale lock
                    continue
                raise LockedError(
                    f"another run is using {self.path.parent.parent} (pid {holder.get('pid')} on "
                    f"{holder.get('host')} since {holder.get('started')}); not starting a second one"
                ) from None
            with os.fdopen(handle, "w") as lock:
                json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                           "started": datetime.now(UTC).isoformat(timespec="seconds")}, lock)
            self.held = True
            remove_leftovers(self.path.parent.parent)
            return self
        raise LockedError(f"could not take the lock {self.path}")

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def __exit__(self, exc_type, *exc) -> None:
        if self.held:
            if exc_type is not None:  # interrupted or failed: drop its half-written files
                remove_leftovers(self.path.parent.parent)
            self.path.unlink(missing_ok=True)
            self.held = False


def remove_leftovers(out_dir: Path) -> int:
    """Delete the `.…inprogress` files of interrupted writes; return how many."""
    leftovers = list(out_dir.rglob(".*.inprogress"))
    for path in leftovers:
        path.unlink(missing_ok=True)
    return len(leftovers)

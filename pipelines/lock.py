"""One run at a time per output folder.

`run` and `stream` hold an exclusive `flock` on DIR/_state/run.lock while
they work; the file names the process holding it. A second start on the same
DIR stops with a clear message. The kernel releases the lock however its
holder ends (Ctrl-C, SIGKILL, an OOM kill, a killed pod), so a crash never
leaves DIR locked; the lock also holds across hosts sharing DIR over NFSv4.
Holding the lock, a start first completes a commit a crash interrupted
(transforms/write.py), then -- if the last holder did not leave cleanly,
which the lock file it left behind tells -- removes the hidden `.inprogress`
files it left uncommitted (readers never saw them). That search walks the
whole dataset, so it is done only after a crash: a run leaving on an
exception (Ctrl-C included) removes its own, and a clean exit removes the
lock file.

Object stores (gs://, s3://) have no locks: there the scheduler must not
overlap runs (the Kubernetes CronJob in deploy/ forbids it); a start still
rolls forward a commit a crash interrupted.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from schemas.layout import LOCK, RAW, STATE
from schemas.tables import SCHEMAS
from transforms.write import finish_commits

from .compact import remove_staging

_LOG = logging.getLogger("news_ingest")


class LockedError(Exception):
    """Another run holds the lock on this output folder."""


class RunLock:
    """The lock, and a start's clean-up after a crash. With `settles=False`
    (`verify`) only the lock: what a crash left stays to be seen, and so
    does the lock file a crashed holder left, for the next start to act on
    -- unless `settle_as_a_start` is called."""

    def __init__(self, out_dir: str, settles: bool = True):
        self.local = not urlsplit(out_dir).scheme or len(urlsplit(out_dir).scheme) == 1
        self.out_dir, self.path = out_dir, Path(out_dir, *LOCK)
        self.settles, self.left_by_crash = settles, False
        self.handle = None

    def __enter__(self) -> RunLock:
        if not self.local:  # no lock on object stores, but a crashed commit is finished all the same
            if self.settles:
                self.settle_as_a_start()
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._replace_if_not_a_file()
        self.left_by_crash = self.path.exists()  # a holder that ended cleanly removed it
        while self.handle is None:
            # O_NOFOLLOW: the lock is written to; a link put here must never have its target overwritten.
            handle = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW,
                                       0o644), "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._holder()
                handle.close()
                raise LockedError(
                    f"another run is using {self.path.parent.parent} (pid {holder.get('pid')} on "
                    f"{holder.get('host')} since {holder.get('started')}); not starting a second one"
                ) from None
            if not self._is_current(handle):  # its holder removed it as we opened it: again
                handle.close()
                continue
            handle.truncate(0)
            json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                       "started": datetime.now(UTC).isoformat(timespec="seconds")}, handle)
            handle.flush()
            self.handle = handle
        if self.settles:
            self.settle_as_a_start()
        return self

    def settle_as_a_start(self, search: bool | None = None) -> None:
        """Finish what a crash committed, drop what it left aside and (after
        a crash, or with `search`) its hidden files."""
        if self.local:
            settle(self.path.parent.parent, search=self.left_by_crash if search is None else search)
        else:
            finish_commits(self.out_dir)
        self.left_by_crash = False

    def _replace_if_not_a_file(self) -> None:
        """A link or anything else but a plain file at the lock's place is
        removed (a link's target is left as it is), with a warning."""
        if self.path.is_symlink() or (self.path.exists() and not self.path.is_file()):
            _LOG.warning("%s is not a plain file (a link or a special file); replaced by a lock file, "
                         "anything it pointed to left as it was", self.path)
            self.path.unlink()

    def _is_current(self, handle) -> bool:
        try:
            return os.fstat(handle.fileno()).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def __exit__(self, exc_type, *exc) -> None:
        if self.handle is None:
            return
        if exc_type is not None and self.settles:  # interrupted or failed: settle its half-done writes
            settle(self.path.parent.parent)
        if not self.left_by_crash:  # else the next start must still see that a crash came first
            self.path.unlink(missing_ok=True)  # before releasing: a waiting start then retries
        self.handle.close()
        self.handle = None


def held_by_another(out_dir: str) -> bool:
    """Whether another run holds DIR's lock now (a local folder): asked
    before anything costly starts (the worker processes), so a second start
    stops at once. RunLock still decides: this only looks."""
    if urlsplit(out_dir).scheme and len(urlsplit(out_dir).scheme) > 1:
        return False
    try:
        handle = os.open(Path(out_dir, *LOCK), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # no lock file: nobody holds it
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)  # refused while a holder has it exclusively
    except OSError:
        return True
    finally:
        os.close(handle)  # and with it this look's own lock
    return False


def settle(out_dir: Path, search: bool = True) -> None:
    """After a crash or a failed run: finish what was committed, drop the rest
    (what a compaction had set aside and, with `search`, the hidden files
    anywhere in the dataset)."""
    finish_commits(str(out_dir))
    if search:
        remove_leftovers(out_dir)
    remove_staging(str(out_dir))


def remove_leftovers(out_dir: Path) -> int:
    """Delete the `.…inprogress` files of interrupted writes in the folders
    runs write (the tables, `raw` and `_state`); return how many. A report being
    written into the dataset folder meanwhile keeps its own."""
    leftovers = [path for folder in (*SCHEMAS, RAW, STATE)
                 for path in (out_dir / folder).rglob(".*.inprogress")]
    for path in leftovers:
        path.unlink(missing_ok=True)
    for table in (*SCHEMAS, RAW):  # partition folders a failed run made and never filled
        remove_empty_folders(out_dir / table)
    return len(leftovers)


def remove_empty_folders(root: Path) -> None:
    for folder in sorted((path for path in root.rglob("*") if path.is_dir()), reverse=True):
        with contextlib.suppress(OSError):  # not empty (or not ours to remove): stays
            folder.rmdir()

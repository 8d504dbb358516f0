"""A dataset file that cannot be read is moved aside, never left to stop every later run.

Datasets live for years on disks that fill, on machines that crash, in
folders people copy by hand. A reader that finds one of the dataset's own
files truncated, empty, not Parquet or JSON, of another schema, or not a
regular file moves it to `DIR/_state/quarantine/` under its path in the
dataset, with a warning that names it and says what it cost; the run goes
on without it. Moved, not deleted: a person may still look at it or salvage
it. Only damage counts: a file that cannot be opened right now (a
permission, an I/O error) stops the run instead, and stays where it is.
"""
from __future__ import annotations

import logging
import os
import re
import stat

from apache_beam.io.filesystems import FileSystems

from schemas.layout import QUARANTINE, STAMPED, matching_files, new_run_id

# How the quarantine names a damaged file, and a readable one copied before it lost rows.
_DAMAGED = re.compile(r"\." + STAMPED.pattern)
KEPT_COPY = ".before-rows-were-taken-out"

_LOG = logging.getLogger(__name__)


class DamagedFile(Exception):
    """A dataset file is not what the writer wrote: undecodable, truncated,
    of another schema, or not a regular file."""


def quarantine(out_dir: str, path: str, error: BaseException, cost: str, move: bool = True) -> str | None:
    """Move `path` (inside `out_dir`) to the quarantine folder -- or copy it
    there, when a commit removes the original -- and warn what it cost;
    return where it went, or None when that failed too (the warning says so
    and the file stays where it was)."""
    reason = f"{type(error).__name__}: {str(error)[:200]}"
    try:
        target = _set_aside(out_dir, path, move)
    except Exception as move_error:  # noqa: BLE001 -- say so; the run still goes on
        _LOG.warning("%s cannot be read (%s); %s. Setting it aside in the quarantine failed too (%s: %s)",
                     path, reason, cost, type(move_error).__name__, str(move_error)[:200])
        return None
    _LOG.warning("%s cannot be read (%s); %s to %s; %s", path, reason, "moved" if move else "copied",
                 target, cost)
    return target


def keep_copy(out_dir: str, path: str) -> str:
    """Copy a readable file that is about to lose rows into the quarantine:
    rows taken out of the dataset are set aside, never deleted."""
    return _set_aside(out_dir, path, move=False, note=KEPT_COPY)


def _set_aside(out_dir: str, path: str, move: bool, note: str = "") -> str:
    relative = os.path.relpath(path, out_dir) if "://" not in out_dir else path[len(out_dir):].lstrip("/")
    stamp = new_run_id()  # two in a second never collide
    target = FileSystems.join(out_dir, *QUARANTINE, f"{relative}.{stamp}{note}")
    _make_parent(target)
    (FileSystems.rename if move else FileSystems.copy)([path], [target])
    return target


def quarantined_files(out_dir: str) -> set[str]:
    """The damaged files in the quarantine, by their path in it (not the
    copies kept of readable files before rows were taken out of them). A
    run lists them before and after: what is new, it set aside."""
    folder = FileSystems.join(out_dir, *QUARANTINE)
    return {path[len(folder):].lstrip("/") for path in matching_files(folder, "**")
            if _DAMAGED.search(path)}


def is_regular_file(path: str) -> bool:
    """Whether a local path is a regular file (a FIFO or a device would
    block or never end a read); any remote path, and a path that is gone
    (its reader says so), count as one."""
    if "://" in path:
        return True
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False


def require_regular_file(path: str) -> None:
    if not is_regular_file(path):
        raise DamagedFile("not a regular file")


def _make_parent(target: str) -> None:
    if "://" in target:  # object stores have no folders
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)

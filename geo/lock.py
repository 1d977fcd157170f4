"""One writer per run folder: an exclusive lock held while a process trains in it.

Two processes training into one folder would both write ``last.pt`` and both exit 0,
one run silently lost. :func:`hold` takes ``<folder>/.lock`` with ``flock`` (released by
the kernel when the process ends, however it ends: no stale lock after a kill). A second
process either gets :class:`Busy` naming the folder and the holder's pid, before it does
any work (``geo train``), or, with ``wait=True``, waits for the first to finish and then
finds its checkpoint (``geo.train.train``: parallel notebook parts that share a generator
load it once it is trained, instead of training it twice into one file).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_FILE = ".lock"
_HELD: dict = {}   # folder -> depth: a process holding a folder may enter it again (the CLI, then train())


class Busy(RuntimeError):
    """Another process holds the folder; the message names both."""


@contextlib.contextmanager
def hold(folder, what: str = "run folder", wait: bool = False):
    """Hold ``folder``'s lock for the ``with`` block; when another process holds it, raise
    :class:`Busy` at once, or with ``wait`` say so and wait. Re-entrant within one process."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(folder)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield folder
        finally:
            _HELD[key] -= 1
        return
    f = open(folder / LOCK_FILE, "a+")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            if not wait:
                raise Busy(f"{folder}: the {what} is in use by process {holder}; expected one process per "
                           "folder (wait for it, or use another folder)") from None
            print(f"{folder}: the {what} is in use by process {holder}; waiting for it", flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        _HELD[key] = 1
        try:
            yield folder
        finally:
            del _HELD[key]
    finally:
        f.close()   # closing releases the lock

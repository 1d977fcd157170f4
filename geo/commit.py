"""Crash-consistent writes: the one way geo writes a file, or a set of files and its sidecar.

:func:`commit` writes every part under a temp name in its own folder, then the sidecar
(which the caller builds from every part's sha256 and size), and only when all of them
are complete on disk renames the parts into place and the sidecar last. A failure or a
kill before the renames leaves the previous set untouched (and only temp files, which the
next write into that folder sweeps); a kill during the renames leaves parts whose sha256
differs from the sidecar's, which a reader detects. :func:`atomic_write` is the one-file
case.

Temp files (and the temp folders of :func:`temp_dir`, where a folder is built before it
is renamed into place) are named ``.<name>.<pid>-<random>.tmp``: :func:`sweep` removes
those whose process is gone (or, for a file of another naming, that are over an hour
old), never a live writer's.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Callable

STALE_S = 3600   # a temp file without a pid in its name is stale after this long
_TMP = re.compile(r"^\..+\.(?:(?P<pid>\d+)-)?[A-Za-z0-9_]+\.tmp$")


def sha256(blob: bytes) -> str:
    """The hex sha256 of ``blob``: what every sidecar records of a file it names."""
    return hashlib.sha256(blob).hexdigest()


def file_sha256(path) -> str:
    """:func:`sha256` of a file's bytes, read in 1 MiB blocks (a video need not fit in memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # exists, owned by someone else
        return True
    return True


def sweep(folder) -> list[Path]:
    """Remove the temp files a killed writer left in ``folder`` (module docstring);
    returns those removed. Temps of a live process are kept."""
    folder, gone = Path(folder), []
    try:
        names = os.listdir(folder)
    except OSError:
        return gone
    now = time.time()
    for n in names:
        m = _TMP.match(n)
        if not m:
            continue
        p = folder / n
        try:
            pid = m.group("pid")
            if p.is_dir() and not p.is_symlink():
                if pid and not _alive(int(pid)):   # a folder is removed only by its dead writer's pid
                    shutil.rmtree(p)
                    gone.append(p)
                continue
            stale = not _alive(int(pid)) if pid else now - p.lstat().st_mtime > STALE_S
            if stale:
                p.unlink()
                gone.append(p)
        except (OSError, ValueError, OverflowError):
            continue   # raced with another sweep, or not ours to remove
    return gone


def _temp_name(path: Path) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"


def temp_dir(path) -> Path:
    """A new empty folder beside ``path`` (which it is meant to become, by a rename) named
    as :func:`sweep` knows, so that a killed writer's half-built folder is removed later."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep(path.parent)
    tmp = _temp_name(path)
    tmp.mkdir()
    return tmp


def _temp(path: Path, data: bytes) -> Path:
    """``data`` in a new temp file beside ``path``, readable by all (as results are)."""
    tmp = _temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)   # the umask applies
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _bytes(data, path) -> bytes:
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{path}: cannot write a {type(data).__name__}; expected bytes or str")


def commit(parts: dict, sidecar=None, make_sidecar: Callable[[dict], bytes | str] | None = None) -> list[Path]:
    """Write ``parts`` ({path: bytes or str}) and, given ``sidecar`` (a path), the text
    ``make_sidecar(hashes)`` builds from ``hashes`` = {part's file name: {"sha256",
    "bytes"}}; all or nothing (module docstring). Returns the paths written, the
    sidecar last."""
    blobs = {Path(p): _bytes(d, p) for p, d in parts.items()}
    hashes = {p.name: {"sha256": sha256(b), "bytes": len(b)} for p, b in blobs.items()}
    if sidecar is not None:
        text = make_sidecar(hashes)
        blobs[Path(sidecar)] = _bytes(text, sidecar)
    for folder in {p.parent for p in blobs}:
        folder.mkdir(parents=True, exist_ok=True)
        sweep(folder)
    temps = {}
    try:
        for p, b in blobs.items():   # the sidecar is the last item: written and renamed last
            temps[p] = _temp(p, b)
        for p, t in temps.items():
            os.replace(t, p)
    except BaseException:
        for t in temps.values():
            t.unlink(missing_ok=True)
        raise
    return list(blobs)


def atomic_write(path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder, then rename."""
    return commit({path: data})[0]

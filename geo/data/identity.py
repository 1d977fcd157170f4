"""What a data argument holds, independent of where it lies.

Results, run folders, checkpoints and committed weights are keyed by the data they come
from (:func:`data_identity`): the same Human3.6M copy at another path (a GPU machine, a
user's disk) has the same identity, an edited file another. One concern of the data
layer, so that every layer above (weights, experiments, lift, tables, pipeline) reads it
from here without importing one another.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from geo.data.core import DataError
from geo.data.h36m import check_layout

_DATA_IDS: dict = {}


def _npz_digest(path: Path) -> bytes | None:
    """sha256 over an npz's arrays (name, dtype, shape, bytes, in name order), or None when
    it cannot be read as one: the same arrays re-saved (another zip compression, another
    time stamp) have the same digest."""
    h = hashlib.sha256()
    try:
        with np.load(path, allow_pickle=False) as z:
            for k in sorted(z.files):
                a = np.ascontiguousarray(z[k])
                h.update(f"{k}\0{a.dtype.str}\0{a.shape}\0".encode())
                h.update(a.tobytes())
    except (OSError, ValueError, EOFError, KeyError) as e:  # not an npz: hashed as bytes
        del e
        return None
    return h.digest()


def data_identity(data) -> str:
    """What a data argument holds, independent of where it lies: ``"embedded"``, or a
    sha256 over the relative names and contents of the files under the path (an ``.npz``
    by its arrays, so that a copy whose npz were re-compressed -- e.g. unpacked from the
    smaller form a GPU run carries, ``scripts/device_data.py`` -- is the same data;
    other files by their bytes, files over 64 MiB by size and first and last MiB). The
    same copy at another path (a GPU machine) has the same identity; an edited file has
    another. Cached per process by (path, sizes, mtimes)."""
    if data in ("embedded", "default", None):
        return "embedded"
    root = Path(data).resolve()
    if not root.exists():
        raise DataError(f"{root}: no such data file or folder")
    files = sorted(p for p in (root.rglob("*") if root.is_dir() else [root])
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root.parent).parts))
    stats = [(p, p.stat()) for p in files]
    key = (str(root), tuple((str(p), st.st_size, st.st_mtime_ns) for p, st in stats))
    if key not in _DATA_IDS:
        h = hashlib.sha256()
        for p, st in stats:
            name = p.relative_to(root) if root.is_dir() else p.name
            arrays = _npz_digest(p) if p.suffix == ".npz" else None
            if arrays is not None:
                h.update(f"{name}\0npz\0".encode() + arrays)
                continue
            h.update(f"{name}\0{st.st_size}\0".encode())
            with open(p, "rb") as f:
                if st.st_size <= 64 << 20:
                    h.update(hashlib.sha256(f.read()).digest())
                else:
                    h.update(f.read(1 << 20))
                    f.seek(-(1 << 20), 2)
                    h.update(f.read(1 << 20))
        _DATA_IDS[key] = h.hexdigest()
    return _DATA_IDS[key]


def data_tag(data: str) -> str:
    """Folder name for a data argument: ``embedded``, or the path's last two parts
    (readable) plus 8 hex digits of :func:`data_identity` (unique)."""
    if data in ("embedded", "default", None):
        return "embedded"
    tail = re.sub(r"[^A-Za-z0-9]+", "_", "_".join(Path(data).resolve().parts[-2:])).strip("_")[-32:]
    return f"{tail}-{data_identity(data)[:8]}"


def data_key(data: str) -> str:
    """8 hex digits that tell data apart in a folder name, for data that may not be here
    (:func:`data_tag` is for data that is): of its identity (:func:`data_identity`) when
    the path holds a Human3.6M copy here, else of the path (results drawn from a run whose
    data lay elsewhere). The data may be named by a file (a precomputed JSON's meta), so
    only a Human3.6M layout is hashed, never whatever folder it names."""
    try:
        check_layout(data)
        return data_identity(data)[:8]
    except (DataError, OSError):
        return hashlib.sha256(str(Path(data).expanduser().resolve()).encode()).hexdigest()[:8]

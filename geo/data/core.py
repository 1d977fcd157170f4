"""The in-memory dataset structure and the checks every loader shares.

``Dataset``: ``sequences[subject][action] = Sequence`` with ``poses_3d`` (T, 17, 3) in
mm, world coordinates (may be None when a dataset has no 3D for a sequence) and
``poses_2d[camera_id]`` (T, 16, 2) pixels in SH16 order, plus
``cameras[subject][camera_id] = Camera``. The loaders (:mod:`geo.data.h36m`,
:mod:`geo.data.embedded`, :mod:`geo.data.mpi_inf_3dhp`, :mod:`geo.data.mpii`) import
from here; :mod:`geo.data` re-exports all of it beside :func:`geo.data.load`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geo.cameras import Camera


class DataError(ValueError):
    """Bad or missing input. The message names the file and what was expected."""


@dataclass
class Sequence:
    poses_3d: np.ndarray | None
    poses_2d: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self):
        if self.poses_3d is not None:
            return len(self.poses_3d)
        return min(len(v) for v in self.poses_2d.values()) if self.poses_2d else 0


@dataclass
class Dataset:
    name: str
    source: str
    sequences: dict[str, dict[str, Sequence]]
    cameras: dict[str, dict[str, Camera]]
    fps: float = 10.0
    notes: str = ""
    train_subjects: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
    test_subjects: tuple[str, ...] = ("S9", "S11")

    @property
    def subjects(self):
        return list(self.sequences)

    def camera(self, subject: str, camera_id: str) -> Camera:
        if subject not in self.cameras:
            raise DataError(f"{self.source}: unknown subject {subject!r}; expected one of {sorted(self.cameras)}")
        cams = self.cameras[subject]
        if camera_id not in cams:
            raise DataError(f"{self.source}: unknown camera {camera_id!r} for {subject}; expected one of {sorted(cams)}")
        return cams[camera_id]

    def subset(self, subjects) -> "Dataset":
        """A view on some subjects; raises DataError for an unknown subject."""
        for s in subjects:
            if s not in self.sequences:
                raise DataError(f"{self.source}: unknown subject {s!r}; expected one of {sorted(self.sequences)}")
        return Dataset(self.name, self.source, {s: self.sequences[s] for s in subjects},
                       {s: self.cameras[s] for s in subjects if s in self.cameras}, self.fps, self.notes,
                       tuple(s for s in self.train_subjects if s in subjects),
                       tuple(s for s in self.test_subjects if s in subjects))


MAX_ABS = 1e5
"""The largest magnitude a loaded pose coordinate may have, in its unit (mm or px): 100 m,
or 100000 px. Finite values beyond it (1e30) are not a recording but a broken file."""


def check_array(a: np.ndarray, shape_tail: tuple, where: str, what: str, bound: float | None = None) -> np.ndarray:
    """Validate a pose array: trailing shape, finite values (as float32, the type it is
    returned in) and, given ``bound``, magnitudes of at most ``bound`` (the loaders pass
    :data:`MAX_ABS` for mm or px, 100 for metres). Names ``where`` on error."""
    a = np.asarray(a)
    if a.ndim != len(shape_tail) + 1 or tuple(a.shape[1:]) != tuple(shape_tail):
        raise DataError(f"{where}: expected {what} of shape (T, {', '.join(map(str, shape_tail))}), got {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise DataError(f"{where}: expected numbers for {what}, got dtype {a.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        a32 = a.astype(np.float32, copy=False)
    # checked after the cast: a finite float64 beyond float32's range (1e39) becomes inf
    if not np.all(np.isfinite(a32)):
        bad = int(np.count_nonzero(~np.isfinite(a32)))
        big = int(np.count_nonzero(np.isfinite(a) & ~np.isfinite(a32)))
        why = f" ({big} of them finite values beyond float32's range, ±3.4e38)" if big else ""
        raise DataError(f"{where}: {what} contains {bad} NaN/inf values{why}")
    peak = float(np.abs(a32).max()) if a32.size else 0.0
    if bound is not None and peak > bound:
        raise DataError(f"{where}: {what} has values up to {peak:.4g}; expected magnitudes of at most {bound:g}")
    return a32


def require_frames(seqs: dict, where) -> None:
    """DataError naming ``where`` when no sequence of ``seqs`` ({subject: {action:
    Sequence}}) has a frame: training and the experiments need some."""
    if not any(len(q) for acts in seqs.values() for q in acts.values()):
        raise DataError(f"{where}: every sequence has zero frames; expected poses with at least one frame")


def data_files(folder, pattern: str) -> list[Path]:
    """The files of ``folder`` matching ``pattern``, sorted; names starting with a dot
    (macOS ``._Walking 1.h5``, editors' temp files) are left out, as
    ``geo.data.identity.data_identity`` leaves them out. A match that is not a regular file
    (a FIFO, a device) raises DataError naming it: opening one would hang or mislead."""
    out = []
    for p in sorted(Path(folder).glob(pattern)):
        if p.name.startswith("."):
            continue
        if not p.is_file():
            raise DataError(f"{p}: not a regular file; expected a data file")
        out.append(p)
    return out


MAX_LAG_S = 0.3
"""How much longer the 2D detections of a sequence may be than its 3D poses, or the
reverse, in seconds: 0.3 s = 3 frames at 10 Hz (15 at 50 Hz). Within it the shorter is
used (frames aligned by index from frame 0); beyond it the two are not the same recording
and loading raises :class:`DataError`."""


def max_lag(fps: float) -> int:
    """:data:`MAX_LAG_S` in frames at ``fps``."""
    return int(round(MAX_LAG_S * fps))


def aligned_length(n_3d: int, n_2d: int, where_3d: str, where_2d: str, fps: float = 10.0) -> int:
    """The common length of a sequence's 3D poses (``n_3d`` frames, from ``where_3d``) and
    one camera's 2D detections (``n_2d``, ``where_2d``): the shorter, when they differ by
    at most :func:`max_lag` frames; else DataError naming both and both lengths."""
    tol = max_lag(fps)
    if abs(int(n_3d) - int(n_2d)) > tol:
        raise DataError(f"{where_2d} has {n_2d} frames but {where_3d} has {n_3d}: 2D detections and 3D poses "
                        f"differ by more than {tol} frames ({MAX_LAG_S} s at {fps:g} Hz); expected the same recording")
    return min(int(n_3d), int(n_2d))


def check_alignment(seq: "Sequence", where_3d: str, where_2d: dict, fps: float = 10.0) -> None:
    """:func:`aligned_length` for every camera of ``seq`` that has 3D (``where_2d``:
    camera id -> where its detections came from)."""
    if seq.poses_3d is None:
        return
    for cid, a in seq.poses_2d.items():
        aligned_length(len(seq.poses_3d), len(a), where_3d, where_2d[cid], fps)


def require_dir(path, layout: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataError(f"{path}: folder not found; expected {layout}")
    return path

"""Datasets in one in-memory structure.

``Dataset``: ``sequences[subject][action] = Sequence`` with ``poses_3d`` (T, 17, 3) in
mm, world coordinates (may be None when a dataset has no 3D for a sequence) and
``poses_2d[camera_id]`` (T, 16, 2) pixels in SH16 order, plus
``cameras[subject][camera_id] = Camera``.

Loaders: :mod:`geo.data.h36m` (Human3.6M, original 3d-pose-baseline layout and the
compact pack), :mod:`geo.data.embedded` (the no-dataset default),
:mod:`geo.data.mpi_inf_3dhp`, :mod:`geo.data.mpii`. :func:`load` picks one by name. The
structure and the checks the loaders share are in :mod:`geo.data.core`, re-exported here.
"""
from __future__ import annotations

from geo.data.core import (MAX_ABS, MAX_LAG_S, DataError, Dataset, Sequence, aligned_length,  # noqa: F401
                           check_alignment, check_array, data_files, max_lag, require_dir, require_frames)
from geo.data.embedded import load_embedded
from geo.data.h36m import load_h36m


def load(name: str = "embedded", **kwargs) -> Dataset:
    """Load a dataset by name: ``"embedded"`` (no files needed) or a path to a Human3.6M
    copy, in either the original 3d-pose-baseline layout or the compact pack."""
    if name in ("embedded", "default", None):
        return load_embedded(**kwargs)
    return load_h36m(name, **kwargs)

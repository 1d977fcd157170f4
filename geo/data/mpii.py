"""MPII Human Pose (Andriluka et al., CVPR 2014) 2D annotations.

Read here: the mmpose/HRNet-style JSON (``mpii_train.json``, ``mpii_val.json``; the
test fixture is ``test_mpii.json``), a list with one entry per annotated person::

    {"image": "005808361.jpg", "center": [966.0, 340.0], "scale": 4.718488,
     "joints": [[804.0, 711.0], ...16 pairs...], "joints_vis": [1, 1, ...16 flags...]}

* ``joints`` (16, 2) pixels (x, y) in the full image, MPII order (below).
* ``joints_vis`` (16,) 1 where the joint is annotated; in the fixture, joints with
  ``joints_vis`` 0 are stored as (-1, -1). It is not the MPII ``is_visible``
  (occlusion) flag.
* ``center`` (2,) px: rough person centre (MPII ``objpos``); ``scale``: person box
  size / 200 px (MPII ``scale``, relative to a 200 px person height).
* Pixel values are kept as in the official ``.mat`` (MATLAB, 1-based): mmpose subtracts
  1 from ``center`` when loading, HRNet's loader from ``center`` and ``joints``.
  :func:`load_mpii_json` returns values as stored; ``zero_based=True`` subtracts 1 from
  the centre and from annotated joints.

MPII joint order (``MPII16_NAMES``; ids 0..15 of the official ``annopoints.point.id``):
r_ankle, r_knee, r_hip, l_hip, l_knee, l_ankle, pelvis, thorax, upper_neck, head_top,
r_wrist, r_elbow, r_shoulder, l_shoulder, l_elbow, l_wrist. This is the order of the
stacked-hourglass detections, :data:`geo.skeleton.SH16_NAMES` (RFoot RKnee RHip LHip
LKnee LFoot Hip Spine Thorax Head RWrist RElbow RShoulder LShoulder LElbow LWrist; SH
"Spine" = MPII thorax, SH "Thorax" = MPII upper neck, SH "Head" = MPII head top), so
``MPII16_TO_SH16`` is the identity.

The official ``mpii_human_pose_v1_u12_1.mat`` (the ``RELEASE`` struct with
``annolist(i).annorect(j).annopoints.point``) is **not** read: its nested MATLAB
structs (single persons squeezed to scalars, missing ``annopoints``, empty
``is_visible``) need a converter of their own. Convert it to the JSON above (the
HRNet/mmpose release ships ``mpii_train.json``/``mpii_val.json``) and load that.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geo.data.core import MAX_ABS, DataError, check_array

MPII16_NAMES = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder",
    "l_elbow", "l_wrist",
)
MPII16_PARENTS = (1, 2, 6, 6, 3, 4, -1, 6, 7, 8, 11, 12, 7, 7, 13, 14)
MPII16_ROOT = 6
# For each geo.skeleton.SH16 joint, its MPII index: the same order, so the identity.
MPII16_TO_SH16 = tuple(range(16))

EXPECT = ("an mmpose/HRNet MPII JSON: a list of {image, center [x, y], scale, "
          "joints (16 x [x, y]), joints_vis (16)}")

assert len(MPII16_NAMES) == len(MPII16_PARENTS) == 16


@dataclass
class MPIIAnnotations:
    """N annotated persons: ``joints`` (N, 16, 2) px MPII order, ``visible`` (N, 16)
    bool (annotated), ``center`` (N, 2) px, ``scale`` (N,) box size / 200 px."""
    source: str
    image_names: tuple[str, ...]
    joints: np.ndarray
    visible: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    joint_names: tuple[str, ...] = MPII16_NAMES

    def __len__(self):
        return len(self.joints)


def _entry(path, i, e):
    where = f"{path}[{i}]"
    if not isinstance(e, dict):
        raise DataError(f"{where}: got {type(e).__name__}; expected {EXPECT}")
    missing = [k for k in ("image", "center", "scale", "joints", "joints_vis") if k not in e]
    if missing:
        raise DataError(f"{where}: missing keys {missing}; expected {EXPECT}")
    try:
        j = np.asarray(e["joints"], dtype=np.float64)
        v = np.asarray(e["joints_vis"], dtype=np.float64).ravel()
        c = np.asarray(e["center"], dtype=np.float64).ravel()
        s = float(e["scale"])
    except (TypeError, ValueError) as err:
        raise DataError(f"{where}: non-numeric joints/joints_vis/center/scale ({err}); expected {EXPECT}") from err
    if j.ndim != 2 or j.shape[1] != 2:
        raise DataError(f"{where}['joints']: shape {j.shape}; expected (16, 2)")
    if len(j) != 16:
        raise DataError(f"{where}['joints']: {len(j)} joints; expected 16 (MPII)")
    if len(v) != 16:
        raise DataError(f"{where}['joints_vis']: {len(v)} flags; expected 16 (MPII)")
    if not np.all(np.isfinite(j)):
        raise DataError(f"{where}['joints']: {int(np.count_nonzero(~np.isfinite(j)))} NaN/inf values; "
                        f"expected finite pixels (unannotated joints are (-1, -1) with joints_vis 0)")
    if len(c) != 2:
        raise DataError(f"{where}['center']: {len(c)} values; expected [x, y]")
    if not (math.isfinite(s) and s > 0) or not np.all(np.isfinite(c)) or not np.all(np.isfinite(v)):
        raise DataError(f"{where}: NaN/inf or non-positive value in center/scale/joints_vis")
    return str(e["image"]), j, v > 0, c, s


def load_mpii_json(path, zero_based: bool = False) -> MPIIAnnotations:
    """The mmpose/HRNet MPII JSON (module docstring) -> :class:`MPIIAnnotations`."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: file not found; expected {EXPECT}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: truncated or corrupt JSON ({e}); expected {EXPECT}") from e
    if not isinstance(data, list):
        keys = f" with keys {sorted(data)[:6]}" if isinstance(data, dict) else ""
        raise DataError(f"{path}: top level is a {type(data).__name__}{keys}; expected {EXPECT}")
    if not data:
        raise DataError(f"{path}: empty list; expected {EXPECT}")
    rows = [_entry(path, i, e) for i, e in enumerate(data)]
    joints = check_array(np.stack([r[1] for r in rows]), (16, 2), f"{path}[joints]", "MPII joints (16, px)",
                         bound=MAX_ABS)
    vis = np.stack([r[2] for r in rows])
    center = np.stack([r[3] for r in rows]).astype(np.float32)
    scale = np.array([r[4] for r in rows], np.float32)
    if zero_based:
        joints = np.where(vis[..., None], joints - 1, joints).astype(np.float32)
        center = center - 1
    return MPIIAnnotations(str(path), tuple(r[0] for r in rows), joints, vis, center, scale)

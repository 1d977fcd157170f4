"""Joint lists and bones, as plain data.

Two skeletons are used, as in the paper (Sec. 3.1, "a pre-trained 2D human pose
estimator ... K key point heatmaps"; K = 16):

* ``H36M17``: the 17-joint Human3.6M skeleton of the 3D ground truth
  (3d-pose-baseline order; L/R are the subject's own sides).
* ``SH16``: the 16-joint MPII-style skeleton of the stacked-hourglass detections
  (3d-pose-baseline ``SH_NAMES`` order). Its 15 bones are the K-1 = 15 channels
  of the skeleton maps.

``SH16_TO_H36M17`` is the one mapping between them (the nominal 3d-pose-baseline
correspondence: the 3D joint whose projection stands in for each detected joint).
"""
from __future__ import annotations

import numpy as np

H36M17_NAMES = (
    "Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax",
    "Neck/Nose", "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
)
H36M17_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
H36M17_ROOT = 0

SH16_NAMES = (
    "RFoot", "RKnee", "RHip", "LHip", "LKnee", "LFoot", "Hip", "Spine", "Thorax",
    "Head", "RWrist", "RElbow", "RShoulder", "LShoulder", "LElbow", "LWrist",
)
# Tree of the 2D skeleton (MPII convention): SH "Spine" is the MPII thorax, where the
# shoulders attach; SH "Thorax" is the upper neck and "Head" the head top.
SH16_PARENTS = (1, 2, 6, 6, 3, 4, -1, 6, 7, 8, 11, 12, 7, 7, 13, 14)
SH16_ROOT = 6

# For each SH16 joint, the H36M17 joint it stands for (nominal mapping).
SH16_TO_H36M17 = (3, 2, 1, 4, 5, 6, 0, 7, 8, 10, 16, 15, 14, 11, 12, 13)

# The 15 bones (child, parent) of SH16, in joint order: one skeleton-map channel each.
SH16_BONES = tuple((j, p) for j, p in enumerate(SH16_PARENTS) if p >= 0)
N_BONES = len(SH16_BONES)  # 15

# Left/right joint swaps, used to mirror poses.
H36M17_FLIP = (0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13)
SH16_FLIP = (5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10)

assert len(H36M17_NAMES) == len(H36M17_PARENTS) == 17
assert len(SH16_NAMES) == len(SH16_PARENTS) == len(SH16_TO_H36M17) == 16
assert N_BONES == 15


def h36m17_to_sh16(x: np.ndarray) -> np.ndarray:
    """Select the 16 joints of the 2D skeleton from a (..., 17, D) H36M array."""
    if x.shape[-2] != 17:
        raise ValueError(f"expected (..., 17, D) H36M joints, got shape {x.shape}")
    return x[..., list(SH16_TO_H36M17), :]


def root_relative(x: np.ndarray, root: int = H36M17_ROOT) -> np.ndarray:
    """Subtract the root joint: (..., J, 3) -> (..., J, 3)."""
    return x - x[..., root : root + 1, :]


def bone_lengths(x: np.ndarray, parents=H36M17_PARENTS) -> np.ndarray:
    """Length of every non-root bone: (..., J, D) -> (..., J-1)."""
    idx = [j for j, p in enumerate(parents) if p >= 0]
    par = [parents[j] for j in idx]
    return np.linalg.norm(x[..., idx, :] - x[..., par, :], axis=-1)

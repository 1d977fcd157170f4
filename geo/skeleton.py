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


# How the 2D joints of virtual-camera views are made from the 3D joints (geo.pairs):
# "nominal" takes SH16_TO_H36M17's joint; "detector" a per-joint weighted mean of the
# nominal joint and its neighbours, fitted to the detections (fit_joint_map).
VIRTUAL_JOINTS = ("nominal", "detector")


def nominal_joint_map() -> np.ndarray:
    """SH16_TO_H36M17 as a (16, 17) selection matrix: x16 = W @ x17."""
    w = np.zeros((16, 17), np.float64)
    w[np.arange(16), list(SH16_TO_H36M17)] = 1.0
    return w


def fit_joint_map(x17: np.ndarray, x16: np.ndarray) -> np.ndarray:
    """Weights W (16, 17), each row summing to 1, with W @ x17 the least-squares fit of the
    detected joints ``x16`` (N, 16, 2) from the projected 3D joints ``x17`` (N, 17, 2).

    Why: the detector's joints are not the 3D joints' projections (``../shared/data``'s
    README: SH "Spine" sits on the 3D Thorax, 46 px from 3D Spine; SH "Head" is the head
    top, 23 px from H36M's head end site). Virtual views drawn through the nominal mapping
    then have torso and head channels unlike those of the real maps the encoder meets at
    test time (Sec. 3.1's virtual cameras). Each SH joint may use its nominal H36M joint,
    that joint's parent and its children; the weights sum to 1, so the map commutes with
    translation and, up to projection, with the camera."""
    x17, x16 = np.asarray(x17, np.float64), np.asarray(x16, np.float64)
    if x17.ndim != 3 or x17.shape[1:] != (17, 2) or x16.shape != (len(x17), 16, 2):
        raise ValueError(f"expected x17 (N, 17, 2) and x16 (N, 16, 2), got {x17.shape} and {x16.shape}")
    w = np.zeros((16, 17), np.float64)
    for j, n in enumerate(SH16_TO_H36M17):
        near = [k for k in range(17) if k != n and (H36M17_PARENTS[n] == k or H36M17_PARENTS[k] == n)]
        # x16_j - x17_n = sum_k v_k (x17_k - x17_n): the weights (1 - sum v, v) sum to 1
        A = (x17[:, near] - x17[:, n : n + 1]).transpose(0, 2, 1).reshape(-1, len(near))
        b = (x16[:, j] - x17[:, n]).reshape(-1)
        v = np.linalg.lstsq(A, b, rcond=None)[0]
        w[j, near], w[j, n] = v, 1.0 - v.sum()
    return w


def root_relative(x: np.ndarray, root: int = H36M17_ROOT) -> np.ndarray:
    """Subtract the root joint: (..., J, 3) -> (..., J, 3)."""
    return x - x[..., root : root + 1, :]


def bone_lengths(x: np.ndarray, parents=H36M17_PARENTS) -> np.ndarray:
    """Length of every non-root bone: (..., J, D) -> (..., J-1)."""
    idx = [j for j, p in enumerate(parents) if p >= 0]
    par = [parents[j] for j in idx]
    return np.linalg.norm(x[..., idx, :] - x[..., par, :], axis=-1)

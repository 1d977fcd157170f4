"""Keypoint layouts users bring, mapped to the 16 joints the generator draws (SH16).

The encoder phi was trained on skeleton maps of the stacked-hourglass / MPII 16-joint
skeleton (:data:`geo.skeleton.SH16_NAMES`, Sec. 3.1's K = 16). Other 2D estimators give
other joints; each SH16 joint is then a weighted mean of theirs (rows sum to 1, so a
mapping commutes with translation and scale of the image):

* ``"sh16"``: the joints themselves, in ``SH16_NAMES`` order.
* ``"coco17"``: COCO's 17 keypoints (``COCO17_NAMES``; MMPose, Detectron2, YOLO-pose,
  OpenPifPaf order). Pelvis = mean of the hips, thorax = mean of the shoulders, upper
  neck = half way from the shoulders' midpoint to the ears' midpoint, head top = the
  eyes' midpoint plus twice (eyes' midpoint - nose). COCO has no neck or crown: these
  two are a geometric choice (not fitted), like MediaPipe's in :mod:`geo.wild`.
* ``"mediapipe33"``: MediaPipe Pose's 33 landmarks (``MP33_NAMES``, also
  :data:`geo.wild.MP33_NAMES`), mapped by ``SH16_FROM_MP33`` as :mod:`geo.wild`'s docstring
  documents (:func:`geo.wild.mp33_to_sh16`).

Left/right are the person's own sides in every layout.
"""
from __future__ import annotations

import numpy as np

COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
_HIPS, _SHOULDERS, _EARS, _EYES = {11: 0.5, 12: 0.5}, {5: 0.5, 6: 0.5}, {3: 0.5, 4: 0.5}, {1: 0.5, 2: 0.5}


def combine(*terms) -> dict:
    """{keypoint: weight} of a weighted sum of such dicts: ``combine((w1, d1), (w2, d2))``."""
    out: dict = {}
    for w, d in terms:
        for k, v in d.items():
            out[k] = out.get(k, 0.0) + w * v
    return out


SH16_FROM_COCO17 = (
    {16: 1.0}, {14: 1.0}, {12: 1.0}, {11: 1.0}, {13: 1.0}, {15: 1.0},
    _HIPS,                                           # pelvis
    _SHOULDERS,                                      # thorax
    combine((0.5, _SHOULDERS), (0.5, _EARS)),          # upper neck
    combine((3.0, _EYES), (-2.0, {0: 1.0})),           # head top: eyes + 2 (eyes - nose)
    {10: 1.0}, {8: 1.0}, {6: 1.0}, {5: 1.0}, {7: 1.0}, {9: 1.0},
)
assert len(SH16_FROM_COCO17) == 16 and all(abs(sum(d.values()) - 1) < 1e-9 for d in SH16_FROM_COCO17)

MP33_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)
assert len(MP33_NAMES) == 33

# For each SH16 joint: {MediaPipe landmark: weight}; weights sum to 1 (the table and the
# reasons are in geo.wild's module docstring).
_MP_SHOULDERS = {11: 0.5, 12: 0.5}
_MP_MOUTH = {9: 0.5, 10: 0.5}
_MP_EYES = {2: 0.5, 5: 0.5}


SH16_FROM_MP33 = (
    {28: 1.0}, {26: 1.0}, {24: 1.0}, {23: 1.0}, {25: 1.0}, {27: 1.0},
    {23: 0.5, 24: 0.5},                                   # pelvis
    _MP_SHOULDERS,                                        # thorax
    combine((0.5, _MP_SHOULDERS), (0.5, _MP_MOUTH)),      # upper neck
    combine((2.5, _MP_EYES), (-1.5, _MP_MOUTH)),          # head top: eyes + 1.5 (eyes - mouth)
    {16: 1.0}, {14: 1.0}, {12: 1.0}, {11: 1.0}, {13: 1.0}, {15: 1.0},
)
assert len(SH16_FROM_MP33) == 16 and all(abs(sum(d.values()) - 1) < 1e-9 for d in SH16_FROM_MP33)


def mapping_matrix() -> np.ndarray:
    """(16, 33) weights W with sh16 = W @ mp33 (rows sum to 1)."""
    W = np.zeros((16, 33))
    for j, d in enumerate(SH16_FROM_MP33):
        for k, w in d.items():
            W[j, k] = w
    return W


SIZES = {"sh16": 16, "coco17": 17, "mediapipe33": 33}


def matrix(layout: str) -> np.ndarray:
    """(16, K) weights W of ``layout`` with sh16 = W @ keypoints."""
    if layout == "sh16":
        return np.eye(16)
    if layout == "coco17":
        W = np.zeros((16, 17))
        for j, d in enumerate(SH16_FROM_COCO17):
            for k, w in d.items():
                W[j, k] = w
        return W
    if layout == "mediapipe33":
        return mapping_matrix()
    raise ValueError(f"layout {layout!r}: expected one of {sorted(SIZES)}")


def to_sh16(keypoints, layout: str = "sh16") -> np.ndarray:
    """Keypoints (N, K, 2) (or (K, 2)) of ``layout`` -> SH16 joints (N, 16, 2) float32
    (module docstring). ValueError naming the layout and the shape expected."""
    W = matrix(layout)
    a = np.asarray(keypoints, np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[1] != W.shape[1] or a.shape[2] < 2:
        raise ValueError(f"layout {layout!r}: expected keypoints of shape (N, {W.shape[1]}, 2), got {np.shape(keypoints)}")
    if not np.isfinite(a[..., :2]).all():
        raise ValueError(f"layout {layout!r}: keypoints hold NaN or Inf; fill or drop missing joints first")
    return np.einsum("jk,nkd->njd", W, a[..., :2]).astype(np.float32)

"""Evaluation metrics (paper Sec. 4, "Evaluation Protocols").

* ``mpjpe``: Protocol #1, mean per-joint position error (mm) of root-relative poses.
* ``p_mpjpe``: Protocol #2, MPJPE after a similarity Procrustes alignment (rotation,
  uniform scale, translation) of the prediction to the ground truth; a reflection is
  never allowed (the sign of the smallest singular direction is flipped).
* ``n_mpjpe``: MPJPE after the optimal uniform scale only (Rhodin et al. 2018).
* ``per_action``: the H36M convention: average within each action, then over actions.
* ``pck`` / ``auc``: MPI-INF-3DHP, percentage of joints within 150 mm, and the area under
  the PCK curve over 0..150 mm at 31 thresholds (5 mm steps).

All take numpy arrays (N, J, 3) in mm and return per-sample errors unless stated.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np


def _check(pred, gt):
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape or pred.shape[-1] != 3:
        raise ValueError(f"pred and gt must both be (N, J, 3); got {pred.shape} and {gt.shape}")
    return pred, gt


def mpjpe(pred, gt):
    """Per-sample mean joint error (N,), mm."""
    pred, gt = _check(pred, gt)
    return np.linalg.norm(pred - gt, axis=-1).mean(-1)


def procrustes_align(pred, gt, scale: bool = True):
    """Align each ``pred`` (N, J, 3) to ``gt`` by the similarity transform minimising the
    squared error (Umeyama 1991); no reflection. Returns the aligned prediction."""
    pred, gt = _check(pred, gt)
    mp, mg = pred.mean(1, keepdims=True), gt.mean(1, keepdims=True)
    p0, g0 = pred - mp, gt - mg
    H = np.einsum("nji,njk->nik", p0, g0)           # (N, 3, 3) = P^T G
    U, S, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", U, Vt)))
    D = np.ones_like(S)
    D[:, -1] = d                                       # flip the last axis if a reflection
    R = np.einsum("nij,nj,njk->nik", U, D, Vt)         # p0 @ R ~ g0
    if scale:
        s = (S * D).sum(-1) / (p0 ** 2).sum((1, 2)).clip(1e-12)
    else:
        s = np.ones(len(pred))
    return s[:, None, None] * np.einsum("nji,nik->njk", p0, R) + mg


def p_mpjpe(pred, gt):
    """Protocol #2: MPJPE after similarity Procrustes alignment (N,)."""
    return mpjpe(procrustes_align(pred, gt), gt)


def n_mpjpe(pred, gt):
    """MPJPE after the least-squares uniform scale of ``pred`` (N,)."""
    pred, gt = _check(pred, gt)
    s = (pred * gt).sum((1, 2)) / (pred * pred).sum((1, 2)).clip(1e-12)
    return mpjpe(s[:, None, None] * pred, gt)


def action_name(action: str) -> str:
    """'Walking 1' -> 'Walking', 'WalkDog' stays: the H36M action of a sequence name."""
    return action.split(" ")[0]


def per_action(errors, actions):
    """H36M convention: mean per action, then the mean over actions.
    Returns (average, {action: mean})."""
    acc = defaultdict(list)
    for e, a in zip(np.asarray(errors), actions):
        acc[action_name(a)].append(e)
    table = {a: float(np.mean(v)) for a, v in sorted(acc.items())}
    return float(np.mean(list(table.values()))), table


PCK_THRESHOLD = 150.0
AUC_THRESHOLDS = np.linspace(0.0, 150.0, 31)


def pck(pred, gt, threshold: float = PCK_THRESHOLD):
    """Percentage (0-100) of joints within ``threshold`` mm, over all samples and joints."""
    pred, gt = _check(pred, gt)
    return float(100.0 * (np.linalg.norm(pred - gt, axis=-1) <= threshold).mean())


def auc(pred, gt, thresholds=AUC_THRESHOLDS):
    """Mean of PCK over ``thresholds`` (0..150 mm, 31 steps), as a percentage."""
    return float(np.mean([pck(pred, gt, t) for t in thresholds]))


def pck_auc_by_group(pred, gt, groups, scenes: dict) -> dict:
    """MPI-INF-3DHP's Table 2 numbers: PCK@150 mm and AUC, over all rows ("overall") and per
    scene type. ``groups``: one sequence name per row (e.g. "TS3"); ``scenes``: {scene:
    sequence names} (:data:`geo.data.mpi_inf_3dhp.SCENES`). Rows are pooled within a group
    (every joint of every frame counts once), as the official evaluation pools frames.
    Returns {"overall": {"pck", "auc", "frames"}, scene: {...}, ...}; a scene with no rows
    is left out."""
    pred, gt = _check(pred, gt)
    groups = np.asarray(groups)
    if len(groups) != len(pred):
        raise ValueError(f"groups has {len(groups)} entries for {len(pred)} poses; expected one per pose")
    out = {"overall": {"pck": pck(pred, gt), "auc": auc(pred, gt), "frames": len(pred)}}
    for scene, names in scenes.items():
        m = np.isin(groups, list(names))
        if m.any():
            out[scene] = {"pck": pck(pred[m], gt[m]), "auc": auc(pred[m], gt[m]), "frames": int(m.sum())}
    return out

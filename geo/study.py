"""Where Regression#1's gain goes: input and target transforms for a decomposition study.

Paper Sec. 3.4: "F(I) = F_regression(F_G(F_2D(I)))": Regression#1 sees only G, the
encoding of the skeleton maps, and each map is drawn in a square crop 1.2x the pose's 2D
bounding box, centred (:mod:`geo.render`). Sec. 4 ("Results on Human3.6M", Figure 5)
compares it with Baseline#1, "the same regressor on the 2D detections", which sees raw
pixels. The targets (Martinez et al. 2017) are root-relative joints in the *camera*
frame, so their orientation depends on the ray through the root -- which the crop throws
away. This module gives the pieces that separate the two effects:

* :func:`crop_normalise` / :func:`snap_to_grid` / :func:`crop_box`: the 2D joints as
  the renderer sees them (continuous map coordinates, or snapped to the 64 x 64 grid), and
  the 3 numbers the crop removes;
* :func:`ray_rotations` / :func:`to_ray_frame` / :func:`from_ray_frame`: targets in the
  frame whose z axis is the ray through the 2D root, computed from the root pixel and
  the pinhole intrinsics only (no 3D), so that it is available at test time;
* :func:`intrinsics`: per-row focal length and principal point of a
  :class:`geo.regress.Split`.

All functions work on numpy arrays, row-wise; none trains anything.
"""
from __future__ import annotations

import numpy as np
import torch

from geo.render import MAP_SIZE, MARGIN, crop_boxes, to_map_coords
from geo.skeleton import SH16_ROOT


def _check_pose2d(x2d, name: str = "x2d") -> np.ndarray:
    a = np.asarray(x2d)
    if a.ndim != 3 or a.shape[-1] != 2:
        raise ValueError(f"{name} has shape {a.shape}; expected (N, J, 2) pixel poses")
    return a


def crop_box(x2d: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    """(N, J, 2) px -> (N, 3): centre x, centre y and side (px) of the renderer's square
    crop (:func:`geo.render.crop_boxes`): what the skeleton maps no longer hold."""
    a = _check_pose2d(x2d)
    centre, side = crop_boxes(torch.as_tensor(a, dtype=torch.float64), margin)
    return torch.cat([centre, side[:, None]], 1).numpy().astype(np.float32)


def crop_normalise(x2d: np.ndarray, size: int = MAP_SIZE, margin: float = MARGIN) -> np.ndarray:
    """(N, J, 2) px -> (N, J, 2) continuous map coordinates in [0, size): the joints as
    the renderer places them before drawing (:func:`geo.render.to_map_coords`), i.e.
    position and scale in the image removed, sub-pixel detail kept."""
    a = _check_pose2d(x2d)
    return to_map_coords(torch.as_tensor(a, dtype=torch.float64), size, margin).numpy().astype(np.float32)


def snap_to_grid(xm: np.ndarray, size: int = MAP_SIZE) -> np.ndarray:
    """Map coordinates -> the centre (j + 0.5) of the map pixel that holds each point
    (pixel j covers [j, j + 1), :mod:`geo.render`), clipped to the map: the resolution
    at which the skeleton maps can tell where a joint is."""
    a = np.asarray(xm, np.float64)
    return (np.clip(np.floor(a), 0, size - 1) + 0.5).astype(np.float32)


def root_pixels(x2d: np.ndarray, root: int = SH16_ROOT) -> np.ndarray:
    """(N, 16, 2) SH16 px -> (N, 2): the 2D root (the hip, joint ``root``)."""
    a = _check_pose2d(x2d)
    if not 0 <= root < a.shape[1]:
        raise ValueError(f"root joint {root} is outside the {a.shape[1]} joints of x2d")
    return a[:, root].astype(np.float64)


def intrinsics(ds, split) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``split`` (a :class:`geo.regress.Split` with ``subjects`` and
    ``cameras``): focal lengths (N, 2) and principal points (N, 2) in px."""
    if len(split.subjects) != len(split):
        raise ValueError(f"split has {len(split.subjects)} subjects for {len(split)} rows; expected one per row")
    cache = {}
    f = np.empty((len(split), 2))
    c = np.empty((len(split), 2))
    for i, key in enumerate(zip(split.subjects, split.cameras)):
        if key not in cache:
            cam = ds.camera(*key)
            cache[key] = (np.asarray(cam.f, np.float64).ravel(), np.asarray(cam.c, np.float64).ravel())
        f[i], c[i] = cache[key]
    return f, c


def ray_directions(root_px: np.ndarray, f: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(N, 2) px, (N, 2) or (2,) focal lengths and principal points -> (N, 3) unit rays
    through the pixels, pinhole model (lens distortion ignored: it moves the Human3.6M
    root by well under a degree)."""
    u = np.asarray(root_px, np.float64)
    if u.ndim != 2 or u.shape[1] != 2:
        raise ValueError(f"root_px has shape {u.shape}; expected (N, 2) pixels")
    d = np.concatenate([(u - c) / f, np.ones((len(u), 1))], 1)
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def ray_rotations(root_px: np.ndarray, f: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations R with R @ ray = +z: the smallest rotation (about ray x z)
    taking the ray through the 2D root onto the optical axis. Rodrigues' formula
    R = I + [v]x + [v]x^2 / (1 + cos), v = ray x z, cos = ray . z; cos > 0 for every point
    in front of the camera, so it is stable."""
    d = ray_directions(root_px, f, c)
    v = np.cross(d, np.array([0.0, 0.0, 1.0]))
    cos = d[:, 2]
    vx = np.zeros((len(d), 3, 3))
    vx[:, 0, 1], vx[:, 0, 2] = -v[:, 2], v[:, 1]
    vx[:, 1, 0], vx[:, 1, 2] = v[:, 2], -v[:, 0]
    vx[:, 2, 0], vx[:, 2, 1] = -v[:, 1], v[:, 0]
    return np.eye(3) + vx + vx @ vx / (1.0 + cos)[:, None, None]


def ray_angles_deg(root_px: np.ndarray, f: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(N,) angle between the root ray and the optical axis, degrees."""
    return np.degrees(np.arccos(np.clip(ray_directions(root_px, f, c)[:, 2], -1, 1)))


def _check_rot(y, R):
    y = np.asarray(y)
    if y.ndim != 3 or y.shape[-1] != 3 or R.shape != (len(y), 3, 3):
        raise ValueError(f"poses {y.shape} and rotations {R.shape}; expected (N, J, 3) and (N, 3, 3)")
    return y


def to_ray_frame(y: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Camera-frame joints (N, J, 3) -> the ray frame: each joint x -> R x."""
    y = _check_rot(y, R)
    return np.einsum("nij,nkj->nki", R, y).astype(y.dtype)


def from_ray_frame(y: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Ray-frame joints (N, J, 3) -> camera frame: each joint x -> R^T x."""
    y = _check_rot(y, R)
    return np.einsum("nji,nkj->nki", R, y).astype(y.dtype)


def ridge_fit_predict(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, alphas) -> list[np.ndarray]:
    """A linear probe: ridge regression of targets ``y`` (N, ...) on features ``x`` (N, ...),
    inputs z-scored with the training rows' mean/std, targets centred, bias free of the
    penalty. One prediction (N_test, *y.shape[1:]) per alpha (penalty in z-scored units,
    comparable across feature sets of one size). Closed form through one SVD, so a grid
    of alphas costs one fit. How much of the targets a *linear* read-out of G or of the 2D
    joints carries: the representation question of Sec. 3.4 without the FC's recipe."""
    X = np.asarray(x, np.float64).reshape(len(x), -1)
    Xt = np.asarray(x_test, np.float64).reshape(len(x_test), -1)
    Y = np.asarray(y, np.float64).reshape(len(y), -1)
    if len(X) != len(Y) or Xt.shape[1] != X.shape[1]:
        raise ValueError(f"x {X.shape}, y {Y.shape}, x_test {Xt.shape}: expected equal rows for x and y and "
                         f"equal features for x and x_test")
    m, s = X.mean(0), X.std(0) + 1e-6
    ym = Y.mean(0)
    U, S, Vt = np.linalg.svd((X - m) / s, full_matrices=False)
    UtY = U.T @ (Y - ym)
    Z = (Xt - m) / s @ Vt.T
    out = []
    for a in alphas:
        W = (S / (S * S + a))[:, None] * UtY           # in the SVD basis
        out.append((Z @ W + ym).reshape((len(Xt),) + np.asarray(y).shape[1:]).astype(np.float32))
    return out

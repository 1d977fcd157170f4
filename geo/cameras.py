"""Cameras: world <-> camera, projection with distortion, and virtual torus cameras.

Real cameras follow Human3.6M (``cameras.h5``; 3d-pose-baseline convention)::

    X_cam = R @ (X_world - T)        R = R_h5.T (world -> camera), T = centre in mm
    x, y = X/Z, Y/Z;  r2 = x^2 + y^2
    radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3;  t = p1 y + p2 x
    u = x (radial + t) + p2 r2;  v = y (radial + t) + p1 r2
    pixel = f * (u, v) + c

Camera frame: x right, y down, z forward (optical axis).

Virtual cameras (paper Sec. 3.1: "we draw on virtual cameras applied in [7] to increase
training pairs on a torus", after Fang et al., AAAI 2018). Fang et al.'s code is not
public, so the parametrisation is ours and is documented in :class:`Torus`: a camera
centre lies on a torus around the subject -- any azimuth, an elevation band and a
distance band fitted to the real H36M cameras -- and looks at a point near the
subject's root, with a small roll. ``relative_rotation`` gives R(i->j) = R_j R_i^T,
which maps view i's camera-frame (root-relative) pose to view j's.

All functions take numpy arrays or torch tensors (same type out as in).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

# Human3.6M camera ids, in the order of cameras.h5 camera1..camera4.
H36M_CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")


@dataclass
class Camera:
    """A calibrated camera. ``R`` world->camera rotation (3, 3), ``T`` centre (3,) in mm,
    ``f`` focal lengths (2,), ``c`` principal point (2,), ``k`` radial (3,), ``p``
    tangential (2,), ``size`` (width, height) in pixels."""

    id: str
    R: np.ndarray
    T: np.ndarray
    f: np.ndarray
    c: np.ndarray
    k: np.ndarray = field(default_factory=lambda: np.zeros(3))
    p: np.ndarray = field(default_factory=lambda: np.zeros(2))
    size: tuple[int, int] = (1000, 1000)

    def world_to_camera(self, x):
        return world_to_camera(x, self.R, self.T)

    def camera_to_world(self, x):
        return camera_to_world(x, self.R, self.T)

    def project(self, x_world, distort: bool = True):
        """World points (..., 3) in mm -> pixels (..., 2)."""
        xc = self.world_to_camera(x_world)
        if distort:
            return project(xc, self.f, self.c, self.k, self.p)
        return project(xc, self.f, self.c)


def _like(a, ref):
    """``a`` as the array type (and device/dtype) of ``ref``."""
    if isinstance(ref, torch.Tensor):
        return torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a,
                               dtype=ref.dtype, device=ref.device)
    return np.asarray(a, dtype=ref.dtype if np.issubdtype(np.asarray(ref).dtype, np.floating) else np.float64)


def _stack(xs, ref):
    return torch.stack(xs, dim=-1) if isinstance(ref, torch.Tensor) else np.stack(xs, axis=-1)


def world_to_camera(x, R, T):
    """(..., 3) world points -> camera frame: R @ (x - T)."""
    R, T = _like(R, x), _like(T, x)
    return (x - T) @ R.T


def camera_to_world(x, R, T):
    """(..., 3) camera-frame points -> world: R^T @ x + T."""
    R, T = _like(R, x), _like(T, x)
    return x @ R + T


def project(x_cam, f, c, k=None, p=None):
    """Pinhole projection with optional radial (k1, k2, k3) and tangential (p1, p2)
    distortion, H36M / 3d-pose-baseline convention (module docstring)."""
    f, c = _like(f, x_cam), _like(c, x_cam)
    x = x_cam[..., 0] / x_cam[..., 2]
    y = x_cam[..., 1] / x_cam[..., 2]
    if k is not None:
        k, p = _like(k, x_cam), _like(p, x_cam)
        r2 = x * x + y * y
        radial = 1 + k[0] * r2 + k[1] * r2 * r2 + k[2] * r2 * r2 * r2
        tan = p[0] * y + p[1] * x
        u = x * (radial + tan) + p[1] * r2
        v = y * (radial + tan) + p[0] * r2
    else:
        u, v = x, y
    return _stack([u, v], x_cam) * f + c


def relative_rotation(R_i, R_j):
    """R(i->j) = R_j R_i^T: maps camera-i-frame vectors to camera-j-frame. Batched (..., 3, 3)."""
    if isinstance(R_i, torch.Tensor):
        return R_j @ R_i.transpose(-1, -2)
    return R_j @ np.swapaxes(R_i, -1, -2)


# --------------------------------------------------------------------------- torus
def look_at(centre, target, roll=None, up=(0.0, 0.0, 1.0)):
    """World->camera rotations (..., 3, 3) for cameras at ``centre`` looking at ``target``
    (both (..., 3)), world z up; ``roll`` (...) radians about the optical axis."""
    as_t = lambda v: None if v is None else torch.as_tensor(np.asarray(v, dtype=np.float64))  # noqa: E731
    return look_at_torch(as_t(centre), as_t(target), as_t(roll), up).numpy()


def camera_angles(R, T, target):
    """Describe cameras on the torus: (azimuth, elevation, distance, roll) of cameras
    with world->camera rotations ``R`` (..., 3, 3) and centres ``T`` (..., 3) relative to
    ``target`` (..., 3). Roll is the angle of the camera x axis out of the horizontal."""
    d = np.asarray(T, np.float64) - np.asarray(target, np.float64)
    dist = np.linalg.norm(d, axis=-1)
    elev = np.arcsin(d[..., 2] / dist)
    azim = np.arctan2(d[..., 1], d[..., 0])
    roll = np.arcsin(np.clip(-np.asarray(R)[..., 0, 2], -1, 1))
    return azim, elev, dist, roll


@dataclass
class Torus:
    """Where virtual cameras live (Sec. 3.1, after Fang et al. AAAI'18).

    A virtual camera's centre is ``target + distance * (cos e cos a, cos e sin a, sin e)``
    with azimuth ``a ~ U[0, 2pi)`` (all around the subject), elevation
    ``e ~ U[elev_min, elev_max]`` and ``distance ~ U[dist_min, dist_max]``, measured from
    the subject's root ``target``: a thick ring, i.e. a torus, around the subject. The
    camera looks at the root shifted by ``target_height`` along z (negative: the real
    optical axes pass below the pelvis) plus Gaussian jitter ``target_jitter`` (mm).
    Roll ~ N(0, roll_std). Intrinsics ``f``, ``c`` are those of an average H36M camera;
    virtual views are not distorted.

    Defaults: fitted to the real H36M cameras (``fit_torus`` on cameras.h5, subjects
    S1..S11, targets = each sequence's mean root): the elevation and distance bands
    span the real cameras' range widened by 25% on each side, roll_std is their roll
    spread; ``tests/test_cameras.py`` re-fits them on the real data and checks.
    :data:`TORI` names this fit and the one on the training subjects only.
    """

    elev_min: float = math.radians(0.92)
    elev_max: float = math.radians(22.16)
    dist_min: float = 2480.0
    dist_max: float = 7557.0
    target_height: float = -450.0
    target_jitter: float = 195.0
    roll_std: float = math.radians(2.89)
    f: tuple[float, float] = (1147.3, 1146.2)
    c: tuple[float, float] = (514.0, 506.7)

    def sample(self, target, generator: np.random.Generator):
        """Sample one camera per target (N, 3) -> R (N, 3, 3) world->camera, T (N, 3)."""
        target = np.asarray(target, dtype=np.float64).reshape(-1, 3)
        n = len(target)
        a = generator.uniform(0, 2 * np.pi, n)
        e = generator.uniform(self.elev_min, self.elev_max, n)
        d = generator.uniform(self.dist_min, self.dist_max, n)
        look = target + np.array([0, 0, self.target_height]) + generator.normal(0, self.target_jitter, (n, 3))
        centre = target + d[:, None] * np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], -1)
        R = look_at(centre, look, roll=generator.normal(0, self.roll_std, n))
        return R, centre

    def sample_torch(self, target: torch.Tensor, generator: torch.Generator):
        """The same distribution on ``target``'s device, for on-the-fly training pairs:
        target (N, 3) -> R (N, 3, 3), centres (N, 3)."""
        n, dev, dt = target.shape[0], target.device, target.dtype
        u = torch.rand((n, 3), generator=generator, device=dev, dtype=dt)
        a = u[:, 0] * 2 * math.pi
        e = self.elev_min + u[:, 1] * (self.elev_max - self.elev_min)
        d = self.dist_min + u[:, 2] * (self.dist_max - self.dist_min)
        nrm = torch.randn((n, 4), generator=generator, device=dev, dtype=dt)
        look = target + nrm[:, :3] * self.target_jitter
        # a Python scalar, not a host tensor: no host-to-device copy (a sync on CUDA) per batch
        look = torch.cat([look[:, :2], look[:, 2:] + self.target_height], -1)
        off = torch.stack([torch.cos(e) * torch.cos(a), torch.cos(e) * torch.sin(a), torch.sin(e)], -1)
        centre = target + d[:, None] * off
        return look_at_torch(centre, look, nrm[:, 3] * self.roll_std), centre


# The virtual cameras a training run draws from, by name (``TrainConfig.torus``): "all" is
# the :class:`Torus` defaults, fitted on every subject's cameras and sequences (S1..S11);
# "train" is the same fit on the training subjects only (S1 S5 S6 S7 S8, 20 cameras, 146
# sequences), so that nothing of the test subjects S9/S11 shapes the training pairs. The
# two differ by at most 2% in distance and 6% in jitter; tests/test_cameras.py re-fits both.
TORI = {
    "all": Torus(),
    "train": Torus(dist_min=2509.0, dist_max=7412.0, target_height=-444.0, target_jitter=207.0,
                   roll_std=math.radians(3.04)),
}


def look_at_torch(centre: torch.Tensor, target: torch.Tensor, roll: torch.Tensor | None = None,
                  up=(0.0, 0.0, 1.0)) -> torch.Tensor:
    """:func:`look_at` on tensors (any device), batched (..., 3) -> (..., 3, 3)."""
    z = torch.nn.functional.normalize(target - centre, dim=-1)
    up = torch.stack([torch.full_like(z[..., 0], float(u)) for u in up], -1)   # no host-to-device copy
    x = torch.nn.functional.normalize(torch.linalg.cross(z, up), dim=-1)
    y = torch.linalg.cross(z, x)
    R = torch.stack([x, y, z], dim=-2)
    if roll is not None:
        c, s = torch.cos(roll), torch.sin(roll)
        o, i = torch.zeros_like(c), torch.ones_like(c)
        Rz = torch.stack([torch.stack([c, -s, o], -1), torch.stack([s, c, o], -1), torch.stack([o, o, i], -1)], -2)
        R = Rz @ R
    return R


def fit_torus(cameras, targets, widen: float = 0.25) -> Torus:
    """Fit :class:`Torus` to real cameras. ``cameras``: list of :class:`Camera`; ``targets``
    (M, 3): subject root positions (mm, world) the cameras look at. Elevation and distance
    are computed for every (camera, target) pair."""
    R = np.stack([c.R for c in cameras])[:, None]
    T = np.stack([c.T for c in cameras])[:, None]
    tg = np.asarray(targets, np.float64)[None]
    _, elev, dist, roll = camera_angles(np.broadcast_to(R, (R.shape[0], tg.shape[1], 3, 3)), T, tg)
    # Where the optical axis passes nearest to the root, relative to the root's height.
    zaxis = np.stack([c.R[2] for c in cameras])[:, None]
    s = np.einsum("cmk,cmk->cm", tg - T, np.broadcast_to(zaxis, (len(cameras), tg.shape[1], 3)))
    nearest = T + s[..., None] * zaxis
    height = nearest[..., 2] - tg[..., 2]
    off = np.linalg.norm(nearest - tg, axis=-1)

    def band(v):
        lo, hi = float(np.min(v)), float(np.max(v))
        w = hi - lo
        return lo - widen * w, hi + widen * w

    e0, e1 = band(elev)
    d0, d1 = band(dist)
    fs = np.stack([c.f for c in cameras]).mean(0)
    cs = np.stack([c.c for c in cameras]).mean(0)
    return Torus(elev_min=e0, elev_max=e1, dist_min=d0, dist_max=d1,
                 target_height=float(np.median(height)), target_jitter=float(np.std(off)),
                 roll_std=float(np.sqrt(np.mean(np.asarray(roll) ** 2))),
                 f=(float(fs[0]), float(fs[1])), c=(float(cs[0]), float(cs[1])))


def random_rotation_pairs(n: int, generator: np.random.Generator, torus: Torus | None = None):
    """Rotations of ``n`` pairs of torus cameras around a subject at the origin:
    (R_i, R_j) world->camera, each (n, 3, 3). Used when only relative rotations matter."""
    torus = torus or Torus()
    zeros = np.zeros((n, 3))
    Ri, _ = torus.sample(zeros, generator)
    Rj, _ = torus.sample(zeros, generator)
    return Ri, Rj

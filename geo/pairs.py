"""Training pairs for view synthesis, made on the fly on the training device (Sec. 3.1).

"we could sample (i, j) randomly from existing cameras ... [and] utilize virtual
cameras-based data augmentation ... we randomly sample 2D skeleton pairs. Thus, we could
obtain infinite training pairs and calculate their relative rotation matrix."

:class:`PairSource` holds every training frame on the device: 3D poses (world), the 2D
poses of each real camera (detections on Human3.6M), and each camera's rotation. A batch
picks frames and, per sample, either two distinct real cameras or -- with probability
``aug`` -- two virtual torus cameras (:class:`geo.cameras.Torus`) whose 2D views are the
projected 3D joints. Both views are rendered to skeleton maps on the device; R(i->j) =
R_j R_i^T. No DataLoader, no per-sample Python loop.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from geo.cameras import Torus, relative_rotation
from geo.data import Dataset, DataError, aligned_length
from geo.render import LINE_WIDTH, render
from geo.skeleton import SH16_TO_H36M17, VIRTUAL_JOINTS, fit_joint_map


@dataclass
class Batch:
    maps_i: torch.Tensor      # (B, 15, 64, 64)
    maps_j: torch.Tensor
    R_ij: torch.Tensor        # (B, 3, 3)
    x_i: torch.Tensor         # (B, 16, 2) pixels
    x_j: torch.Tensor
    # What each sample was drawn from (read-only, for tests and inspection; training uses
    # none of it): frame index into the source's frames, real camera indices (cj == ci with
    # same_view), whether the pair is virtual, and the world->camera rotations of the two
    # views (virtual ones where ``virtual``), so that R_ij = R_j R_i^T.
    idx: torch.Tensor | None = None      # (B,) long
    ci: torch.Tensor | None = None       # (B,) long
    cj: torch.Tensor | None = None       # (B,) long
    virtual: torch.Tensor | None = None  # (B,) bool
    R_i: torch.Tensor | None = None      # (B, 3, 3)
    R_j: torch.Tensor | None = None


def collect_frames(ds: Dataset, subjects, need_3d: bool = True):
    """Frames of ``subjects`` that have 3D and 2D from every camera of their subject.
    Returns numpy arrays p3 (N, 17, 3), p2 (N, C, 16, 2), R (N, C, 3, 3), T (N, C, 3),
    and a list of (subject, action) per frame."""
    p3s, p2s, Rs, Ts, keys = [], [], [], [], []
    for s in subjects:
        if s not in ds.sequences:
            raise DataError(f"{ds.source}: unknown subject {s!r}; expected one of {sorted(ds.sequences)}")
        cams = ds.cameras[s]
        cids = sorted(cams)
        for a, seq in ds.sequences[s].items():
            if (need_3d and seq.poses_3d is None) or any(c not in seq.poses_2d for c in cids):
                continue
            n = min(len(seq.poses_2d[c]) for c in cids)
            if seq.poses_3d is not None:   # detections vs 3D: the shorter, within geo.data.MAX_LAG_S
                n = min(aligned_length(len(seq.poses_3d), len(seq.poses_2d[c]), f"{ds.source}[{s}/{a}] 3D poses",
                                       f"{ds.source}[{s}/{a}/{c}] 2D detections", ds.fps) for c in cids)
            p3s.append(seq.poses_3d[:n] if seq.poses_3d is not None else np.zeros((n, 17, 3), np.float32))
            p2s.append(np.stack([seq.poses_2d[c][:n] for c in cids], 1))
            Rs.append(np.broadcast_to(np.stack([cams[c].R for c in cids]), (n, len(cids), 3, 3)))
            Ts.append(np.broadcast_to(np.stack([cams[c].T for c in cids]), (n, len(cids), 3)))
            keys += [(s, a)] * n
    if not p3s:
        raise DataError(f"{ds.source}: no frames with 3D and all cameras' 2D for subjects {list(subjects)}")
    return (np.concatenate(p3s).astype(np.float32), np.concatenate(p2s).astype(np.float32),
            np.concatenate(Rs).astype(np.float32), np.concatenate(Ts).astype(np.float32), keys)


class PairSource:
    """On-device sampler of view pairs (module docstring)."""

    def __init__(self, ds: Dataset, subjects, device="cpu", torus: Torus | None = None, seed: int = 0):
        p3, p2, R, T, keys = collect_frames(ds, subjects)
        # What the pairs are drawn from (frames, cameras, virtual-camera ranges): training
        # checkpoints record it, so a run is never resumed on other data.
        h = hashlib.blake2b(digest_size=16)
        for a in (p3, p2, R):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(repr((tuple(subjects), torus or Torus())).encode())
        self.fingerprint = h.hexdigest()
        self.render_compile = False   # torch.compile the renderer (train() sets it on CUDA with cfg.compile)
        dev = torch.device(device)
        self.p3 = torch.as_tensor(p3, device=dev)
        self.p2 = torch.as_tensor(p2, device=dev)
        self.R = torch.as_tensor(R, device=dev)
        self.device = dev
        self.torus = torus or Torus()
        self.n, self.cams = p2.shape[0], p2.shape[1]
        self.gen = torch.Generator(device=dev)
        self.gen.manual_seed(seed)
        self._f = torch.tensor(self.torus.f, device=dev)
        self._c = torch.tensor(self.torus.c, device=dev)
        self._sh16 = torch.tensor(SH16_TO_H36M17, device=dev)
        # for the "detector" joint map, fitted on first use from these frames' own real views
        self._fit_from = (ds, [k[0] for k in keys])
        self._joint_map: torch.Tensor | None = None
        self.joint_map_fit: dict | None = None   # the fit's median px errors (inspection)

    def joint_map(self, frames: int = 4096) -> torch.Tensor:
        """The (16, 17) "detector" joint map (:func:`geo.skeleton.fit_joint_map`), fitted on
        ``frames`` evenly spaced frames of this source, all real cameras (their distorted
        projections of the 3D joints against the detections). Cached."""
        if self._joint_map is None:
            ds, subj = self._fit_from
            rows = np.unique(np.linspace(0, self.n - 1, min(frames, self.n)).round().astype(int))
            p3, p2 = self.p3[rows].cpu().numpy().astype(np.float64), self.p2[rows].cpu().numpy()
            x17, x16 = [], []
            for c in range(self.cams):
                for s in sorted(set(subj[r] for r in rows)):
                    sel = np.array([subj[r] == s for r in rows])
                    cam = ds.cameras[s][sorted(ds.cameras[s])[c]]
                    x17.append(cam.project(p3[sel]))
                    x16.append(p2[sel, c])
            x17, x16 = np.concatenate(x17), np.concatenate(x16)
            w = fit_joint_map(x17, x16)
            err = lambda m: np.median(np.linalg.norm(np.einsum("jk,nkd->njd", m, x17) - x16, axis=-1), axis=0)  # noqa: E731
            nominal = x17[:, list(SH16_TO_H36M17)]
            self.joint_map_fit = {"frames": int(len(rows)), "median_px_nominal": np.median(
                np.linalg.norm(nominal - x16, axis=-1), axis=0).round(2).tolist(), "median_px_fitted": err(w).round(2).tolist()}
            self._joint_map = torch.tensor(w, dtype=torch.float32, device=self.device)
        return self._joint_map

    def _virtual(self, idx: torch.Tensor, joints: str = "nominal", torus: Torus | None = None):
        X = self.p3[idx]                                             # (B, 17, 3) world
        R, C = (torus or self.torus).sample_torch(X[:, 0], self.gen)
        xc = (X - C[:, None]) @ R.transpose(-1, -2)
        x = xc[..., :2] / xc[..., 2:].clamp_min(1.0) * self._f + self._c
        if joints == "detector":
            return torch.einsum("jk,bkd->bjd", self.joint_map(), x), R
        return x[:, self._sh16], R   # a device index: a Python list would copy to the GPU and sync

    def sample(self, batch: int, aug: float = 0.0, same_view: bool = False, dtype=torch.float32,
               width: float = LINE_WIDTH, joints: str = "nominal", torus: Torus | None = None) -> Batch:
        """``batch`` pairs (module docstring); ``joints``: how virtual views' 2D joints come
        from the 3D ones (:data:`geo.skeleton.VIRTUAL_JOINTS`); ``torus``: the virtual
        cameras of this batch (default: the source's)."""
        if joints not in VIRTUAL_JOINTS:
            raise ValueError(f"joints {joints!r}: expected one of {VIRTUAL_JOINTS}")
        g, dev = self.gen, self.device
        idx = torch.randint(0, self.n, (batch,), generator=g, device=dev)
        ci = torch.randint(0, self.cams, (batch,), generator=g, device=dev)
        cj = (ci + torch.randint(1, self.cams, (batch,), generator=g, device=dev)) % self.cams
        x_i, x_j = self.p2[idx, ci], self.p2[idx, cj]
        R_i, R_j = self.R[idx, ci], self.R[idx, cj]
        v = torch.zeros((batch,), dtype=torch.bool, device=dev)
        if aug > 0:
            v = torch.rand((batch,), generator=g, device=dev) < aug
            vx_i, vR_i = self._virtual(idx, joints, torus)
            vx_j, vR_j = self._virtual(idx, joints, torus)
            x_i = torch.where(v[:, None, None], vx_i, x_i)
            x_j = torch.where(v[:, None, None], vx_j, x_j)
            R_i = torch.where(v[:, None, None], vR_i, R_i)
            R_j = torch.where(v[:, None, None], vR_j, R_j)
        if same_view:
            x_j, R_j, cj = x_i, R_i, ci
        maps = render(torch.cat([x_i, x_j]), width=width, dtype=dtype, compile=self.render_compile)
        return Batch(maps[:batch], maps[batch:], relative_rotation(R_i, R_j), x_i, x_j,
                     idx=idx, ci=ci, cj=cj, virtual=v, R_i=R_i, R_j=R_j)

"""3D pose regression on the frozen representation, and the experiments of Figures 5/6.

Paper Sec. 3.4: F(I) = F_regression(F_G(F_2D(I))) = F_regression(G); "we implement the
regression part by simply constructing a two-layers fully-connected neural network".
Sec. 4: "OursShallow" = Regression#1 on G alone; Baseline#1 = the same regressor on the
2D detections.

Data: every (frame, camera) of the chosen subjects with 3D ground truth. Inputs: SH16 2D
(stacked-hourglass detections, or the projected ground truth with ``input2d="gt"``) and G
from a frozen encoder. Targets: the 16 non-root joints, root-relative, in the camera frame
(mm), as in Martinez et al. 2017. Normalisation (Martinez et al.): inputs are z-scored
with the mean/std of all training frames (2D and G need no 3D labels), targets with those
of the k labelled frames.
Evaluation: Protocol #1 MPJPE and Protocol #2 P-MPJPE on all test frames (all cameras),
averaged per action, then over actions (H36M convention).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from geo import metrics
from geo.cameras import world_to_camera
from geo.data import Dataset
from geo.models import Regressor, RegressorConfig
from geo.render import render
from geo.skeleton import h36m17_to_sh16


@dataclass
class Split:
    x2d: np.ndarray        # (N, 16, 2) px
    y: np.ndarray          # (N, 16, 3) mm, root-relative camera frame, non-root joints
    actions: list
    cameras: list


def make_split(ds: Dataset, subjects, input2d: str = "sh") -> Split:
    """All (frame, camera) samples of ``subjects`` with 3D ground truth."""
    xs, ys, acts, cams = [], [], [], []
    for s in subjects:
        for a, seq in ds.sequences[s].items():
            if seq.poses_3d is None:
                continue
            for cid, cam in ds.cameras[s].items():
                if input2d == "sh" and cid not in seq.poses_2d:
                    continue
                n = len(seq.poses_3d) if input2d == "gt" else min(len(seq.poses_3d), len(seq.poses_2d[cid]))
                p3 = seq.poses_3d[:n].astype(np.float64)
                xc = world_to_camera(p3, cam.R, cam.T)
                ys.append((xc[:, 1:] - xc[:, :1]).astype(np.float32))
                if input2d == "gt":
                    xs.append(h36m17_to_sh16(cam.project(p3)).astype(np.float32))
                else:
                    xs.append(seq.poses_2d[cid][:n])
                acts += [a] * n
                cams += [cid] * n
    if not xs:
        raise ValueError(f"no frames with 3D for subjects {list(subjects)}")
    return Split(np.concatenate(xs), np.concatenate(ys), acts, cams)


@torch.no_grad()
def encode(encoder, x2d: np.ndarray, device="cpu", batch: int = 4096) -> np.ndarray:
    """G (N, M, 3) of the frozen encoder for 2D poses (N, 16, 2): render, then encode."""
    encoder.eval()
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    out = []
    for s in range(0, len(x2d), batch):
        x = torch.as_tensor(x2d[s:s + batch], device=dev)
        maps = render(x, dtype=torch.bfloat16 if cuda else torch.float32)
        if cuda:
            maps = maps.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            out.append(encoder(maps).float().cpu())
    return torch.cat(out).numpy()


def _z(a, mean, std):
    return (a - mean) / std


@dataclass
class FitConfig:
    kind: str = "fc"          # "fc" or "martinez"
    use_2d: bool = True
    use_g: bool = False
    steps: int = 1500
    batch: int = 256
    lr: float = 1e-3
    seed: int = 0


def fit_predict(cfg: FitConfig, train: dict, test: dict, labelled: np.ndarray, device="cpu") -> np.ndarray:
    """Train a regressor on the ``labelled`` rows of ``train`` and predict ``test``.
    ``train``/``test``: dicts with "x2d" (N,16,2), "g" (N,M,3) or None, "y" (N,16,3).
    Returns test predictions (N, 16, 3) mm."""
    dev = torch.device(device)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    def flat(d, key):
        return d[key].reshape(len(d[key]), -1).astype(np.float32)

    ins = []
    if cfg.use_2d:
        ins.append("x2d")
    if cfg.use_g:
        ins.append("g")
    stats = {k: (flat(train, k).mean(0), flat(train, k).std(0) + 1e-6) for k in ins}
    ylab = flat(train, "y")[labelled]
    ym, ys = ylab.mean(0), ylab.std(0) + 1e-6
    X = {k: torch.as_tensor(_z(flat(train, k)[labelled], *stats[k]), device=dev) for k in ins}
    Y = torch.as_tensor(_z(ylab, ym, ys), device=dev)
    model = Regressor(RegressorConfig(kind=cfg.kind, in_2d=X["x2d"].shape[1] if "x2d" in X else 0,
                                      in_g=X["g"].shape[1] if "g" in X else 0)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    n = len(Y)
    bs = min(cfg.batch, n)
    model.train()
    for _ in range(cfg.steps):
        idx = torch.randint(0, n, (bs,), generator=gen).to(dev)
        pred = model(X["x2d"][idx] if "x2d" in X else None, X["g"][idx] if "g" in X else None)
        loss = (pred - Y[idx]).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    out = []
    with torch.no_grad():
        T = {k: torch.as_tensor(_z(flat(test, k), *stats[k]), device=dev) for k in ins}
        for s in range(0, len(test["y"]), 65536):
            out.append(model(T["x2d"][s:s + 65536] if "x2d" in T else None,
                             T["g"][s:s + 65536] if "g" in T else None).cpu().numpy())
    return (np.concatenate(out) * ys + ym).reshape(-1, 16, 3)


def evaluate(pred: np.ndarray, y: np.ndarray, actions) -> dict:
    """Protocol #1 and #2, per action then averaged. Root (zero) joint included, as usual
    for 17-joint H36M evaluation."""
    z = np.zeros((len(y), 1, 3), np.float32)
    p17, y17 = np.concatenate([z, pred], 1), np.concatenate([z, y], 1)
    p1, t1 = metrics.per_action(metrics.mpjpe(p17, y17), actions)
    p2, t2 = metrics.per_action(metrics.p_mpjpe(p17, y17), actions)
    return {"mpjpe": p1, "p_mpjpe": p2, "mpjpe_per_action": t1, "p_mpjpe_per_action": t2}


def label_subsets(n: int, ks, seeds) -> dict:
    """The k labelled training rows per (k, seed): drawn without replacement, nested
    across k for one seed (the first k of one permutation)."""
    out = {}
    for seed in seeds:
        perm = np.random.default_rng(1000 + seed).permutation(n)
        for k in ks:
            out[(int(min(k, n)), seed)] = np.sort(perm[:min(k, n)])
    return out


def log_ks(n: int, start: int = 50, per_decade: int = 3) -> list[int]:
    """k on a log scale from ``start`` to ``n`` (all frames)."""
    ks = [int(round(v)) for v in np.logspace(np.log10(start), np.log10(n), max(2, int(np.log10(n / start) * per_decade) + 1))]
    return sorted(set(min(k, n) for k in ks) | {500 if n >= 500 else n})

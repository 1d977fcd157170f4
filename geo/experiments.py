"""The experiments behind the notebooks: generators per variant (cached in ``runs/``),
synthesis quality, Figure 5 (label efficiency) and Figure 6 (ablations). Notebooks set
parameters, call these, and draw.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from geo import regress
from geo.data import Dataset, load
from geo.pairs import PairSource
from geo.results import runs_dir
from geo.train import NeedsImages, config_for, train

# Paper numbers, only ever shown as labelled references beside ours.
PAPER = {
    "fig5_gain_pct_at_500": {"mpjpe": 17.98, "p_mpjpe": 3.90},   # Sec. 4, "Results on Human3.6M"
    "fig6_mpjpe": {"BL": 49.8, "BL+DG+AUG": 46.3},                 # Table 1 / Sec. 4 (Regression#3)
}

# Experiment sizes per profile: quick for CPU/CI, full for a GPU.
EXPERIMENTS = {
    "quick": dict(seeds=[0], per_decade=1, max_ks=3, steps=150, fig6_seeds=[0]),
    "full": dict(seeds=[0, 1, 2], per_decade=2, max_ks=5, steps=400, fig6_seeds=[0, 1]),
}


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def data_tag(data: str) -> str:
    return "embedded" if data in ("embedded", "default", None) else re.sub(r"[^A-Za-z0-9]+", "_", str(Path(data).resolve()))[-40:]


def load_data(data: str = "embedded") -> Dataset:
    return load(data)


def generator(ds: Dataset, data: str, variant: str, profile: str = "quick", seed: int = 0, progress=True, **over):
    """Train (or load, or resume) one generator variant on the training subjects.
    Returns (models, history, run_dir); raises NeedsImages for I_SG."""
    cfg = config_for(variant, profile, seed=seed, **over)
    run = runs_dir() / data_tag(data) / profile / f"{variant.replace('+', '_')}-s{seed}"
    src = PairSource(ds, ds.train_subjects, device=device(), seed=seed)
    models, hist = train(cfg, src, run, progress=progress)
    return models, hist, run


@torch.no_grad()
def synthesis_quality(models, ds: Dataset, variant: str, n: int = 1024, seed: int = 123) -> dict:
    """On held-out subjects: per-channel IoU of maps thresholded at 0.5, and the per-pixel
    squared error, for real camera pairs (AE: the same view)."""
    src = PairSource(ds, ds.test_subjects, device=device(), seed=seed)
    g = models["phi_psi"]
    ious, l2s = [], []
    for s in range(0, n, 256):
        b = src.sample(min(256, n - s), same_view=variant == "AE")
        with torch.autocast(src.device.type, dtype=torch.bfloat16, enabled=src.device.type == "cuda"):
            out, _, _ = g(b.maps_i, None if variant == "AE" else b.R_ij)
        pred, tgt = out.float() > 0.5, b.maps_j > 0.5
        ious.append(((pred & tgt).sum((2, 3)).float() / (pred | tgt).sum((2, 3)).clamp_min(1).float()).cpu())
        l2s.append((out.float() - b.maps_j.float()).pow(2).mean((1, 2, 3)).cpu())
    iou = torch.cat(ious)
    return {"iou": float(iou.mean()), "iou_per_channel": iou.mean(0).tolist(), "l2_per_pixel": float(torch.cat(l2s).mean()),
            "pairs": n}


def _splits(ds, input2d):
    return regress.make_split(ds, ds.train_subjects, input2d), regress.make_split(ds, ds.test_subjects, input2d)


def _inputs(tr, te, encoder):
    """Regressor inputs of train/test splits: 2D, targets, and G when an encoder is given."""
    train, test = {"x2d": tr.x2d, "y": tr.y}, {"x2d": te.x2d, "y": te.y}
    if encoder is not None:
        train["g"] = regress.encode(encoder, tr.x2d, device())
        test["g"] = regress.encode(encoder, te.x2d, device())
    return train, test


def fig5(ds: Dataset, encoder, profile: str = "quick", inputs=("sh", "gt"), progress=True) -> dict:
    """Baseline#1 (FC on 2D) vs Regression#1 (FC on G) for k labelled frames."""
    ex = EXPERIMENTS[profile]
    rows = []
    for input2d in inputs:
        tr, te = _splits(ds, input2d)
        train, test = _inputs(tr, te, encoder)
        actions = te.actions
        n = len(train["y"])
        ks = regress.log_ks(n, per_decade=ex["per_decade"])
        if len(ks) > ex["max_ks"]:
            keep = np.unique(np.round(np.linspace(0, len(ks) - 1, ex["max_ks"])).astype(int))
            ks = sorted(set([ks[i] for i in keep]) | {min(500, n)})
        subsets = regress.label_subsets(n, ks, ex["seeds"])
        for (k, seed), lab in tqdm(sorted(subsets.items()), disable=not progress, desc=f"fig5 {input2d}"):
            for method, cfg in (("Baseline#1", regress.FitConfig("fc", True, False, ex["steps"], seed=seed)),
                                ("Regression#1", regress.FitConfig("fc", False, True, ex["steps"], seed=seed))):
                pred = regress.fit_predict(cfg, train, test, lab, device())
                ev = regress.evaluate(pred, test["y"], actions)
                rows.append({"input": input2d, "method": method, "k": k, "seed": seed,
                             "mpjpe": ev["mpjpe"], "p_mpjpe": ev["p_mpjpe"]})
    return {"rows": rows, "gain_pct": gain_at(rows, 500)}


def gain_at(rows, k_target: int = 500) -> dict:
    """Relative improvement (%) of Regression#1 over Baseline#1 at the k nearest k_target,
    per input, from seed means: 100 * (BL - R1) / BL."""
    out = {}
    for input2d in sorted({r["input"] for r in rows}):
        rs = [r for r in rows if r["input"] == input2d]
        k = min({r["k"] for r in rs}, key=lambda v: abs(v - k_target))
        m = {(meth, key): float(np.mean([r[key] for r in rs if r["k"] == k and r["method"] == meth]))
             for meth in ("Baseline#1", "Regression#1") for key in ("mpjpe", "p_mpjpe")}
        out[input2d] = {"k": k, **{key: 100 * (m[("Baseline#1", key)] - m[("Regression#1", key)]) / m[("Baseline#1", key)]
                                   for key in ("mpjpe", "p_mpjpe")},
                        **{f"{meth}_{key}": v for (meth, key), v in m.items()}}
    return out


FIG6_RUNGS = ("BL", "BL+I_SG", "BL+AE", "BL+SG", "BL+SG+AUG", "BL+DG+AUG")


def fig6(ds: Dataset, encoders: dict, profile: str = "quick", progress=True) -> dict:
    """The ablation ladder, Protocol #1 MPJPE, all labelled training frames, SH input.
    ``encoders``: {variant: encoder or None when the variant could not be trained}.
    Regression#1 ladder: BL = FC on 2D, BL+X = FC on G of X. Regression#2 ladder: BL =
    Martinez et al. on 2D, BL+X = Martinez et al. on 2D + G of X (summed after one FC)."""
    ex = EXPERIMENTS[profile]
    tr, te = _splits(ds, "sh")
    lab = np.arange(len(tr.y))
    inputs = {}   # each variant's G is encoded once and serves both regressors
    out = {}
    for reg, kind in (("Regression#1", "fc"), ("Regression#2", "martinez")):
        ladder = {}
        for rung in tqdm(FIG6_RUNGS, disable=not progress, desc=f"fig6 {reg}"):
            variant = rung[3:] if rung != "BL" else None
            if variant is not None and encoders.get(variant) is None:
                why = "I_SG needs Human3.6M video frames, which this data has not" if variant == "I_SG" else "not trained"
                ladder[rung] = {"skipped": f"no {variant} generator: {why}"}
                continue
            if variant not in inputs:
                inputs[variant] = _inputs(tr, te, encoders[variant] if variant else None)
            train, test = inputs[variant]
            use_2d = variant is None or kind == "martinez"
            vals = []
            for seed in ex["fig6_seeds"]:
                cfg = regress.FitConfig(kind, use_2d, variant is not None, ex["steps"], seed=seed)
                vals.append(regress.evaluate(regress.fit_predict(cfg, train, test, lab, device()), te.y, te.actions)["mpjpe"])
            ladder[rung] = {"mpjpe_mean": float(np.mean(vals)), "mpjpe_std": float(np.std(vals)), "mpjpe_seeds": vals}
        out[reg] = ladder
    return out


def load_precomputed(path, key: str, data: str, profile: str):
    """Results that ``python -m geo full-gpu`` wrote: (result, meta, data, profile), where
    data/profile are those the results were computed with. Raises naming the file."""
    import json

    path = Path(path)
    try:
        blob = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read ({e}); expected the JSON of `python -m geo full-gpu`") from e
    if key not in blob:
        raise KeyError(f"{path}: no {key!r} entry (keys: {sorted(blob)}); expected the output of `python -m geo full-gpu`")
    meta = blob.get("meta", {})
    print(f"drawing from {path}: data {meta.get('data', data)}, profile {meta.get('profile', profile)}, "
          f"computed on {meta.get('device')}, commit {meta.get('commit')}, {meta.get('wall_time_s')} s")
    return blob[key], meta, meta.get("data", data), meta.get("profile", profile)


__all__ = ["load_precomputed", "NeedsImages", "PAPER", "EXPERIMENTS", "generator", "synthesis_quality", "fig5", "fig6", "load_data", "device"]

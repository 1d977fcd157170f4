"""Throughput: how many pairs per second a variant trains at, and the steps a budget buys.

A GPU run is sized in wall time, but every variant is given steps, not a time cap
(:data:`geo.profiles.TRAIN`): :func:`measure_throughput` times real training steps
(:func:`geo.train.step.train_step`, compile included in the warm-up) and
:func:`steps_for_budget` turns the pairs/s into steps per variant.
"""
from __future__ import annotations

import time

import torch

from geo.device import default as default_device
from geo.pairs import PairSource
from geo.train.config import TrainConfig
from geo.train.step import build, compile_models, make_optimizer, sample, train_step

# Figure 5's encoder (DG+AUG) gets the largest share of a GPU budget.
DEFAULT_SHARES = {"AE": 0.15, "SG": 0.2, "SG+AUG": 0.2, "DG+AUG": 0.45}


def steps_for_budget(pairs_per_s: dict, seconds_total: float, shares: dict | None = None, batch: int | dict = 512,
                     overhead_s: float = 0.0, min_steps: int = 1) -> dict:
    """Steps per variant so that the variants together train in ``seconds_total``.

    ``pairs_per_s[v]``: measured training throughput of variant v at this batch
    (:func:`measure_throughput`); ``shares[v]``: its share of the time (default
    :data:`DEFAULT_SHARES`, DG+AUG largest; must sum to <= 1); ``overhead_s``: seconds
    per variant that do not train (compile, held-out evaluation, checkpoints), taken off
    each share first. Returns {v: steps}, steps = share * (seconds - overheads) * pairs/s
    / batch, rounded down, at least ``min_steps``."""
    shares = dict(DEFAULT_SHARES if shares is None else shares)
    if sum(shares.values()) > 1 + 1e-9:
        raise ValueError(f"shares sum to {sum(shares.values()):.3f} > 1: {shares}")
    missing = [v for v in shares if v not in pairs_per_s]
    if missing:
        raise ValueError(f"no measured pairs/s for {missing}; measured: {sorted(pairs_per_s)}")
    out = {}
    for v, share in shares.items():
        b = batch[v] if isinstance(batch, dict) else batch
        secs = max(0.0, share * seconds_total - overhead_s)
        out[v] = max(min_steps, int(secs * pairs_per_s[v] // b))
    return out


def measure_throughput(ds, cfgs: dict, steps: int = 5, warmup_steps: int = 2, device=None, seed: int = 0) -> dict:
    """{variant: pairs/s} of each ``cfgs[variant]`` (a TrainConfig) on ``ds``'s training
    subjects, on ``device`` (default: CUDA if available). Feeds :func:`steps_for_budget`."""
    if device is None:
        device = default_device()
    src = PairSource(ds, ds.train_subjects, device=device, seed=seed)
    return {v: time_steps(cfg, src, steps, warmup_steps)["pairs_per_s"] for v, cfg in cfgs.items()}


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_steps(cfg: TrainConfig, source: PairSource, steps: int = 5, warmup_steps: int = 2,
               fixed_batch: bool = False) -> dict:
    """Time ``steps`` training steps of fresh models (after ``warmup_steps``, which include
    any compile): {"step_s", "pairs_per_s", "warmup_s"}. ``fixed_batch``: reuse one batch
    (no sampling/rendering in the timed loop)."""
    dev = source.device
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    models = build(cfg, dev)
    opt = make_optimizer(cfg, models, dev)
    fwd = compile_models(models, cfg.compile) if (cfg.compile and cuda) else models
    [m.train() for m in models.values()]
    was = source.render_compile
    source.render_compile = bool(cfg.compile and cuda)   # as train() does
    try:
        fixed = sample(source, cfg) if fixed_batch else None
        t = time.perf_counter()
        for _ in range(warmup_steps):
            train_step(fwd, opt, fixed or sample(source, cfg), cfg)
        _sync(dev)
        warm = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(steps):
            train_step(fwd, opt, fixed or sample(source, cfg), cfg)
        _sync(dev)
    finally:
        source.render_compile = was
    dt = (time.perf_counter() - t) / max(steps, 1)
    return {"step_s": dt, "pairs_per_s": cfg.batch / dt, "warmup_s": warm}

"""Held-out convergence: the synthesis IoU of a fixed set of held-out pairs.

Given ``heldout`` (a :class:`~geo.pairs.PairSource` of the test subjects) and
``eval_every``, :func:`geo.train.train` logs the synthesis IoU (:func:`map_iou`, the
measure of ``geo.experiments.synthesis_quality``) of 512 fixed held-out pairs to
``history["iou_step"]``, ``history["iou"]``. The pairs are drawn with their own seed and
the source's generator is put back, so evaluating does not touch the training sampler:
a run with evaluation trains the same weights as one without.
"""
from __future__ import annotations

import numpy as np
import torch

from geo import precision
from geo.models import Generator
from geo.pairs import Batch, PairSource
from geo.render import LINE_WIDTH

HELDOUT_PAIRS = 512
HELDOUT_SEED = 20190601


def map_iou(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample, per-channel IoU (B, C) of maps thresholded at 0.5 (an empty union
    counts as IoU 0)."""
    pred, tgt = out.float() > 0.5, target.float() > 0.5
    return (pred & tgt).sum((2, 3)).float() / (pred | tgt).sum((2, 3)).clamp_min(1).float()


@torch.no_grad()
def synthesise(g: Generator, maps_i: torch.Tensor, R_ij: torch.Tensor | None) -> torch.Tensor:
    """The target view's maps psi(R(i->j) x phi(S_i)) (Eq. 1) of source maps (N, 15, 64, 64),
    under the device's bf16 autocast (geo.precision); ``R_ij`` None: the source view
    reconstructed (AE). The one synthesis of the package: training's held-out IoU,
    :func:`geo.experiments.synthesis_quality` and the qualitative figures use it."""
    with precision.autocast(maps_i.device):
        out, _, _ = g(precision.to_layout(maps_i), R_ij)
    return out


def heldout_batches(source: PairSource, variant: str, n: int = HELDOUT_PAIRS, seed: int = HELDOUT_SEED,
                    chunk: int = 256, width: float = LINE_WIDTH) -> list[Batch]:
    """``n`` real-camera pairs from ``source``, drawn with a fixed seed; ``source``'s own
    generator state is left as it was."""
    saved = source.gen.get_state()
    source.gen.manual_seed(seed)
    try:
        return [source.sample(min(chunk, n - s), same_view=variant == "AE", dtype=precision.map_dtype(source.device),
                              width=width) for s in range(0, n, chunk)]
    finally:
        source.gen.set_state(saved)


@torch.no_grad()
def heldout_iou(g: Generator, batches: list[Batch], variant: str) -> float:
    """Mean :func:`map_iou` of generator ``g`` (in eval mode) over ``batches``."""
    was = g.training
    g.eval()
    try:
        iou = torch.cat([map_iou(synthesise(g, b.maps_i, None if variant == "AE" else b.R_ij), b.maps_j) for b in batches])
        return float(iou.mean())
    finally:
        g.train(was)



PLATEAU_WINDOW = 2000   # steps: the stretch of the held-out curve a plateau is judged on
PLATEAU_GAIN = 0.01     # IoU: a least-squares gain over the window below this is "flat"


def plateau(steps, iou, window: int = PLATEAU_WINDOW, tol: float = PLATEAU_GAIN) -> dict:
    """Whether a held-out IoU curve has flattened: the slope of a least-squares line
    through the evaluations of its last ``window`` steps, as the gain over that window;
    ``flat`` when it is below ``tol`` (about twice the evaluations' scatter about that line,
    ``residual_sd``, 0.004-0.005 on the committed cpu-profile curves). Too short a curve
    (less than one window long, or fewer than 4 evaluations in it) is never flat. Returns
    {"window", "evaluations", "gain", "gain_per_1k", "residual_sd", "flat", "tol"}."""
    s, y = np.asarray(steps, np.float64), np.asarray(iou, np.float64)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"steps {s.shape} and iou {y.shape}: expected two 1-D sequences of one length")
    m = s >= s[-1] - window if len(s) else np.zeros(0, bool)
    out = {"window": window, "evaluations": int(m.sum()), "tol": tol, "gain": None, "gain_per_1k": None,
           "residual_sd": None, "flat": False}
    if m.sum() < 4 or s[-1] - s[0] < window:
        return out
    b, a = np.polyfit(s[m], y[m], 1)
    out.update(gain=float(b * window), gain_per_1k=float(b * 1000),
               residual_sd=float(np.std(y[m] - (a + b * s[m]), ddof=2)), flat=bool(b * window < tol))
    return out

"""The learning-rate schedule.

Linear warm-up over ``warmup`` steps, then (``lr_min`` set) cosine decay to ``lr_min`` at
``steps``; a run extended to more steps follows the longer curve from where it is. A
function of the step alone, so that a resumed run sets exactly the rate the uninterrupted
one would have.
"""
from __future__ import annotations

import math

from geo.train.config import TrainConfig


def lr_at(cfg: TrainConfig, step: int, start: int = 0) -> float:
    """Learning rate of the update that takes the run from ``step`` to ``step + 1``:
    linear warm-up over ``cfg.warmup`` steps, then cosine to ``cfg.lr_min`` at
    ``cfg.steps``. ``start`` > 0: a run continued from weights saved at step ``start``
    (fresh Adam moments) warms up and decays again over ``start .. cfg.steps`` -- a warm
    restart (Loshchilov & Hutter, SGDR, 2017)."""
    step, steps = step - start, cfg.steps - start
    if cfg.warmup and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.lr_min is None:
        return cfg.lr
    t = min(1.0, (step - cfg.warmup) / max(1, steps - cfg.warmup))
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * t))

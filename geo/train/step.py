"""One training step: the generators, their optimiser, a batch of pairs and its losses.

Shared by the training loop (:mod:`geo.train.loop`) and the throughput measurement
(:mod:`geo.train.throughput`), so that what is timed is what trains. On CUDA and on a CPU
with bf16 units the step runs under bf16 autocast with channels_last models and maps
(:mod:`geo.precision`); the losses stay float32.
"""
from __future__ import annotations

import torch

from geo import losses
from geo import precision
from geo.cameras import TORI
from geo.models import Generator
from geo.pairs import Batch, PairSource
from geo.train.config import TrainConfig


def build(cfg: TrainConfig, device) -> dict[str, Generator]:
    """The variant's generators on ``device``, seeded by ``cfg.seed``: every rank of a DDP
    run, and a run built again to resume, starts from the same weights."""
    torch.manual_seed(cfg.seed)
    models = {"phi_psi": Generator(cfg.generator)}
    if cfg.two_generators:
        models["mu_nu"] = Generator(cfg.generator)
    for m in models.values():
        m.to(device)
        if cfg.channels_last and precision.channels_last(device):
            m.to(memory_format=torch.channels_last)
    return models


def make_optimizer(cfg: TrainConfig, models: dict, device) -> torch.optim.Optimizer:
    """Adam over every generator; fused on CUDA when ``cfg.fused``."""
    params = [p for m in models.values() for p in m.parameters()]
    fused = bool(cfg.fused) and torch.device(device).type == "cuda"
    return torch.optim.Adam(params, lr=cfg.lr, **({"fused": True} if fused else {}))


def compile_models(models: dict, mode) -> dict:
    """torch.compile'd wrappers of ``models`` (the originals keep the weights and the
    state-dict keys). ``mode``: True or a torch.compile mode string."""
    kw = {} if mode is True else {"mode": mode}
    return {k: torch.compile(m, dynamic=False, **kw) for k, m in models.items()}


def prepare(batch: Batch, channels_last: bool = True) -> Batch:
    if channels_last:
        batch.maps_i = precision.to_layout(batch.maps_i)
        batch.maps_j = precision.to_layout(batch.maps_j)
    return batch


def step_losses(models, batch, cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """Losses of one batch for the configured variant."""
    g1 = models["phi_psi"]
    if cfg.variant == "AE":
        out, _, _ = g1(batch.maps_i, None)
        terms = {"l2_ij": losses.l2(out, batch.maps_i)}
        terms["loss"] = terms["l2_ij"]
        return terms
    out_ij, _, g_ij = g1(batch.maps_i, batch.R_ij)
    if not cfg.two_generators:
        terms = {"l2_ij": losses.l2(out_ij, batch.maps_j)}
        terms["loss"] = terms["l2_ij"]
        return terms
    out_ji, g_j, _ = models["mu_nu"](batch.maps_j, batch.R_ij.transpose(-1, -2))
    return losses.total(out_ij, batch.maps_j, out_ji, batch.maps_i, g_ij, g_j, cfg.lrc_weight, cfg.lrc_norm)


def sample(source: PairSource, cfg: TrainConfig, batch: int | None = None) -> Batch:
    b = source.sample(batch or cfg.batch, aug=cfg.augment, same_view=cfg.variant == "AE",
                      dtype=precision.map_dtype(source.device), width=cfg.generator.line_width,
                      joints=cfg.virtual_joints, torus=TORI[cfg.torus])
    return prepare(b, cfg.channels_last)


def train_step(fwd_models, opt, batch: Batch, cfg: TrainConfig, lr: float | None = None) -> dict[str, torch.Tensor]:
    """One optimiser step; returns the loss terms (device tensors, no host sync)."""
    dev = batch.maps_i.device
    if lr is not None:
        for g in opt.param_groups:
            g["lr"] = lr
    with precision.autocast(dev):   # bf16 where the device has bf16 units; losses stay float32
        terms = step_losses(fwd_models, batch, cfg)
    opt.zero_grad(set_to_none=True)
    terms["loss"].backward()
    opt.step()
    return terms

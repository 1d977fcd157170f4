"""Training the generators (paper Sec. 3.2-3.3), with checkpoints and resume.

Variants (the ablations of Figure 6), one parameter:

=========  ===============================================================
``AE``     one generator reconstructs its own input view (no rotation)
``SG``     one generator (phi, psi): view i -> view j through R(i->j), Eq. (1)
``DG``     two generators (phi, psi), (mu, nu) and L_rc: Eq. (4)
``+AUG``   suffix: pairs also from virtual torus cameras (``aug`` of them)
``I_SG``   raw image crops as input: needs Human3.6M video frames (not shipped)
=========  ===============================================================

Checkpoints (model, optimiser, sampler RNG, history) are written atomically every
``checkpoint_every`` steps and at the end; :func:`train` resumes from the last one in
``run_dir``, so an interrupted run continues exactly where it stopped.
On CUDA: bf16 autocast, channels_last, optional torch.compile.
"""
from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from geo import losses
from geo.models import Generator, GeneratorConfig
from geo.pairs import PairSource
from geo.results import atomic_write

VARIANTS = ("AE", "SG", "SG+AUG", "DG", "DG+AUG", "I_SG")


class NeedsImages(RuntimeError):
    """I_SG needs Human3.6M video frames, which neither the pack nor the embedded default has."""


@dataclass
class TrainConfig:
    variant: str = "DG+AUG"
    steps: int = 200
    batch: int = 32
    lr: float = 1e-3
    aug: float = 0.5              # share of virtual-camera pairs in +AUG variants
    lrc_weight: float = 1.0       # Eq. (4) weighs L_rc by 1
    seed: int = 0
    checkpoint_every: int = 100
    max_seconds: float = 0.0      # stop early after this wall time (0: no limit)
    compile: bool = False
    log_every: int = 10
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)

    def __post_init__(self):
        if isinstance(self.generator, dict):
            self.generator = GeneratorConfig(**self.generator)
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; expected one of {VARIANTS}")

    @property
    def two_generators(self) -> bool:
        return self.variant.startswith("DG")

    @property
    def augment(self) -> float:
        return self.aug if self.variant.endswith("+AUG") else 0.0


# Profiles: ``quick`` runs each variant in about a minute on 2 CPU cores (CI);
# ``full`` is for a GPU. Every variant gets the same number of steps: a wall-time cap
# (``max_seconds``) would give DG, which runs two generators per step, half the steps of
# SG -- the committed first GPU run (figures/full_gpu) was capped at 30 s and shows it.
PROFILES = {
    "quick": dict(steps=60, batch=32, lr=2e-3, checkpoint_every=30, generator=dict(width=8)),
    "full": dict(steps=2000, batch=256, checkpoint_every=500, compile=False, generator=dict(width=32)),
}


def config_for(variant: str, profile: str = "quick", **over) -> TrainConfig:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(PROFILES)}")
    kw = {**PROFILES[profile], **over}
    kw["generator"] = GeneratorConfig(**kw.get("generator", {}))
    return TrainConfig(variant=variant, **kw)


def build(cfg: TrainConfig, device) -> dict[str, Generator]:
    torch.manual_seed(cfg.seed)
    models = {"phi_psi": Generator(cfg.generator)}
    if cfg.two_generators:
        models["mu_nu"] = Generator(cfg.generator)
    for m in models.values():
        m.to(device)
        if torch.device(device).type == "cuda":
            m.to(memory_format=torch.channels_last)
    return models


def step_losses(models, batch, cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """Losses of one batch for the configured variant."""
    g1 = models["phi_psi"]
    if cfg.variant == "AE":
        out, _, _ = g1(batch.maps_i, None)
        part = {"l2_ij": losses.l2(out, batch.maps_i)}
        part["loss"] = part["l2_ij"]
        return part
    out_ij, _, g_ij = g1(batch.maps_i, batch.R_ij)
    if not cfg.two_generators:
        part = {"l2_ij": losses.l2(out_ij, batch.maps_j)}
        part["loss"] = part["l2_ij"]
        return part
    out_ji, g_j, _ = models["mu_nu"](batch.maps_j, batch.R_ij.transpose(-1, -2))
    return losses.total(out_ij, batch.maps_j, out_ji, batch.maps_i, g_ij, g_j, cfg.lrc_weight)


def _save(path: Path, state: dict):
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(path, buf.getvalue())


def load_checkpoint(run_dir, device="cpu"):
    """(cfg, models, state) of the last checkpoint in ``run_dir``, or None."""
    p = Path(run_dir) / "last.pt"
    if not p.exists():
        return None
    try:
        state = torch.load(p, map_location=device, weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is reported the same way
        raise RuntimeError(f"{p}: unreadable checkpoint ({e}); delete it to start over") from e
    cfg = TrainConfig(**{**state["config"], "generator": GeneratorConfig(**state["config"]["generator"])})
    models = build(cfg, device)
    for k, m in models.items():
        m.load_state_dict(state["models"][k])
        m.eval()  # BatchNorm in inference mode: checkpoints are loaded to be used
    return cfg, models, state


def train(cfg: TrainConfig, source: PairSource, run_dir, progress: bool = True, stop_after: int | None = None):
    """Train (or resume) the configured variant. ``stop_after`` ends the call after that
    many steps of this call (used to test resuming). Returns (models, history)."""
    if cfg.variant == "I_SG":
        raise NeedsImages("I_SG takes raw image crops as input and needs Human3.6M video frames; "
                          "neither the compact pack nor the embedded default has them, so it is skipped")
    from tqdm import tqdm

    run_dir = Path(run_dir)
    device = source.device
    models = build(cfg, device)
    params = [p for m in models.values() for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    history = {"step": [], "loss": [], "l2_ij": [], "l2_ji": [], "lrc": [], "pairs_per_s": []}
    step, finished = 0, False
    ck = run_dir / "last.pt"
    if ck.exists():
        state = torch.load(ck, map_location=device, weights_only=False)
        for k, m in models.items():
            m.load_state_dict(state["models"][k])
        opt.load_state_dict(state["opt"])
        source.gen.set_state(state["sampler_rng"].cpu())  # RNG states are CPU byte tensors
        history, step, finished = state["history"], state["step"], state.get("finished", False)
    if finished:
        [m.eval() for m in models.values()]
        return models, history
    cuda = device.type == "cuda"
    fwd = step_losses
    if cfg.compile and cuda:
        fwd = torch.compile(step_losses)
    [m.train() for m in models.values()]

    def checkpoint():
        _save(ck, {"config": asdict(cfg), "models": {k: m.state_dict() for k, m in models.items()},
                   "opt": opt.state_dict(), "sampler_rng": source.gen.get_state(), "history": history,
                   "step": step, "finished": finished})

    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc=cfg.variant)
    t0, done, tl = time.time(), 0, time.time()
    while step < cfg.steps:
        batch = source.sample(cfg.batch, aug=cfg.augment, same_view=cfg.variant == "AE",
                              dtype=torch.bfloat16 if cuda else torch.float32)
        if cuda:
            batch.maps_i = batch.maps_i.contiguous(memory_format=torch.channels_last)
            batch.maps_j = batch.maps_j.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            part = fwd(models, batch, cfg)
        opt.zero_grad(set_to_none=True)
        part["loss"].backward()
        opt.step()
        step += 1
        done += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            now = time.time()
            history["step"].append(step)
            for k in ("loss", "l2_ij", "l2_ji", "lrc"):
                history[k].append(part[k].detach().item() if k in part else None)
            history["pairs_per_s"].append(cfg.batch * cfg.log_every / max(now - tl, 1e-9))
            tl = now
            bar.set_postfix(loss=f"{history['loss'][-1]:.1f}")
        if step % cfg.checkpoint_every == 0:
            checkpoint()
        if stop_after is not None and done >= stop_after:
            break
        if cfg.max_seconds and time.time() - t0 > cfg.max_seconds:
            finished = True
            break
    finished = finished or step >= cfg.steps
    history["wall_s"] = history.get("wall_s", 0.0) + time.time() - t0
    bar.close()
    checkpoint()
    [m.eval() for m in models.values()]
    return models, history

"""Training the generators (paper Sec. 3.2-3.3), with checkpoints and resume.

Variants (the ablations of Figure 6), one parameter:

=========  ===============================================================
``AE``     one generator reconstructs its own input view (no rotation)
``SG``     one generator (phi, psi): view i -> view j through R(i->j), Eq. (1)
``DG``     two generators (phi, psi), (mu, nu) and L_rc: Eq. (4)
``+AUG``   suffix: pairs also from virtual torus cameras (``aug`` of them)
``I_SG``   raw image crops as input: needs Human3.6M video frames (not shipped)
=========  ===============================================================

Checkpoints (model, optimiser, sampler RNG, history, the config's identity and the data's
fingerprint) are written atomically every ``checkpoint_every`` steps and at the end.
:func:`train` resumes from ``run_dir/last.pt``:

* same identity (:func:`identity`: every config field that defines the model or its
  training, i.e. all but ``steps``, ``checkpoint_every``, ``log_every``, ``eval_every``,
  ``compile``, ``max_seconds``, ``fused``, ``channels_last``) and same data
  (``PairSource.fingerprint``): an interrupted run continues exactly where it stopped; a
  run asked for more steps than it has continues training (later GPU leases add steps);
  a run with at least the steps asked for is returned as it is;
* a different identity or other data: :class:`StaleCheckpoint`, naming the run folder and
  the fields that differ -- a checkpoint is never reused silently. Run folders made by
  :func:`geo.experiments.run_dir` carry the identity's hash in their name, so they only
  meet this error when the code's defaults change;
* an unreadable ``last.pt``: :class:`CheckpointError` naming the file.

Learning rate: linear warm-up over ``warmup`` steps, then (``lr_min`` set) cosine decay
to ``lr_min`` at ``steps``; a run extended to more steps follows the longer curve from
where it is. Held-out convergence: given ``heldout`` (a :class:`PairSource` of the test
subjects) and ``eval_every``, the synthesis IoU (:func:`map_iou`, the measure of
``geo.experiments.synthesis_quality``) of 512 fixed held-out pairs is logged to
``history["iou_step"]``, ``history["iou"]``; it does not touch the training sampler.

On CUDA: bf16 autocast, channels_last models and maps, fused Adam, no host sync between
log steps (losses accumulate on the device), cudnn.benchmark, optional torch.compile of
the generators and the renderer (``compile``: True or a torch.compile mode; a failure is
printed and training goes on eager). On a CPU with bf16 units (AMX-BF16, AVX512-BF16) the
same bf16 autocast and channels_last run, eager, with float32 master weights
(:mod:`geo.precision`, ``GEO_CPU_DTYPE`` forces either); elsewhere the CPU runs float32.

More than one process (``torchrun --nproc_per_node=N -m geo train ...``, PyTorch DDP; the
process group comes from :func:`geo.distributed.init_from_env`): every generator is its
own DistributedDataParallel module (gradients averaged over ranks); ``cfg.batch`` is the
global batch, ``cfg.batch / N`` pairs per rank (it must divide); logged losses are means
over ranks, pairs/s counts the global batch; only rank 0 writes checkpoints, evaluates
the held-out IoU and shows the bar; ``max_seconds`` is checked at log steps, where the
ranks meet anyway. Pairs (``sampling``): ``"shard"`` (default) -- rank r draws its
``B / N`` pairs on its own device from :func:`geo.distributed.rank_seed` (seed, r, step),
reseeded at every step, so a run resumes with any number of ranks from the model and
optimiser alone, and exactly with the same number; ``"slice"`` -- every rank draws the
whole global batch from the source's own generator, as one process does, and keeps its
slice (N times the sampling work: for tests that compare with one process). BatchNorm
stays per rank (statistics over ``B / N`` samples; SyncBatchNorm does not run on CPU), so
N ranks match one process with batch B to within what that changes, not bit for bit.
In one process nothing of this runs: the path is the one above, unchanged.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import signal
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from geo import distributed as D
from geo import losses
from geo import precision
from geo.models import Generator, GeneratorConfig
from geo.pairs import Batch, PairSource
from geo.render import LINE_WIDTH
from geo.skeleton import VIRTUAL_JOINTS
from geo.results import atomic_write
from geo.lock import hold
from geo.safety import load_tensors

VARIANTS = ("AE", "SG", "SG+AUG", "DG", "DG+AUG", "I_SG")
TRAINED = ("AE", "SG", "SG+AUG", "DG+AUG")     # the variants the notebooks train
# Fields that do not change what a run learns (how long, how often it logs, how fast it
# runs): everything else is the run's identity.
NOT_IDENTITY = ("steps", "checkpoint_every", "checkpoint_seconds", "log_every", "eval_every", "compile", "max_seconds",
                "fused", "channels_last")
HELDOUT_PAIRS = 512
HELDOUT_SEED = 20190601
SAMPLING = ("shard", "slice")   # how ranks draw their pairs under DDP (module docstring)


class NeedsImages(RuntimeError):
    """I_SG needs Human3.6M video frames, which neither the pack nor the embedded default has."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read."""


class StaleCheckpoint(RuntimeError):
    """A checkpoint made with another configuration or on other data than asked for."""


class Interrupted(KeyboardInterrupt):
    """Training stopped by SIGINT or SIGTERM after saving its checkpoint (the message names it)."""


@dataclass
class TrainConfig:
    variant: str = "DG+AUG"
    steps: int = 200
    batch: int = 32
    lr: float = 1e-3
    warmup: int = 0               # linear warm-up steps
    lr_min: float | None = None   # None: constant lr after warm-up; else cosine decay to lr_min at `steps`
    aug: float = 0.5              # share of virtual-camera pairs in +AUG variants
    lrc_weight: float = 1.0       # Eq. (4) weighs L_rc by 1
    lrc_norm: str = "rms"         # how L_rc normalises the clouds (geo.losses: "rms", "residual", "ratio")
    virtual_joints: str = "nominal"  # virtual views' 2D joints from the 3D ones (geo.skeleton.VIRTUAL_JOINTS)
    seed: int = 0
    checkpoint_every: int = 100
    checkpoint_seconds: float = 300.0  # also checkpoint when this much wall time passed since the last (0: off)
    max_seconds: float = 0.0      # stop early after this wall time (0: no limit); the run stays unfinished
    compile: bool | str = False   # CUDA only: True or a torch.compile mode ("reduce-overhead", ...)
    fused: bool = True            # CUDA only: fused Adam
    channels_last: bool = True    # maps and weights NHWC (CUDA and CPU: oneDNN's fast kernels)
    log_every: int = 10
    eval_every: int = 0           # held-out IoU every this many steps (0: never), when train() gets `heldout`
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)

    def __post_init__(self):
        if isinstance(self.generator, dict):
            self.generator = GeneratorConfig(**self.generator)
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; expected one of {VARIANTS}")
        if self.lrc_norm not in losses.LRC_NORMS:
            raise ValueError(f"lrc_norm {self.lrc_norm!r}: expected one of {losses.LRC_NORMS}")
        if self.virtual_joints not in VIRTUAL_JOINTS:
            raise ValueError(f"virtual_joints {self.virtual_joints!r}: expected one of {VIRTUAL_JOINTS}")

    @property
    def two_generators(self) -> bool:
        return self.variant.startswith("DG")

    @property
    def augment(self) -> float:
        return self.aug if self.variant.endswith("+AUG") else 0.0

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """From ``asdict`` output (a checkpoint's); fields this version lacks are dropped,
        fields it added take their defaults."""
        names = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        g = d.get("generator", {})
        if isinstance(g, dict):
            gnames = {f.name for f in fields(GeneratorConfig)}
            d["generator"] = GeneratorConfig(**{k: v for k, v in g.items() if k in gnames})
        return cls(**d)


# Fields added after weights and run folders were made: at these values they are left
# out of the identity, so that what was trained before them keeps its identity.
LATER_FIELDS = {"lrc_norm": "rms", "generator.line_width": LINE_WIDTH, "virtual_joints": "nominal"}


def identity(cfg: TrainConfig) -> dict:
    """The config fields that define the model and its training (module docstring)."""
    d = {k: v for k, v in asdict(cfg).items() if k not in NOT_IDENTITY}
    for key, default in LATER_FIELDS.items():
        *outer, last = key.split(".")
        sub = d
        for o in outer:
            sub = sub.get(o, {})
        if last in sub and sub[last] == default:
            del sub[last]
    return d


def identity_hash(cfg: TrainConfig, data_id: str = "", n: int = 10) -> str:
    """Short hash of :func:`identity` plus a data identity string."""
    blob = json.dumps({"config": identity(cfg), "data": data_id}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


def _diff(a: dict, b: dict, prefix="") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: checkpoint {va!r}, asked {vb!r}")
    return out


# Profiles: ``quick`` runs each variant in about a minute on 2 CPU cores (CI);
# ``full`` is for a GPU: steps are meant to be sized from measured throughput
# (:func:`steps_for_budget`) and passed as an override. Every variant gets steps, not a
# wall-time cap: a cap would give DG, which runs two generators per step, half the steps.
# ``cpu`` trains on a CPU's bf16 units (geo.precision) what 2 cores can afford: width 16
# (2.2x the pairs/s of width 32 in bf16, benchmarks/results/bench_precision.json), batch 64
# (larger batches gain nothing there), a constant learning rate after warm-up so that a
# later run continues the same curve, a checkpoint every 5 minutes of wall time. Its steps
# are sized from the throughput measured on the machine (geo.pipeline, profile "cpu").
PROFILES = {
    "cpu": dict(steps=2000, batch=64, lr=1e-3, warmup=100, lr_min=None, checkpoint_every=10**9,
                checkpoint_seconds=300.0, log_every=25, eval_every=250, generator=dict(width=16)),
    "quick": dict(steps=60, batch=32, lr=2e-3, checkpoint_every=30, eval_every=30, generator=dict(width=8)),
    "full": dict(steps=2000, batch=512, lr=1e-3, warmup=100, lr_min=1e-5, checkpoint_every=500, log_every=25,
                 eval_every=250, compile=False, generator=dict(width=32)),
}

# Figure 5's encoder (DG+AUG) gets the largest share of a GPU budget.
DEFAULT_SHARES = {"AE": 0.15, "SG": 0.2, "SG+AUG": 0.2, "DG+AUG": 0.45}


def config_for(variant: str, profile: str = "quick", **over) -> TrainConfig:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(PROFILES)}")
    kw = {**PROFILES[profile], **over}
    g = kw.get("generator", {})
    kw["generator"] = g if isinstance(g, GeneratorConfig) else GeneratorConfig(**{**PROFILES[profile].get("generator", {}), **g})
    return TrainConfig(variant=variant, **kw)


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


def build(cfg: TrainConfig, device) -> dict[str, Generator]:
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
        part = {"l2_ij": losses.l2(out, batch.maps_i)}
        part["loss"] = part["l2_ij"]
        return part
    out_ij, _, g_ij = g1(batch.maps_i, batch.R_ij)
    if not cfg.two_generators:
        part = {"l2_ij": losses.l2(out_ij, batch.maps_j)}
        part["loss"] = part["l2_ij"]
        return part
    out_ji, g_j, _ = models["mu_nu"](batch.maps_j, batch.R_ij.transpose(-1, -2))
    return losses.total(out_ij, batch.maps_j, out_ji, batch.maps_i, g_ij, g_j, cfg.lrc_weight, cfg.lrc_norm)


def sample(source: PairSource, cfg: TrainConfig, batch: int | None = None) -> Batch:
    b = source.sample(batch or cfg.batch, aug=cfg.augment, same_view=cfg.variant == "AE",
                      dtype=precision.map_dtype(source.device), width=cfg.generator.line_width,
                      joints=cfg.virtual_joints)
    return prepare(b, cfg.channels_last)


def slice_batch(b: Batch, start: int, stop: int) -> Batch:
    """Samples ``start:stop`` of every per-sample field of ``b``."""
    return replace(b, **{f.name: getattr(b, f.name)[start:stop] for f in fields(b) if getattr(b, f.name) is not None})


def sample_shard(source: PairSource, cfg: TrainConfig, step: int, sampling: str = "shard") -> Batch:
    """This rank's pairs for training step ``step``: the whole batch in one process; under
    DDP ``cfg.batch / world`` pairs drawn as ``sampling`` says (module docstring)."""
    n_ranks, r = D.world(), D.rank()
    if n_ranks == 1:
        return sample(source, cfg)
    per = cfg.batch // n_ranks
    if sampling == "slice":
        return slice_batch(sample(source, cfg), r * per, (r + 1) * per)
    source.gen.manual_seed(D.rank_seed(cfg.seed, r, step))   # host-side: no device sync
    return sample(source, cfg, per)


def check_split(cfg: TrainConfig, n_ranks: int, sampling: str = "shard") -> None:
    """ValueError unless the global batch splits evenly over ``n_ranks`` and ``sampling``
    is known."""
    if sampling not in SAMPLING:
        raise ValueError(f"sampling {sampling!r}: expected one of {SAMPLING}")
    if n_ranks > 1 and cfg.batch % n_ranks:
        raise ValueError(f"batch {cfg.batch} (the global batch) does not split over {n_ranks} ranks; "
                         f"expected a multiple of the number of processes")


def wrap_ddp(models: dict, device) -> dict:
    """Each generator in its own DistributedDataParallel module (forward wrappers; the
    originals keep the weights and the state-dict keys)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    dev = torch.device(device)
    ids = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else None
    return {k: DDP(m, device_ids=ids) for k, m in models.items()}


def train_step(fwd_models, opt, batch: Batch, cfg: TrainConfig, lr: float | None = None) -> dict[str, torch.Tensor]:
    """One optimiser step; returns the loss parts (device tensors, no host sync)."""
    dev = batch.maps_i.device
    if lr is not None:
        for g in opt.param_groups:
            g["lr"] = lr
    with precision.autocast(dev):   # bf16 where the device has bf16 units; losses stay float32
        part = step_losses(fwd_models, batch, cfg)
    opt.zero_grad(set_to_none=True)
    part["loss"].backward()
    opt.step()
    return part


# --------------------------------------------------------------------------- held-out quality
def map_iou(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample, per-channel IoU (B, C) of maps thresholded at 0.5 (an empty union
    counts as IoU 0)."""
    pred, tgt = out.float() > 0.5, target.float() > 0.5
    return (pred & tgt).sum((2, 3)).float() / (pred | tgt).sum((2, 3)).clamp_min(1).float()


@torch.no_grad()
def synthesise(g: Generator, batch: Batch, variant: str) -> torch.Tensor:
    """The synthesised target maps of ``batch`` (AE: the source view reconstructed)."""
    dev = batch.maps_i.device
    with precision.autocast(dev):
        out, _, _ = g(precision.to_layout(batch.maps_i), None if variant == "AE" else batch.R_ij)
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
        iou = torch.cat([map_iou(synthesise(g, b, variant), b.maps_j) for b in batches])
        return float(iou.mean())
    finally:
        g.train(was)


# --------------------------------------------------------------------------- checkpoints
def _save(path: Path, state: dict):
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(path, buf.getvalue())


def read_checkpoint(path, device="cpu") -> dict:
    """The raw state of a checkpoint file; :class:`CheckpointError` naming it if unreadable."""
    p = Path(path)
    try:
        state = load_tensors(p, map_location=device)   # plain data only: a checkpoint never runs code
        if not isinstance(state, dict) or "config" not in state or "models" not in state:
            raise ValueError("not a geo training checkpoint")
        return state
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is reported the same way
        raise CheckpointError(f"{p}: unreadable checkpoint ({type(e).__name__}: {e}); delete it to start over") from e


def load_checkpoint(run_dir, device="cpu"):
    """(cfg, models, state) of the last checkpoint in ``run_dir``, or None."""
    p = Path(run_dir) / "last.pt"
    if not p.exists():
        return None
    state = read_checkpoint(p, device)
    try:   # plain data, but perhaps not of this shape: named, not a raw TypeError/KeyError
        cfg = TrainConfig.from_dict(state["config"])
        models = build(cfg, device)
        for k, m in models.items():
            m.load_state_dict(state["models"][k])
            m.eval()  # BatchNorm in inference mode: checkpoints are loaded to be used
    except (TypeError, KeyError, ValueError, AttributeError, RuntimeError) as e:
        raise CheckpointError(f"{p}: not a checkpoint of this geo ({type(e).__name__}: {str(e).splitlines()[0]}); "
                              "delete it to start over") from e
    return cfg, models, state


def check_checkpoint(state: dict, cfg: TrainConfig, source: PairSource, where) -> None:
    """Raise :class:`StaleCheckpoint` unless ``state`` was made with ``cfg``'s identity on
    ``source``'s data."""
    diff = _diff(identity(TrainConfig.from_dict(state["config"])), identity(cfg))
    if state.get("data") != source.fingerprint:
        diff.append(f"data: checkpoint {state.get('data')!r} (pair-source fingerprint), asked {source.fingerprint!r}")
    if diff:
        raise StaleCheckpoint(f"{where}: the checkpoint there was made with another configuration or data, "
                              f"refusing to reuse it ({'; '.join(diff)}). Use another run folder, or delete it.")


def _new_history() -> dict:
    return {"step": [], "loss": [], "l2_ij": [], "l2_ji": [], "lrc": [], "lr": [], "pairs_per_s": [],
            "iou_step": [], "iou": []}


def train(cfg: TrainConfig, source: PairSource, run_dir, *args, **kwargs):
    """:func:`_train` (its docstring says what) with ``run_dir`` held by this process
    (:func:`geo.lock.hold`; rank 0 under DDP): a second process on the same folder waits
    for the first and then continues or loads its checkpoint, instead of both writing
    last.pt and one run being lost."""
    if run_dir is None or not D.is_main():
        return _train(cfg, source, run_dir, *args, **kwargs)
    with hold(run_dir, wait=True):
        return _train(cfg, source, run_dir, *args, **kwargs)


def _train(cfg: TrainConfig, source: PairSource, run_dir, progress: bool = True, stop_after: int | None = None,
          heldout: PairSource | None = None, eval_every: int | None = None, sampling: str = "shard",
          init: dict | None = None):
    """Train (or resume, or extend, or load) the configured variant in ``run_dir``
    (module docstring). ``stop_after`` ends the call after that many steps of this call
    (used to test resuming). ``heldout`` and ``eval_every`` (default ``cfg.eval_every``)
    log the held-out synthesis IoU (rank 0 only). ``sampling``: how DDP ranks draw their
    pairs (ignored in one process). ``init``: where a run without a checkpoint starts --
    saved weights of the same configuration (``geo.weights.initial``: {"models": state
    dicts, "step", "history", "source"}); the run continues their step count up to
    ``cfg.steps`` with a fresh optimiser and a warm restart of the schedule (:func:`lr_at`).
    Returns (models, history) on every rank."""
    if cfg.variant == "I_SG":
        raise NeedsImages("I_SG takes raw image crops as input and needs Human3.6M video frames; "
                          "neither the compact pack nor the embedded default has them, so it is skipped")
    n_ranks, main = D.world(), D.is_main()
    check_split(cfg, n_ranks, sampling)
    from tqdm import tqdm

    run_dir = Path(run_dir)
    device = source.device
    cuda = device.type == "cuda"
    eval_every = cfg.eval_every if eval_every is None else eval_every
    for tmp in run_dir.glob(".last.pt.*.tmp") if main else ():   # left by a process killed mid-write
        tmp.unlink(missing_ok=True)
    models = build(cfg, device)
    opt = make_optimizer(cfg, models, device)
    history, step, start = _new_history(), 0, 0
    ck = run_dir / "last.pt"
    if not ck.exists() and init is not None:
        for k, m in models.items():
            if k not in init["models"]:
                raise CheckpointError(f"{init.get('source')}: no {k!r} generator to continue {cfg.variant} from")
            m.load_state_dict(init["models"][k])
        step = start = int(init["step"])
        history = {**_new_history(), **(init.get("history") or {}), "continued_from": init.get("source"),
                   "lr_start": start}
        if step >= cfg.steps:
            [m.eval() for m in models.values()]
            return models, history
    if ck.exists():
        state = read_checkpoint(ck, device)
        check_checkpoint(state, cfg, source, run_dir)
        for k, m in models.items():
            m.load_state_dict(state["models"][k])
        history, step = {**_new_history(), **state["history"]}, state["step"]
        start = int(history.get("lr_start") or 0)
        if step >= cfg.steps:
            if step > cfg.steps and progress and main:
                print(f"{run_dir}: checkpoint has {step} steps (>= {cfg.steps} asked); using it as it is")
            [m.eval() for m in models.values()]
            return models, history
        opt.load_state_dict(state["opt"])
        fused = bool(cfg.fused) and cuda
        for g in opt.param_groups:   # the implementation follows this device, not the checkpoint's
            g["fused"] = fused
        if fused:                    # fused Adam keeps its step counts on the device
            for st in opt.state.values():
                if "step" in st:
                    st["step"] = st["step"].to(device=device, dtype=torch.float32)
        source.gen.set_state(state["sampler_rng"].cpu())  # RNG states are CPU byte tensors
    if cuda:
        torch.backends.cudnn.benchmark = True
    eager = wrap_ddp(models, device) if n_ranks > 1 else models
    fwd = eager
    if cfg.compile and cuda:
        fwd = compile_models(eager, cfg.compile)
        source.render_compile = True
    evals = (heldout_batches(heldout, cfg.variant, width=cfg.generator.line_width)
             if heldout is not None and eval_every and main else None)
    [m.train() for m in models.values()]

    def checkpoint(finished: bool):
        if not main:
            return
        _save(ck, {"config": asdict(cfg), "identity": identity_hash(cfg), "data": source.fingerprint,
                   "models": {k: m.state_dict() for k, m in models.items()}, "opt": opt.state_dict(),
                   "sampler_rng": source.gen.get_state(), "history": history, "step": step, "finished": finished,
                   "world": n_ranks, "sampling": sampling if n_ranks > 1 else None})

    def evaluate():
        history["iou_step"].append(step)
        history["iou"].append(heldout_iou(models["phi_psi"], evals, cfg.variant))

    if evals is not None and step == 0:
        evaluate()
    bar = tqdm(total=cfg.steps, initial=step, disable=not (progress and main), desc=cfg.variant)
    t0, done, tl, nl = time.time(), 0, time.time(), 0
    t_ck = t0
    acc = {}
    stop = _StopSignals()
    try:
        while step < cfg.steps:
            rng = source.gen.get_state() if fwd is not eager and done == 0 else None
            try:
                batch = sample_shard(source, cfg, step, sampling)
                part = train_step(fwd, opt, batch, cfg, lr_at(cfg, step, start))
            except Exception as e:  # noqa: BLE001 - only the first compiled step falls back
                if rng is None:
                    raise
                if main:
                    print(f"torch.compile failed ({type(e).__name__}: {str(e)[:300]}); training eager")
                fwd, source.render_compile = eager, False
                opt.zero_grad(set_to_none=True)
                source.gen.set_state(rng)
                batch = sample_shard(source, cfg, step, sampling)
                part = train_step(fwd, opt, batch, cfg, lr_at(cfg, step, start))
            for k, v in part.items():
                acc[k] = acc[k] + v.detach().float() if k in acc else v.detach().float().clone()  # never alias an output buffer
            step += 1
            done += 1
            nl += 1
            bar.update(1)
            logged = step % cfg.log_every == 0 or step == cfg.steps
            if logged:
                history["step"].append(step)
                for k, v in log_means(acc, nl).items():
                    history[k].append(v)
                now = time.time()   # after .item(), which syncs: the interval's wall time is the device's
                history["lr"].append(lr_at(cfg, step - 1, start))
                history["pairs_per_s"].append(cfg.batch * nl / max(now - tl, 1e-9))
                acc, nl = {}, 0
                bar.set_postfix(loss=f"{history['loss'][-1]:.1f}")
                tl = time.time()
            if evals is not None and (step % eval_every == 0 or step == cfg.steps):
                evaluate()
                tl = time.time()
            if step % cfg.checkpoint_every == 0 or (cfg.checkpoint_seconds and time.time() - t_ck >= cfg.checkpoint_seconds):
                checkpoint(step >= cfg.steps)
                t_ck = time.time()
            if n_ranks == 1 and stop.caught:
                break
            if n_ranks > 1 and logged and D.any_rank(bool(stop.caught), device):   # ranks decide together
                break
            if stop_after is not None and done >= stop_after:
                break
            if cfg.max_seconds and (n_ranks == 1 or logged):   # under DDP all ranks decide together
                if D.any_rank(time.time() - t0 > cfg.max_seconds, device):
                    break
    finally:
        stop.restore()
    history["wall_s"] = history.get("wall_s", 0.0) + time.time() - t0
    bar.close()
    checkpoint(step >= cfg.steps)
    if stop.caught:
        raise Interrupted(f"{cfg.variant}: stopped by {stop.caught} at step {step}/{cfg.steps}; checkpoint saved in "
                          f"{ck} (run the same command with --resume to continue)")
    [m.eval() for m in models.values()]
    return models, history


class _StopSignals:
    """While training: SIGINT (Ctrl-C) and SIGTERM set a flag instead of killing the
    process, so the loop saves a checkpoint and stops after the current step. Only in the
    main thread (signal handlers cannot be set elsewhere); restored afterwards."""

    def __init__(self):
        self.caught, self.old = None, {}
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.old[sig] = signal.signal(sig, self._catch)

    def _catch(self, signum, frame):
        if self.caught:                      # a second Ctrl-C: stop now, as Python would
            self.restore()
            raise KeyboardInterrupt
        self.caught = signal.Signals(signum).name

    def restore(self):
        for sig, h in self.old.items():
            signal.signal(sig, h)
        self.old = {}


def log_means(acc: dict, n: int) -> dict:
    """Logged loss parts: the means of the accumulated device sums over ``n`` steps, and
    over ranks under DDP (one collective); None for parts the variant has not."""
    keys = ("loss", "l2_ij", "l2_ji", "lrc")
    if not D.active():
        return {k: (acc[k] / n).item() if k in acc else None for k in keys}
    have = [k for k in keys if k in acc]
    vals = D.mean_over_ranks(torch.stack([acc[k] / n for k in have])).tolist()
    return {k: (vals[have.index(k)] if k in have else None) for k in keys}


# --------------------------------------------------------------------------- throughput
def measure_throughput(ds, cfgs: dict, steps: int = 5, warmup_steps: int = 2, device=None, seed: int = 0) -> dict:
    """{variant: pairs/s} of each ``cfgs[variant]`` (a TrainConfig) on ``ds``'s training
    subjects, on ``device`` (default: CUDA if available). Feeds :func:`steps_for_budget`."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
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


# --------------------------------------------------------------------------- command line
def check_out(out, cfg: TrainConfig, resume: bool) -> int:
    """Check the run folder ``out`` before any work: a file there, a checkpoint without
    ``resume``, or a checkpoint of another configuration is a ValueError naming it. Returns
    the step the run starts from (0 without a checkpoint)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file; expected a run folder (new, or one to --resume)")
    ck = out / "last.pt"
    if not ck.exists():
        return 0
    if not resume:
        raise ValueError(f"--out {out}: holds a checkpoint (last.pt); pass --resume to continue it, "
                         f"or choose another folder")
    state = read_checkpoint(ck)
    diff = _diff(identity(TrainConfig.from_dict(state["config"])), identity(cfg))
    if diff:
        raise StaleCheckpoint(f"--out {out}: its checkpoint was made with another configuration "
                              f"({'; '.join(diff)}); use another folder")
    return int(state["step"])


def command(cfg: TrainConfig, data: str, out, start: int = 0, device=None, progress: bool = True) -> dict:
    """``python -m geo train``: train ``cfg`` on ``data``'s training subjects in the run
    folder ``out`` on ``device`` (this rank's, under torchrun), the held-out IoU logged on
    rank 0. Prints (rank 0) and returns {"step", "loss", "pairs_per_s", "ranks"}:
    ``pairs_per_s`` is the median over this call's log intervals, the global batch counted."""
    from geo.data import load

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    ds = load(data)
    src = PairSource(ds, ds.train_subjects, device=device, seed=cfg.seed)
    ho = None
    if D.is_main() and cfg.eval_every and ds.test_subjects:
        ho = PairSource(ds, ds.test_subjects, device=device, seed=cfg.seed)
    _, h = train(cfg, src, out, progress=progress, heldout=ho)
    pps = sorted(p for s, p in zip(h["step"], h["pairs_per_s"]) if s > start)
    res = {"step": h["step"][-1] if h["step"] else start, "loss": h["loss"][-1] if h["loss"] else None,
           "pairs_per_s": pps[len(pps) // 2] if pps else None, "ranks": D.world()}
    if D.is_main():
        rate = f"{res['pairs_per_s']:.0f} pairs/s" if pps else "no steps trained in this call"
        print(f"{cfg.variant}: step {res['step']}/{cfg.steps}, loss {res['loss']:.2f}, {rate} "
              f"(global batch {cfg.batch} over {res['ranks']} rank(s), {device.type}); "
              f"checkpoint {Path(out) / 'last.pt'}",
              flush=True)
    return res

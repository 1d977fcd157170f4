"""Training on more than one process (PyTorch DDP): sharding the batch over ranks.

``torchrun --nproc_per_node=N -m geo train ...``; the process group comes from
:func:`geo.distributed.init_from_env`. Every generator is its own
DistributedDataParallel module (gradients averaged over ranks); ``cfg.batch`` is the
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
In one process nothing of this runs: the path is the one of :mod:`geo.train.loop`,
unchanged.
"""
from __future__ import annotations

from dataclasses import fields, replace

import torch

from geo import distributed
from geo.pairs import Batch, PairSource
from geo.train.config import TrainConfig
from geo.train.step import sample

SAMPLING = ("shard", "slice")   # how ranks draw their pairs under DDP (module docstring)


def slice_batch(b: Batch, start: int, stop: int) -> Batch:
    """Samples ``start:stop`` of every per-sample field of ``b``."""
    return replace(b, **{f.name: getattr(b, f.name)[start:stop] for f in fields(b) if getattr(b, f.name) is not None})


def sample_shard(source: PairSource, cfg: TrainConfig, step: int, sampling: str = "shard") -> Batch:
    """This rank's pairs for training step ``step``: the whole batch in one process; under
    DDP ``cfg.batch / world`` pairs drawn as ``sampling`` says (module docstring)."""
    n_ranks, r = distributed.world(), distributed.rank()
    if n_ranks == 1:
        return sample(source, cfg)
    per = cfg.batch // n_ranks
    if sampling == "slice":
        return slice_batch(sample(source, cfg), r * per, (r + 1) * per)
    source.gen.manual_seed(distributed.rank_seed(cfg.seed, r, step))   # host-side: no device sync
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


def log_means(acc: dict, n: int) -> dict:
    """Logged loss terms: the means of the accumulated device sums over ``n`` steps, and
    over ranks under DDP (one collective); None for terms the variant has not."""
    keys = ("loss", "l2_ij", "l2_ji", "lrc")
    if not distributed.active():
        return {k: (acc[k] / n).item() if k in acc else None for k in keys}
    have = [k for k in keys if k in acc]
    vals = distributed.mean_over_ranks(torch.stack([acc[k] / n for k in have])).tolist()
    return {k: (vals[have.index(k)] if k in have else None) for k in keys}

"""The process group of a multi-process (PyTorch DDP) run, from what ``torchrun`` sets.

``torchrun --nproc_per_node=N -m geo train ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in their environment;
:func:`init_from_env` joins them into one process group (NCCL on CUDA, gloo on CPU) and
gives each rank its device (``cuda:LOCAL_RANK``, or the CPU). Without those variables, or
with ``WORLD_SIZE=1``, nothing is initialised and a run is the plain one-process run.

Everything else here is a thin helper over ``torch.distributed`` that is a no-op in one
process: :func:`rank`, :func:`world`, :func:`is_main`, :func:`mean_over_ranks`,
:func:`any_rank`, and :func:`rank_seed`, the sampler seed of one rank at one step.
"""
from __future__ import annotations

import hashlib
import os

import torch
import torch.distributed as dist

from geo.device import has_cuda


def active() -> bool:
    """True inside an initialised process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0 (or the only process): the one that writes checkpoints, logs and bars."""
    return rank() == 0


def env_world() -> int:
    """``WORLD_SIZE`` as torchrun sets it (1 when unset)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ValueError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r}: expected an integer (torchrun sets it)") from None


def init_from_env(backend: str | None = None) -> torch.device:
    """Join the process group torchrun describes in the environment and return this
    rank's device: ``cuda:LOCAL_RANK`` when CUDA is available (backend NCCL), else the CPU
    (gloo). One process (no ``WORLD_SIZE`` or 1): no group, the default device."""
    cuda = has_cuda()
    if env_world() <= 1:
        return torch.device("cuda" if cuda else "cpu")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        if local >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK={local} but this node has {torch.cuda.device_count()} GPU(s); "
                               f"expected --nproc_per_node <= the number of GPUs")
        torch.cuda.set_device(local)
    dev = torch.device(f"cuda:{local}" if cuda else "cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if cuda else "gloo"),
                                **({"device_id": dev} if cuda else {}))
    return dev


def close() -> None:
    """Leave the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def mean_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """The mean of ``t`` over ranks (``t`` itself in one process). A collective: every rank
    calls it at the same point. Sum then divide, which gloo supports too."""
    if not active():
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / world()


def any_rank(flag: bool, device) -> bool:
    """True on every rank if ``flag`` is true on any (a collective; ``flag`` in one process)."""
    if not active():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def rank_seed(seed: int, rank_: int, step: int) -> int:
    """The sampler seed of rank ``rank_`` at training step ``step`` of a run seeded with
    ``seed``: a 63-bit hash, so that neighbouring ranks and steps draw unrelated pairs, a
    run resumed on as many ranks draws what it would have drawn straight, and one resumed on
    another number of ranks needs no saved sampler state."""
    h = hashlib.blake2b(f"geo-pairs:{seed}:{rank_}:{step}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") >> 1

"""``python -m geo train``: the run folder checked before any work, then training.

:mod:`geo.__main__` parses and checks the arguments; here the run folder is checked
against the config (:func:`check_out`) before the data is loaded, and the run is trained
on the data's training subjects with the held-out IoU on its test subjects
(:func:`command`).
"""
from __future__ import annotations

from pathlib import Path

import torch

from geo import distributed
from geo.data import load
from geo.device import default as default_device
from geo.pairs import PairSource
from geo.train.checkpoint import check_checkpoint, read_checkpoint
from geo.train.config import TrainConfig
from geo.train.loop import train

def check_out(out, cfg: TrainConfig, resume: bool) -> int:
    """Check the run folder ``out`` before any work: a file there or a checkpoint without
    ``resume`` is a ValueError naming it, a checkpoint of another configuration a
    :class:`~geo.train.checkpoint.StaleCheckpoint` (the data is not loaded yet). Returns
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
    check_checkpoint(state, cfg, f"--out {out}")
    return int(state["step"])


def command(cfg: TrainConfig, data: str, out, start: int = 0, device=None, progress: bool = True,
            init_from: str = "auto") -> dict:
    """``python -m geo train``: train ``cfg`` on ``data``'s training subjects in the run
    folder ``out`` on ``device`` (this rank's, under torchrun), the held-out IoU logged on
    rank 0, started as ``init_from`` says (:func:`geo.train.train`; without ``--resume``
    "scratch", so that a checkpoint that appeared after :func:`check_out` is still not
    trained over). Prints (rank 0) and returns {"step", "loss", "pairs_per_s", "ranks"}:
    ``pairs_per_s`` is the median over this call's log intervals, the global batch counted."""
    device = torch.device(device or default_device())
    ds = load(data)
    src = PairSource(ds, ds.train_subjects, device=device, seed=cfg.seed)
    ho = None
    if distributed.is_main() and cfg.eval_every and ds.test_subjects:
        ho = PairSource(ds, ds.test_subjects, device=device, seed=cfg.seed)
    _, h = train(cfg, src, out, progress=progress, heldout=ho, init_from=init_from)
    pps = sorted(p for s, p in zip(h["step"], h["pairs_per_s"]) if s > start)
    res = {"step": h["step"][-1] if h["step"] else start, "loss": h["loss"][-1] if h["loss"] else None,
           "pairs_per_s": pps[len(pps) // 2] if pps else None, "ranks": distributed.world()}
    if distributed.is_main():
        rate = f"{res['pairs_per_s']:.0f} pairs/s" if pps else "no steps trained in this call"
        print(f"{cfg.variant}: step {res['step']}/{cfg.steps}, loss {res['loss']:.2f}, {rate} "
              f"(global batch {cfg.batch} over {res['ranks']} rank(s), {device.type}); "
              f"checkpoint {Path(out) / 'last.pt'}",
              flush=True)
    return res

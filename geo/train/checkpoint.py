"""Checkpoints: what a run folder's ``last.pt`` holds, and when it may be reused.

A checkpoint holds the models, the optimiser, the sampler RNG, the history, the config
(and its :func:`~geo.train.config.identity_hash`) and the data's fingerprint
(``PairSource.fingerprint``). It is written atomically (:func:`geo.results.atomic_write`),
so a process killed mid-write leaves the previous one whole, and read as plain data
(:func:`geo.safety.load_tensors`): a checkpoint never runs code.

A checkpoint is never reused silently: one made with a config of another identity
(:func:`~geo.train.config.identity`) or on other data is a :class:`StaleCheckpoint`
naming the run folder and the fields that differ. Run folders made by
:func:`geo.experiments.run_dir` carry the identity's hash in their name, so they only meet
this error when the code's defaults change. An unreadable ``last.pt`` is a
:class:`CheckpointError` naming the file.
"""
from __future__ import annotations

import io
from dataclasses import asdict
from pathlib import Path

import torch

from geo.results import atomic_write
from geo.safety import load_tensors
from geo.pairs import PairSource
from geo.train.config import TrainConfig, identity, identity_hash
from geo.train.step import build


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read."""


class StaleCheckpoint(RuntimeError):
    """A checkpoint made with another configuration or on other data than asked for."""


def _diff(a: dict, b: dict, prefix="") -> list[str]:
    """The fields where identity ``a`` (a checkpoint's) and ``b`` (the one asked for)
    differ, one line each, nested dicts by dotted name: what a refusal names."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: checkpoint {va!r}, asked {vb!r}")
    return out


def save_checkpoint(path: Path, cfg: TrainConfig, source: PairSource, models: dict, opt, history: dict, step: int,
                    finished: bool, world: int = 1, sampling: str | None = None) -> None:
    """Write ``path`` atomically with everything the run needs to continue exactly: the
    models, the optimiser, the sampler's RNG, the history and step, and what it may be
    reused by (the config, its identity hash, the data's fingerprint); ``world`` and
    ``sampling`` say how many DDP ranks drew the pairs, and how (None in one process)."""
    state = {"config": asdict(cfg), "identity": identity_hash(cfg), "data": source.fingerprint,
             "models": {k: m.state_dict() for k, m in models.items()}, "opt": opt.state_dict(),
             "sampler_rng": source.gen.get_state(), "history": history, "step": step, "finished": finished,
             "world": world, "sampling": sampling if world > 1 else None}
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


def load_models(models: dict, states: dict, where) -> None:
    """Load each generator of ``models`` from ``states`` ({name: state dict}: a
    checkpoint's, or saved weights'). Every way a run gets its weights comes through here,
    so that a set lacking a generator the variant trains is refused the same way: a
    :class:`CheckpointError` naming ``where``."""
    for k, m in models.items():
        if k not in states:
            raise CheckpointError(f"{where}: holds no {k!r} generator (it has {sorted(states)}); "
                                  f"the variant needs {sorted(models)}")
        m.load_state_dict(states[k])


def load_checkpoint(run_dir, device="cpu"):
    """(cfg, models, state) of the last checkpoint in ``run_dir``, or None."""
    p = Path(run_dir) / "last.pt"
    if not p.exists():
        return None
    state = read_checkpoint(p, device)
    try:   # plain data, but perhaps not of this shape: named, not a raw TypeError/KeyError
        cfg = TrainConfig.from_dict(state["config"])
        models = build(cfg, device)
        load_models(models, state["models"], p)
    except CheckpointError:
        raise
    except (TypeError, KeyError, ValueError, AttributeError, RuntimeError) as e:
        raise CheckpointError(f"{p}: not a checkpoint of this geo ({type(e).__name__}: {str(e).splitlines()[0]}); "
                              "delete it to start over") from e
    for m in models.values():
        m.eval()  # BatchNorm in inference mode: checkpoints are loaded to be used
    return cfg, models, state


def load_optimiser(opt: torch.optim.Optimizer, state: dict, cfg: TrainConfig, device) -> None:
    """The optimiser's state from a checkpoint (``state["opt"]``), made to run here: the
    implementation (fused Adam or not) follows this device, not the checkpoint's, so that
    a run checkpointed on a GPU resumes on a CPU and back."""
    opt.load_state_dict(state)
    fused = bool(cfg.fused) and torch.device(device).type == "cuda"
    for g in opt.param_groups:
        g["fused"] = fused
    if fused:                    # fused Adam keeps its step counts on the device
        for st in opt.state.values():
            if "step" in st:
                st["step"] = st["step"].to(device=device, dtype=torch.float32)


def check_checkpoint(state: dict, cfg: TrainConfig, where, data: str | None = None) -> None:
    """Raise :class:`StaleCheckpoint` unless ``state`` was made with ``cfg``'s identity
    and, given ``data`` (a ``PairSource.fingerprint``), on that data. The one check of
    both callers: the command line checks ``--out`` before it loads any data (no
    ``data``), :func:`geo.train.train` checks again with the data it trains on."""
    diff = _diff(identity(TrainConfig.from_dict(state["config"])), identity(cfg))
    if data is not None and state.get("data") != data:
        diff.append(f"data: checkpoint {state.get('data')!r} (pair-source fingerprint), asked {data!r}")
    if diff:
        what = "configuration" if data is None else "configuration or data"
        raise StaleCheckpoint(f"{where}: the checkpoint there was made with another {what}, "
                              f"refusing to reuse it ({'; '.join(diff)}). Use another run folder, or delete it.")

"""The training loop (paper Sec. 3.2-3.3): one run in one folder, with checkpoints and resume.

Checkpoints (:mod:`geo.train.checkpoint`) are written every ``checkpoint_every`` steps,
every ``checkpoint_seconds`` of wall time and at the end. :func:`train` resumes from
``run_dir/last.pt`` when its identity and data are the ones asked for: an interrupted run
continues exactly where it stopped; a run asked for more steps than it has continues
training (later GPU leases add steps); a run with at least the steps asked for is
returned as it is. SIGINT and SIGTERM save a checkpoint and raise :class:`Interrupted`.

On CUDA: bf16 autocast, channels_last models and maps, fused Adam, no host sync between
log steps (losses accumulate on the device), cudnn.benchmark, optional torch.compile of
the generators and the renderer (``compile``: True or a torch.compile mode; a failure is
printed and training goes on eager). On a CPU with bf16 units (AMX-BF16, AVX512-BF16) the
same bf16 autocast and channels_last run, eager, with float32 master weights
(:mod:`geo.precision`, ``GEO_CPU_DTYPE`` forces either); elsewhere the CPU runs float32.
Under DDP see :mod:`geo.train.ddp`.
"""
from __future__ import annotations

import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path

import torch

from geo import distributed as D
from geo.lock import hold
from geo.pairs import PairSource
from geo.train.checkpoint import _save, check_checkpoint, load_models, read_checkpoint
from geo.train.config import TrainConfig, identity_hash
from geo.train.ddp import check_split, log_means, sample_shard, wrap_ddp
from geo.train.evaluate import heldout_batches, heldout_iou
from geo.train.schedule import lr_at
from geo.train.step import build, compile_models, make_optimizer, train_step


class NeedsImages(RuntimeError):
    """I_SG needs Human3.6M video frames, which neither the pack nor the embedded default has."""


class Interrupted(KeyboardInterrupt):
    """Training stopped by SIGINT or SIGTERM after saving its checkpoint (the message names it)."""


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
        load_models(models, init["models"], init.get("source"))
        step = start = int(init["step"])
        history = {**_new_history(), **(init.get("history") or {}), "continued_from": init.get("source"),
                   "lr_start": start}
        if step >= cfg.steps:
            [m.eval() for m in models.values()]
            return models, history
    if ck.exists():
        state = read_checkpoint(ck, device)
        check_checkpoint(state, cfg, run_dir, source.fingerprint)
        load_models(models, state["models"], ck)
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


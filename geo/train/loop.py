"""The training loop (paper Sec. 3.2-3.3): one run in one folder, with checkpoints and resume.

Checkpoints (:mod:`geo.train.checkpoint`) are written every ``checkpoint_every`` steps,
every ``checkpoint_seconds`` of wall time and at the end; SIGINT and SIGTERM save one and
raise :class:`Interrupted`. How a run starts is :func:`train`'s ``init_from``:

============  ===========================================================================
``scratch``   new models (:func:`~geo.train.step.build`); a folder that already holds
              ``last.pt`` is refused, naming it, so that no run is started over by mistake
``resume``    the folder's ``last.pt``, if its identity and data are the ones asked for
              (else :class:`~geo.train.checkpoint.StaleCheckpoint`): an interrupted run
              continues exactly where it stopped, a run asked for more steps than it has
              continues training (later GPU runs add steps), a run with at least the
              steps asked for is returned as it is; a folder without one is refused
``weights``   saved weights (``init``, :func:`geo.weights.initial`) in a folder without a
              checkpoint: their step count continues with a fresh optimiser and a warm
              restart of the schedule; without ``init``, or over a checkpoint, refused
``auto``      (default) what the folder and the arguments allow, in that order: resume
              a checkpoint, else start from ``init``, else from scratch
============  ===========================================================================

An explicit mode also refuses an ``init`` it would not use (``scratch``, ``resume``).

Precision (bf16 autocast, channels_last, float32 master weights where the device has bf16
units) is :mod:`geo.precision`'s; torch.compile is optional (``compile``; a failure is
printed and training goes on eager); under DDP see :mod:`geo.train.ddp`.
"""
from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import torch

from geo import distributed
from geo.lock import hold
from geo.pairs import PairSource
from geo.train.checkpoint import check_checkpoint, load_models, load_optimiser, read_checkpoint, save_checkpoint
from geo.train.config import TrainConfig
from geo.train.ddp import check_split, log_means, sample_shard, wrap_ddp
from geo.train.evaluate import heldout_batches, heldout_iou
from geo.train.schedule import lr_at
from geo.train.step import build, compile_models, make_optimizer, train_step


class NeedsImages(RuntimeError):
    """I_SG needs Human3.6M video frames, which neither the pack nor the embedded default has."""


class Interrupted(KeyboardInterrupt):
    """Training stopped by SIGINT or SIGTERM after saving its checkpoint (the message names it)."""


INIT_FROM = ("auto", "scratch", "resume", "weights")   # how a run starts (module docstring)


def train(cfg: TrainConfig, source: PairSource, run_dir, *args, **kwargs):
    """:func:`_train` (its docstring says what) with ``run_dir`` held by this process
    (:func:`geo.lock.hold`; rank 0 under DDP): a second process on the same folder waits
    for the first and then continues or loads its checkpoint, instead of both writing
    last.pt and one run being lost."""
    if run_dir is None or not distributed.is_main():
        return _train(cfg, source, run_dir, *args, **kwargs)
    with hold(run_dir, wait=True):
        return _train(cfg, source, run_dir, *args, **kwargs)


def _train(cfg: TrainConfig, source: PairSource, run_dir, progress: bool = True, stop_after: int | None = None,
           heldout: PairSource | None = None, eval_every: int | None = None, sampling: str = "shard",
           init: dict | None = None, init_from: str = "auto"):
    """Train the configured variant in ``run_dir``, started as ``init_from`` says
    (:func:`start_mode`). ``stop_after``: end this call after that many of its steps (to
    test resuming). ``heldout``, ``eval_every`` (default ``cfg.eval_every``): log the
    held-out synthesis IoU (rank 0). ``sampling``: how DDP ranks draw pairs. ``init``:
    saved weights of the same configuration to start from (:func:`geo.weights.initial`).
    Returns (models, history) on every rank."""
    if cfg.variant == "I_SG":
        raise NeedsImages("I_SG takes raw image crops as input and needs Human3.6M video frames; "
                          "neither the compact pack nor the embedded default has them, so it is skipped")
    check_split(cfg, distributed.world(), sampling)
    run_dir = Path(run_dir)
    ck = run_dir / "last.pt"
    how = start_mode(init_from, ck, init)
    for tmp in run_dir.glob(".last.pt.*.tmp") if distributed.is_main() else ():   # left by a process killed mid-write
        tmp.unlink(missing_ok=True)
    models = build(cfg, source.device)
    opt = make_optimizer(cfg, models, source.device)
    if how == "resume":
        history, step, start = _resume(ck, cfg, source, models, opt, say=progress and distributed.is_main())
    elif how == "weights":
        history, step, start = _from_weights(init, models)
    else:
        history, step, start = _scratch()
    if step < cfg.steps:
        _run(cfg, source, ck, models, opt, history, step, start, progress=progress, stop_after=stop_after,
             heldout=heldout, eval_every=cfg.eval_every if eval_every is None else eval_every, sampling=sampling)
    [m.eval() for m in models.values()]
    return models, history


def start_mode(init_from: str, ck: Path, init: dict | None) -> str:
    """How a run with checkpoint path ``ck`` starts: "scratch", "resume" or "weights"
    (module docstring); ValueError naming the folder, the checkpoint or the argument when
    an explicit mode does not fit them."""
    if init_from not in INIT_FROM:
        raise ValueError(f"init_from {init_from!r}: expected one of {INIT_FROM}")
    has = ck.exists()
    if init_from == "auto":
        return "resume" if has else "weights" if init is not None else "scratch"
    if init_from == "resume" and not has:
        raise ValueError(f"{ck.parent}: holds no checkpoint (last.pt) to resume; "
                         f"expected a run folder with one, or init_from='scratch' to start a run there")
    if init_from != "resume" and has:
        raise ValueError(f"{ck}: a checkpoint is already there, and init_from={init_from!r} starts a new run; "
                         f"resume it (init_from='resume') or choose another run folder")
    if init_from == "weights" and init is None:
        raise ValueError("init_from='weights': no saved weights given (init=, from geo.weights.initial)")
    if init_from != "weights" and init is not None:
        raise ValueError(f"init_from={init_from!r} with saved weights (init=): weights only start a run with "
                         f"init_from='weights' or 'auto'")
    return init_from


def _new_history() -> dict:
    return {"step": [], "loss": [], "l2_ij": [], "l2_ji": [], "lrc": [], "lr": [], "pairs_per_s": [],
            "iou_step": [], "iou": []}


def _scratch() -> tuple[dict, int, int]:
    """(history, step, schedule start) of a new run: the models as :func:`build` made them."""
    return _new_history(), 0, 0


def _from_weights(init: dict, models: dict) -> tuple[dict, int, int]:
    """Start from saved weights: their step count and history continue, with a fresh
    optimiser (saved weights hold none) and so a warm restart of the schedule from their
    step (:func:`~geo.train.schedule.lr_at`'s ``start``)."""
    load_models(models, init["models"], init.get("source"))
    start = int(init["step"])
    history = {**_new_history(), **(init.get("history") or {}), "continued_from": init.get("source"),
               "lr_start": start}
    return history, start, start


def _resume(ck: Path, cfg: TrainConfig, source: PairSource, models: dict, opt, say: bool) -> tuple[dict, int, int]:
    """Continue the run of checkpoint ``ck`` (refused if stale): models, optimiser and the
    sampler's RNG come back, so an interrupted (or extended) run takes the steps an
    uninterrupted one would; one with at least ``cfg.steps`` is left as it is."""
    state = read_checkpoint(ck, source.device)
    check_checkpoint(state, cfg, ck.parent, source.fingerprint)
    load_models(models, state["models"], ck)
    history, step = {**_new_history(), **state["history"]}, state["step"]
    start = int(history.get("lr_start") or 0)
    if step >= cfg.steps:
        if step > cfg.steps and say:
            print(f"{ck.parent}: checkpoint has {step} steps (>= {cfg.steps} asked); using it as it is")
        return history, step, start
    load_optimiser(opt, state["opt"], cfg, source.device)
    source.gen.set_state(state["sampler_rng"].cpu())  # RNG states are CPU byte tensors
    return history, step, start


def _run(cfg: TrainConfig, source: PairSource, ck: Path, models: dict, opt, history: dict, step: int, start: int,
         progress: bool, stop_after: int | None, heldout: PairSource | None, eval_every: int, sampling: str) -> None:
    """The loop: train from ``step`` to ``cfg.steps`` (or until stopped), logging into
    ``history`` and checkpointing to ``ck`` as the module docstring says."""
    from tqdm import tqdm

    n_ranks, main = distributed.world(), distributed.is_main()
    device = source.device
    cuda = device.type == "cuda"
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
        if main:
            save_checkpoint(ck, cfg, source, models, opt, history, step, finished, n_ranks, sampling)

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
            fwd, terms = _step(fwd, eager, opt, source, cfg, step, start, sampling, first=done == 0)
            for k, v in terms.items():
                acc[k] = acc[k] + v.detach().float() if k in acc else v.detach().float().clone()  # never alias an output buffer
            step += 1
            done += 1
            nl += 1
            bar.update(1)
            logged = step % cfg.log_every == 0 or step == cfg.steps
            if logged:
                _log_interval(history, acc, nl, cfg, step, start, tl)
                acc, nl = {}, 0
                bar.set_postfix(loss=f"{history['loss'][-1]:.1f}")
                tl = time.time()
            if evals is not None and (step % eval_every == 0 or step == cfg.steps):
                evaluate()
                tl = time.time()
            if step % cfg.checkpoint_every == 0 or (cfg.checkpoint_seconds and time.time() - t_ck >= cfg.checkpoint_seconds):
                checkpoint(step >= cfg.steps)
                t_ck = time.time()
            if _stop_now(cfg, stop, n_ranks, logged, done, stop_after, t0, device):
                break
    finally:
        stop.restore()
    history["wall_s"] = history.get("wall_s", 0.0) + time.time() - t0
    bar.close()
    checkpoint(step >= cfg.steps)
    if stop.caught:
        raise Interrupted(f"{cfg.variant}: stopped by {stop.caught} at step {step}/{cfg.steps}; checkpoint saved in "
                          f"{ck} (run the same command with --resume to continue)")


def _step(fwd, eager, opt, source: PairSource, cfg: TrainConfig, step: int, start: int, sampling: str, first: bool):
    """(the forward to use from now on, the step's losses): one training step; when the
    first step of a compiled model fails, it is retried eager on the same batch and the
    run stays eager (a failed compile must not cost the run)."""
    rng = source.gen.get_state() if fwd is not eager and first else None
    try:
        batch = sample_shard(source, cfg, step, sampling)
        return fwd, train_step(fwd, opt, batch, cfg, lr_at(cfg, step, start))
    except Exception as e:  # noqa: BLE001 - only the first compiled step falls back
        if rng is None:
            raise
        if distributed.is_main():
            print(f"torch.compile failed ({type(e).__name__}: {str(e)[:300]}); training eager")
        source.render_compile = False
        opt.zero_grad(set_to_none=True)
        source.gen.set_state(rng)
        batch = sample_shard(source, cfg, step, sampling)
        return eager, train_step(eager, opt, batch, cfg, lr_at(cfg, step, start))


def _log_interval(history: dict, acc: dict, nl: int, cfg: TrainConfig, step: int, start: int, tl: float) -> None:
    """One log row: the interval's mean losses, its last learning rate and its pairs/s."""
    history["step"].append(step)
    for k, v in log_means(acc, nl).items():
        history[k].append(v)
    now = time.time()   # after .item(), which syncs: the interval's wall time is the device's
    history["lr"].append(lr_at(cfg, step - 1, start))
    history["pairs_per_s"].append(cfg.batch * nl / max(now - tl, 1e-9))


def _stop_now(cfg: TrainConfig, stop, n_ranks: int, logged: bool, done: int, stop_after, t0: float, device) -> bool:
    """Whether the loop stops after this step: a caught signal, ``stop_after`` steps done,
    or ``max_seconds`` spent; under DDP the ranks decide together, at log steps."""
    if n_ranks == 1 and stop.caught:
        return True
    if n_ranks > 1 and logged and distributed.any_rank(bool(stop.caught), device):
        return True
    if stop_after is not None and done >= stop_after:
        return True
    if cfg.max_seconds and (n_ranks == 1 or logged):
        return bool(distributed.any_rank(time.time() - t0 > cfg.max_seconds, device))
    return False


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


"""Training the generators (paper Sec. 3.2-3.3), with checkpoints and resume.

One module per concern, in the order a run meets them:

==========================  ================================================================
:mod:`geo.train.config`      variants, :class:`TrainConfig`, profiles, a run's identity
:mod:`geo.train.schedule`    the learning rate at each step (warm-up, cosine)
:mod:`geo.train.step`        the generators, their optimiser, one training step
:mod:`geo.train.ddp`         the batch sharded over DDP ranks
:mod:`geo.train.evaluate`    the held-out synthesis IoU logged during training
:mod:`geo.train.checkpoint`  ``last.pt``: written, read, checked against the config
:mod:`geo.train.loop`        :func:`train`: how a run starts (``init_from``), the loop
:mod:`geo.train.throughput`  pairs/s measured, and the steps a time budget buys
:mod:`geo.train.history`     one variant's successive runs joined into one training curve
:mod:`geo.train.cli`         ``python -m geo train``
==========================  ================================================================

Every name is also here, so that ``from geo.train import X`` reads as it always has.
"""
from geo.train.config import (LATER_FIELDS, NOT_IDENTITY, TRAINED, VARIANTS, TrainConfig, config_for,
                              identity, identity_hash)
from geo.train.schedule import lr_at
from geo.train.step import build, compile_models, make_optimizer, prepare, sample, step_losses, train_step
from geo.train.ddp import SAMPLING, check_split, log_means, sample_shard, slice_batch, wrap_ddp
from geo.train.evaluate import (HELDOUT_PAIRS, HELDOUT_SEED, heldout_batches, heldout_iou, map_iou, plateau,
                                 synthesise)
from geo.train.checkpoint import (CheckpointError, StaleCheckpoint, check_checkpoint, load_checkpoint, load_models,
                                  load_optimiser, read_checkpoint, save_checkpoint)
from geo.train.loop import INIT_FROM, Interrupted, NeedsImages, start_mode, train
from geo.train.throughput import DEFAULT_SHARES, measure_throughput, steps_for_budget, time_steps
from geo.train.cli import check_out, command

__all__ = [
    "VARIANTS", "TRAINED", "NOT_IDENTITY", "LATER_FIELDS", "TrainConfig", "config_for", "identity",
    "identity_hash",
    "lr_at",
    "build", "make_optimizer", "compile_models", "prepare", "step_losses", "sample", "train_step",
    "SAMPLING", "slice_batch", "sample_shard", "check_split", "wrap_ddp", "log_means",
    "HELDOUT_PAIRS", "HELDOUT_SEED", "map_iou", "synthesise", "heldout_batches", "heldout_iou", "plateau",
    "CheckpointError", "StaleCheckpoint", "save_checkpoint", "read_checkpoint", "load_models", "load_checkpoint",
    "load_optimiser", "check_checkpoint",
    "NeedsImages", "Interrupted", "INIT_FROM", "train", "start_mode",
    "DEFAULT_SHARES", "steps_for_budget", "measure_throughput", "time_steps",
    "check_out", "command",
]

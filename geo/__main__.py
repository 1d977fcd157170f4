"""Command line.

    python -m geo reproduce [--data embedded|PATH] [--profile quick|full] [--precomputed DIR]
    python -m geo full-gpu --data PATH --out DIR [--stages ...] [--profile full|cpu|tiny]
                           [--budget-s S] [--commit SHA]
    python -m geo lift IMAGE|VIDEO... [--out DIR] [--annotations MPII_JSON] [--device auto|cpu|cuda]
                           [--max-frames N] [--stride S]
    [torchrun --nproc_per_node=N] python -m geo train --variant V --out DIR [--profile quick|cpu|full]
                           [--data embedded|PATH] [--resume] [--steps N] [--batch B] [--lr LR] [--seed S]

lift: lifts people in your images and videos to 3D with the committed weights (geo/lift.py;
the 2D estimator needs pip install -e .[wild]). reproduce: runs every numbered notebook in order
with papermill (what make reproduce does). full-gpu: computes a profile's results in
resumable stages (geo/pipeline.py) and writes the JSON the notebooks draw from
(precomputed); scripts/gpu_run.sh is the one prepared run that calls it on a GPU, and
--profile cpu trains the generators on a CPU's bf16 units within --budget-s. train: trains
one generator variant in a run folder, in one process or, under torchrun, on N ranks with
PyTorch DDP (--batch is the global batch), and prints pairs/s. Every argument is checked
before any heavy work starts; paths are resolved against the caller's directory.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
import os
from pathlib import Path

from geo import distributed
from geo import pipeline
from geo import wild
from geo.cache import StaleCache
from geo.data import DataError
from geo.data.h36m import check_layout
from geo.device import has_cuda
from geo.experiments import check_precomputed
from geo.lock import Busy, hold
from geo.pipeline import STAGES
from geo.profiles import RUNS, TRAIN
from geo.results import REPO, Provenance, figures_dir, runs_dir
from geo.lift import expand_inputs, lift_images, resolve_device
from geo.train import VARIANTS, CheckpointError, Interrupted, StaleCheckpoint, command, config_for
from geo.train import check_out as check_run_folder   # the run folder's checkpoint against the config
from geo.weights import WeightsError

NOTEBOOKS = REPO / "notebooks"
SEED_MAX = 2**63 - 1
PRECOMPUTED = {"02_generators": "generators", "03_fig5_label_efficiency": "fig5", "04_fig6_ablations": "fig6",
               "05_tables": "tables"}


class UsageError(ValueError):
    """A bad command-line argument: the message names it and what was expected."""


def check_data(data: str) -> str:
    """``embedded`` or an absolute path to a readable Human3.6M copy (either layout)."""
    if data in ("embedded", "default"):
        return "embedded"

    p = Path(data).expanduser().resolve()
    check_layout(p)  # raises DataError naming the folder and the layouts expected
    return str(p)


def check_out(out: str, arg: str = "--out") -> Path:
    """``out`` resolved, when it can be a folder that geo writes into: not empty, not a
    file, and its nearest existing ancestor a writable folder; else UsageError naming
    ``arg``. Checked before any work, so a run never fails at its end for its output."""
    if not out or not out.strip():
        raise UsageError(f"{arg} {out!r}: empty; expected a folder path")
    p = Path(out).expanduser().resolve()
    if p.exists() and not p.is_dir():
        raise UsageError(f"{arg} {out}: is a file; expected a folder (existing or new)")
    up = p
    while not up.exists():
        up = up.parent
    if not up.is_dir():
        raise UsageError(f"{arg} {out}: {up} is a file, so no folder can be made under it; expected a folder path")
    if not os.access(up, os.W_OK | os.X_OK):
        raise UsageError(f"{arg} {out}: {up} is not writable; expected a folder this user can write")
    return p


def check_precomputed_folder(pre: Path, data: str, profile: str) -> None:
    """Every stage JSON in ``pre`` that a notebook would draw, checked before papermill
    starts (:func:`geo.experiments.check_precomputed`); UsageError naming it otherwise."""
    for stage in PRECOMPUTED.values():
        if (pre / f"{stage}.json").exists():
            try:
                check_precomputed(pre / f"{stage}.json", stage, data, profile)
            except (ValueError, KeyError) as e:
                raise UsageError(f"--precomputed {e.args[0] if e.args else e}") from e


def portable(path) -> str:
    """A notebook parameter for ``path``: relative to ``notebooks/`` (where the notebooks
    run) when it lies in the folder that holds the repository -- the repository itself, or
    ``../shared/data`` beside it -- so that an executed notebook runs on another machine
    with the same layout; else as given. Names that are not paths ("embedded") pass."""
    p = Path(str(path)).expanduser()
    if not p.exists():
        return str(path)
    p = p.resolve()
    try:
        p.relative_to(NOTEBOOKS.resolve().parent.parent)
    except ValueError:
        return str(path)
    return os.path.relpath(p, NOTEBOOKS.resolve())


def reproduce(data: str, profile: str, precomputed: str | None = None) -> int:
    import papermill as pm

    results_dir = figures_dir(prov=Provenance(data=data, profile=profile))
    try:   # executed notebooks beside the results' own key: one folder per data copy and profile
        sub = results_dir.relative_to(runs_dir() / "figures")
    except ValueError:   # a published run (figures/): its data's name and the profile
        sub = Path(f"{Path(str(data)).name}-{profile}")
    out = runs_dir() / "notebooks" / sub
    out.mkdir(parents=True, exist_ok=True)
    books = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if not books:
        print(f"no notebooks found in {NOTEBOOKS}", file=sys.stderr)
        return 1
    # the kernels' progress bars reach this terminal line by line (log_output): one update
    # every 15 s keeps a long step visible without hundreds of lines (a user's value wins)
    os.environ.setdefault("TQDM_MININTERVAL", "15")
    skipped = []
    for nb in books:
        params = {"data": portable(data), "profile": profile}
        stage = PRECOMPUTED.get(nb.stem)
        if precomputed and stage and (Path(precomputed) / f"{stage}.json").exists():
            params["precomputed"] = portable(Path(precomputed) / f"{stage}.json")
        elif precomputed and stage and profile == "full" and not has_cuda():
            # Drawing a GPU run's results: a stage it did not compute is not started on a
            # CPU, where the full profile takes hours (Table 1: 15-20 h on 2 cores).
            skipped.append(f"{nb.name} (no {stage}.json in {precomputed}; compute it on a GPU: "
                           f"GEO_STAGES={stage} scripts/gpu_run.sh ..., or run the notebook alone to compute "
                           f"it here, slowly)")
            print(f"== {nb.name} skipped: {skipped[-1]}", flush=True)
            continue
        print(f"== {nb.name} {params}", flush=True)
        t = time.time()
        pm.execute_notebook(str(nb), str(out / nb.name), parameters=params, cwd=str(NOTEBOOKS),
                            progress_bar=False, log_output=True)
        print(f"   done in {time.time() - t:.0f} s", flush=True)
    print(f"results in {results_dir}, executed notebooks in {out}")
    if skipped:
        print("skipped:\n  " + "\n  ".join(skipped))
    return 0


def lift(images, out, annotations=None, variant: str = "DG+AUG", png: bool = True, device: str = "auto",
         max_frames: int | None = None, stride: int = 1) -> int:
    """``geo lift``: exit 0 when every input was lifted, 1 when some failed (each named on
    stderr; the others still finish), 2 when nothing could start (bad --device, no
    estimator, no weights, bad annotations)."""
    try:
        for name, v in (("--max-frames", max_frames), ("--stride", stride)):
            if v is not None and v < 1:
                raise UsageError(f"{name} {v}: expected a positive integer")
        dev = resolve_device(device, "--device")   # refused before the estimator or the weights load
        if annotations is None:
            wild.require()

        images = expand_inputs(images)   # folders and patterns: refused before the estimator starts
        failed = lift_images(images, Path(out).expanduser().resolve(), annotations=annotations, variant=variant,
                             png=png, device=dev, max_frames=max_frames, stride=stride)
    except (wild.MissingExtra, WeightsError, DataError, ValueError) as e:
        print(f"geo: error: {e}", file=sys.stderr)
        return 2
    if failed:
        print(f"geo lift: {failed} of {len(images)} inputs failed (see above)", file=sys.stderr)
    return 1 if failed else 0


def train_command(a, data: str) -> int:
    """``geo train``: check every argument (UsageError naming it), then join the process
    group torchrun describes (if any) and train (:func:`geo.train.command`)."""
    if a.variant == "I_SG":
        raise UsageError("--variant I_SG: needs Human3.6M video frames, which no supported data has; "
                         f"expected one of {[v for v in VARIANTS if v != 'I_SG']}")
    for name in ("steps", "batch", "lr"):
        if getattr(a, name) is not None and getattr(a, name) <= 0:
            raise UsageError(f"--{name} {getattr(a, name)}: expected a positive number")
    if a.lr is not None and not math.isfinite(a.lr):   # inf trains to NaN, nan fails deep in the optimiser
        raise UsageError(f"--lr {a.lr}: expected a finite positive learning rate")
    if a.seed is not None and not 0 <= a.seed <= SEED_MAX:   # what torch and numpy can seed with
        raise UsageError(f"--seed {a.seed}: expected an integer from 0 to 2**63 - 1")
    over = {k: getattr(a, k) for k in ("steps", "batch", "lr", "seed") if getattr(a, k) is not None}
    cfg = config_for(a.variant, a.profile, **over)
    world = distributed.env_world()
    if cfg.batch % world:
        raise UsageError(f"--batch {cfg.batch}: the global batch does not split over WORLD_SIZE={world} ranks; "
                         f"expected a multiple of {world}")
    out = check_out(a.out)
    with contextlib.ExitStack() as held:
        if distributed.is_main():   # another process training in --out: refused before anything is read or loaded
            try:
                held.enter_context(hold(out))
            except Busy as e:
                raise UsageError(f"--out {e}") from e
        return _train_in(a, cfg, data, out)


def _train_in(a, cfg, data: str, out: Path) -> int:
    """The rest of ``geo train``, with ``out`` held: its checkpoint checked, then training."""
    try:
        start = check_run_folder(out, cfg, a.resume)
    except (ValueError, StaleCheckpoint, CheckpointError) as e:
        raise UsageError(str(e)) from e
    if a.resume and start == 0 and distributed.is_main():
        print(f"--resume: {out} holds no checkpoint (last.pt); starting from step 0", flush=True)
    device = distributed.init_from_env()
    try:
        command(cfg, data, out, start, device, init_from="auto" if a.resume else "scratch")
    except Interrupted as e:   # Ctrl-C or SIGTERM: the checkpoint is saved; one line, no traceback
        print(f"geo train: {e}", file=sys.stderr, flush=True)
        return 130
    finally:
        distributed.close()
    return 0


class _Defaults(argparse.HelpFormatter):
    """Help that names each argument's default, unless it has none or its help says it."""

    def _get_help_string(self, action):
        h = action.help or ""
        if "default" in h or action.default in (None, False, argparse.SUPPRESS) or action.required:
            return h
        return f"{h} (default: %(default)s)"


def _parser() -> argparse.ArgumentParser:
    """The parser of ``python -m geo``: ``--version`` and one subcommand per job, each
    built by its own function below (in the order ``--help`` lists them)."""
    ap = argparse.ArgumentParser(prog="geo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"geo {__import__('geo').__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for add in (_reproduce_parser, _full_gpu_parser, _lift_parser, _train_parser):
        add(sub)
    return ap


def _reproduce_parser(sub) -> None:
    """``geo reproduce``'s options: the data, the profile and a folder of precomputed results."""
    r = sub.add_parser("reproduce", help="run every notebook in order (papermill)", formatter_class=_Defaults,
                       description="Run notebooks/NN_*.ipynb in order with papermill; executed copies go to "
                                   "runs/notebooks/, results to runs/figures/ (figures/ for a full run on Human3.6M).")
    r.add_argument("--data", default="embedded", help="'embedded' or a path to a Human3.6M copy")
    r.add_argument("--profile", default="quick", choices=["quick", "full"],
                   help="quick: minutes on a CPU; full: the paper's setting (a GPU, or --precomputed)")
    r.add_argument("--precomputed", default=None, help="folder with full-gpu JSON results to draw from")


def _full_gpu_parser(sub) -> None:
    """``geo full-gpu``'s options: data, output folder, stages, profile and the run's sizing."""
    f = sub.add_parser("full-gpu", help="compute a profile's results in resumable stages (GPU, or the cpu profile)",
                       formatter_class=_Defaults,
                       description="Compute the results the notebooks draw (generators, Figure 5, Figure 6, "
                                   "regressors, tables) in stages that resume; a finished stage is skipped.")
    f.add_argument("--data", required=True, help="path to a Human3.6M copy (either layout), or 'embedded'")
    f.add_argument("--out", required=True, help="folder for the stages' JSON, weights/ and schedule.json")
    f.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, from {','.join(STAGES)}")
    f.add_argument("--profile", default="full", choices=sorted(RUNS),
                   help="'full' on a GPU; 'tiny' rehearses the whole run on CPU in a minute")
    f.add_argument("--budget-s", type=float, default=None,
                   help="wall-clock budget of the whole run (s); training is sized to fit it")
    f.add_argument("--commit", default=None, help="git commit of the code (the device copy has no .git)")
    f.add_argument("--variants", default=None,
                   help="comma-separated generators the generators stage trains (default: all four); e.g. one "
                        "process per core, each with its own --out; the fig6 stage then computes only their rungs "
                        "(geo.experiments.merge_fig6 puts them into a whole ladder)")
    f.add_argument("--k-max", type=int, default=None, metavar="K",
                   help="labelled rows at most K: Figure 5's sweep stops there (e.g. leave the all-frames point to "
                        "another run) and Figure 6 trains on K rows per seed")
    f.add_argument("--steps", type=int, default=None, metavar="N",
                   help="train each generator to N steps in all, continuing saved weights (instead of steps sized "
                        "from --budget-s), e.g. the same number of training pairs for every variant")
    f.add_argument("--k-min", type=int, default=None, metavar="K",
                   help="labelled rows at least K: Figure 5's sweep starts there (e.g. the all-frames point as a run "
                        "of its own; geo.experiments.merge_fig5 joins it to the other k)")
    f.add_argument("--label-seeds", default=None, metavar="S",
                   help="comma-separated label-subset seeds of Figure 5 (default: the profile's), e.g. 0")


def _lift_parser(sub) -> None:
    """``geo lift``'s options: the inputs, the variant, what is written where, and the video sampling."""
    li = sub.add_parser("lift", help="3D poses from your own images and videos (committed weights; needs the "
                                     "'wild' extra)", formatter_class=_Defaults,
                        description="Image -> MediaPipe Pose 2D -> 16 joints -> skeleton maps -> G -> 3D pose; one "
                                    "PNG and one JSON (17 joints, mm, root-relative, camera frame) per image. A video "
                                    "(.mp4 .avi .mov .mkv .webm) goes frame by frame into one <video>.npz of per-frame "
                                    "arrays, an <video>_overlay.mp4 of the 2D skeleton and a <video>.json summary.")
    li.add_argument("images", nargs="+", metavar="IMAGE|VIDEO",
                    help="image files (.jpg, .png, ...), videos (.mp4, ...), folders of them, or patterns such as "
                         "'shots/*.jpg'")
    li.add_argument("--variant", default="DG+AUG", choices=["DG+AUG", "SG+AUG"],
                    help="which committed encoder and Regression#1 head")
    li.add_argument("--no-png", dest="png", action="store_false",
                    help="write only the JSON of each image (and no overlay video)")
    li.add_argument("--out", default="lift-out", help="folder for the results (default: ./lift-out)")
    li.add_argument("--annotations", default=None, metavar="MPII_JSON",
                    help="take the 2D joints from an MPII JSON instead of the 2D estimator (images only)")
    li.add_argument("--device", default="auto",
                    help="where the lifter runs: auto (CUDA when there is a GPU), cpu, cuda or cuda:N; the 2D "
                         "estimator runs on the CPU")
    li.add_argument("--max-frames", type=int, default=None, metavar="N",
                    help="of each video, lift at most N frames (default: all)")
    li.add_argument("--stride", type=int, default=1, metavar="S", help="of each video, lift every S-th frame")


def _train_parser(sub) -> None:
    """``geo train``'s options: the variant, the run folder, the profile and its overrides."""
    t = sub.add_parser("train", help="train one generator variant (one process, or N ranks under torchrun)",
                       formatter_class=_Defaults,
                       description="Train one generator variant in a run folder (checkpoint last.pt; Ctrl-C saves "
                                   "it and --resume continues). I_SG needs video frames no supported data has.")
    t.add_argument("--variant", required=True, choices=[v for v in VARIANTS if v != "I_SG"],
                   help="AE, SG, SG+AUG, DG or DG+AUG (paper Figure 6)")
    t.add_argument("--out", required=True, help="run folder: last.pt (checkpoint and history) goes there")
    t.add_argument("--profile", default="quick", choices=sorted(TRAIN),
                   help="quick: CPU smoke test; cpu: width 16 on a CPU's bf16 units; full: width 32, a GPU")
    t.add_argument("--data", default="embedded", help="'embedded' or a path to a Human3.6M copy")
    t.add_argument("--resume", action="store_true", help="continue the checkpoint in --out (any number of ranks)")
    t.add_argument("--steps", type=int, default=None, help="total steps (default: the profile's)")
    t.add_argument("--batch", type=int, default=None, help="global batch, split over the ranks (default: the profile's)")
    t.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the profile's)")
    t.add_argument("--seed", type=int, default=None, help="model and sampler seed (default 0)")


def _lift_command(a) -> int:
    """``geo lift``: --out checked first (exit 2 naming it, nothing written), then
    :func:`lift`, which checks the rest and reports each input."""
    try:
        check_out(a.out)
    except UsageError as e:
        print(f"geo: error: {e}", file=sys.stderr)
        return 2
    return lift(a.images, a.out, a.annotations, a.variant, a.png, a.device, a.max_frames, a.stride)


def check_precomputed_arg(precomputed: str | None, data: str, profile: str) -> str | None:
    """``reproduce --precomputed`` resolved to an absolute folder that holds at least one
    stage JSON, each checked against ``data`` and ``profile``; None when not given.
    UsageError naming the folder otherwise, so that no notebook starts on a bad one."""
    if precomputed is None:
        return None
    pre = Path(precomputed).expanduser().resolve()
    if not pre.is_dir():
        raise UsageError(f"--precomputed {precomputed}: no such folder; expected the --out folder "
                         f"of `python -m geo full-gpu`")
    if not any((pre / f"{s}.json").exists() for s in PRECOMPUTED.values()):
        raise UsageError(f"--precomputed {pre}: holds none of "
                         f"{sorted(s + '.json' for s in PRECOMPUTED.values())}")
    check_precomputed_folder(pre, data, profile)
    return str(pre)


def check_full_gpu(a) -> tuple[list[str], list[str] | None, Path]:
    """``geo full-gpu``'s options checked before any stage starts: (stages, variants or
    None for all, --out resolved); UsageError naming the first bad one."""
    stages = [s.strip() for s in a.stages.split(",") if s.strip()]
    bad = [s for s in stages if s not in STAGES]
    if bad or not stages:
        raise UsageError(f"--stages {a.stages!r}: unknown {bad}; expected a comma-separated list from {list(STAGES)}")
    if a.budget_s is not None and not (math.isfinite(a.budget_s) and a.budget_s > 0):
        raise UsageError(f"--budget-s {a.budget_s}: expected a positive number of seconds")
    variants = None if a.variants is None else [v.strip() for v in a.variants.split(",") if v.strip()]
    seeds = None
    if a.label_seeds is not None:
        try:
            seeds = [int(v) for v in a.label_seeds.split(",") if v.strip()]
        except ValueError as e:
            raise UsageError(f"--label-seeds {a.label_seeds!r}: expected comma-separated integers") from e
    for arg, value, kw in (("--variants", a.variants, {"variants": variants}), ("--k-max", a.k_max, {"k_max": a.k_max}),
                             ("--steps", a.steps, {"steps": a.steps}),
                             ("--k-min", a.k_min, {"k_min": a.k_min, "k_max": a.k_max}),
                             ("--label-seeds", a.label_seeds, {"label_seeds": seeds})):
        try:
            pipeline.check_options(**kw)
        except ValueError as e:
            raise UsageError(f"{arg} {value!r}: {e}") from e
    a.label_seeds_list = seeds
    return stages, variants, check_out(a.out)


def _full_gpu_command(a, data: str, stages: list[str], variants: list[str] | None, out: Path) -> int:
    """``geo full-gpu`` with its options checked: the pipeline's stages; exit 2 when --out
    holds another run's results, 130 when interrupted (the same command continues)."""
    try:
        return pipeline.run(data, out, stages, a.profile, a.budget_s, a.commit, variants=variants, k_max=a.k_max,
                            steps=a.steps, **({"k_min": a.k_min} if a.k_min is not None else {}),
                            **({"label_seeds": a.label_seeds_list} if a.label_seeds_list is not None else {}))
    except StaleCache as e:   # raised before any work: OUT belongs to another run
        print(f"geo: error: --out {e}", file=sys.stderr)
        return 2
    except Interrupted as e:   # Ctrl-C or SIGTERM: checkpoints saved; the same command continues
        print(f"geo full-gpu: {e}", file=sys.stderr, flush=True)
        return 130


def main(argv=None) -> int:
    """``python -m geo``: parse ``argv``, check its arguments, run the command; returns the exit code."""
    a = _parser().parse_args(argv)
    if a.cmd == "lift":
        return _lift_command(a)
    try:   # every argument checked here; a bad one is exit 2 with its name, before any heavy work
        data = check_data(a.data)
        if a.cmd == "train":
            return train_command(a, data)
        if a.cmd == "reproduce":
            return reproduce(data, a.profile, check_precomputed_arg(a.precomputed, data, a.profile))
        checked = check_full_gpu(a)
    except (UsageError, DataError) as e:
        print(f"geo: error: {e}", file=sys.stderr)
        return 2
    # outside the check above: an error of the run itself is not reported as a bad argument
    return _full_gpu_command(a, data, *checked)


if __name__ == "__main__":
    sys.exit(main())

"""The full-profile run on one GPU, in stages that resume, sized to a time budget.

A GPU run may have 15 minutes of device time in all (the machine's start included) and one
command runs at most 10 minutes, so everything the paper's figures need is computed by
one command (``scripts/gpu_run.sh`` -> ``python -m geo full-gpu``) within a wall-clock
budget (``--budget-s``, 540 s by default):

=============  =============================================================  ==========
stage          what                                                           writes
=============  =============================================================  ==========
``bench``      the generator step's speed levers, one row each                ``bench_train_generator_cuda.json``
``generators`` AE, SG, SG+AUG, DG+AUG; steps sized from the measured           ``generators.json``,
               throughput so that all four fit the training share of the       ``weights/``
               budget (DG+AUG, Figure 5's encoder, the largest share);
               held-out S9/S11 synthesis IoU logged during training
``fig5``       Figure 5: Baseline#1 vs Regression#1 over k                    ``fig5.json``
``fig6``       Figure 6: the ablation ladder (Regression#1 and #2)            ``fig6.json``
``regressors`` Martinez et al. on all frames (GT, SH 2D) vs their targets       ``bench_regressors.json``
``tables``     Tables 1 and 2: Baseline#1, Regression#1, Martinez et al.       ``tables.json``
               with and without G (Regression#2), Protocols #1-#3, SH and GT
               2D (:func:`geo.tables.compute`); Table 2 when ``$GEO_3DHP``
               names an MPI-INF-3DHP test set on the machine
=============  =============================================================  ==========

Each stage writes its JSON (with a provenance ``meta``) as soon as it is done, and a stage
whose JSON exists is skipped (OUT's ``made_by.json`` must name the same data and
profile: :mod:`geo.cache`), so a command cut off by its limit is continued by running
the same command again; generators resume from their checkpoints in ``$GEO_RUNS``.
``--profile tiny`` runs the same code on CPU in about a minute (tests/test_gpu_run.py),
which is how the script is rehearsed before GPU time is spent on it.
"""
from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from geo import experiments
from geo import tables
from geo import weights
from geo.cache import claim
from geo.data import load
from geo.data.mpi_inf_3dhp import load_3dhp_mmpose, load_3dhp_official
from geo.pairs import PairSource
from geo.profiles import EXPERIMENTS, RUNS
from geo.results import REPO, Provenance, atomic_write, dumps
from geo.train import DEFAULT_SHARES, config_for, load_checkpoint, measure_throughput, steps_for_budget
from geo.train import TRAINED   # AE, SG, SG+AUG, DG+AUG: the variants a run trains

STAGES = ("bench", "generators", "fig5", "fig6", "regressors", "tables")
# Generators whose weights come back from the GPU run and are committed (weights/): what
# Figures 3-6 and Table 1 need, within the device tool's 64 MiB of returned files
# (width 32: encoder 12.0 MiB, decoder 7.3 MiB in bf16, i.e. 58 MiB for these six files).
PERSIST = {"DG+AUG": ("phi", "psi", "mu", "nu"), "SG+AUG": ("phi", "psi")}

def _log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


class Clock:
    """Seconds left of the run's budget."""

    def __init__(self, budget_s: float | None):
        self.t0, self.budget = time.time(), budget_s

    def elapsed(self) -> float:
        return time.time() - self.t0

    def left(self) -> float:
        return float("inf") if self.budget is None else self.budget - self.elapsed()


def _write(out: Path, name: str, key: str, result, prov: Provenance, **more):
    atomic_write(out / f"{name}.json", dumps({key: result, "meta": prov.sidecar(**more)}))
    _log(f"wrote {out / (name + '.json')}")


def check_options(variants=None, k_max: int | None = None, steps: int | None = None, k_min: int | None = None,
                  label_seeds=None) -> None:
    """:func:`run`'s ``variants`` (some of :data:`TRAINED`), ``k_max``, ``k_min`` (positive, at
    most ``k_max``), ``steps`` (positive) and ``label_seeds`` (a non-empty list of distinct
    non-negative integers), checked before any work; ValueError naming the bad value
    otherwise (the CLI adds the option)."""
    if variants is not None:
        bad = [v for v in variants if v not in TRAINED]
        if bad or not variants:
            raise ValueError(f"{f'unknown {bad}' if bad else 'none given'}; expected some of {list(TRAINED)}")
    if k_max is not None and k_max < 1:
        raise ValueError("expected a positive number of labelled rows")
    if steps is not None and steps < 1:
        raise ValueError("expected a positive number of training steps")
    if k_min is not None and (k_min < 1 or (k_max is not None and k_min > k_max)):
        raise ValueError(f"expected a positive number of labelled rows{f', at most --k-max {k_max}' if k_max else ''}")
    if label_seeds is not None and (not label_seeds or len(set(label_seeds)) != len(label_seeds)
                                    or not all(isinstance(v, int) and v >= 0 for v in label_seeds)):
        raise ValueError("expected distinct non-negative integers (label-subset seeds)")


def run(data: str, out: Path, stages, profile: str = "full", budget_s: float | None = None,
        commit: str | None = None, variants=None, k_max: int | None = None, steps: int | None = None,
        k_min: int | None = None, label_seeds=None) -> int:
    """Compute ``stages`` into ``out`` (module docstring). ``variants``: the generators the
    generators stage trains (default all four, :data:`TRAINED`), with their time shares
    rescaled to the whole training time, e.g. to train on each core its own variants, in
    its own ``out``; Figure 6 then computes only their rungs (e.g. one generator trained
    further; :func:`geo.experiments.merge_fig6` puts them into a whole ladder). ``k_max``:
    Figure 5's sweep stops at this many labelled rows (the all-frames point is a run of its
    own on a CPU; :func:`geo.experiments.merge_fig5` joins the shards), and Figure 6 trains
    on this many per seed instead of all. ``steps``: each variant trains to this many steps
    in all (continuing its saved weights), instead of steps sized from ``budget_s``: e.g.
    to give every variant the same number of training pairs. ``k_min`` and
    ``label_seeds``: Figure 5's sweep starts at this many labelled rows and runs only these
    label-subset seeds (default: the profile's), e.g. the all-frames point alone (``k_min``
    = all rows) with one seed: a shard that :func:`geo.experiments.merge_fig5` joins to a
    run of the other k."""
    if commit:
        os.environ["GEO_COMMIT"] = commit
    check_options(variants, k_max, steps, k_min, label_seeds)
    P = RUNS[profile]
    if variants is not None:
        P = {**P, "variants": tuple(variants)}
    if k_max is not None:
        P = {**P, "k_max": int(k_max)}
    if steps is not None:
        P = {**P, "steps": int(steps)}
    if k_min is not None:
        P = {**P, "k_min": int(k_min)}
    if label_seeds is not None:
        P = {**P, "label_seeds": [int(v) for v in label_seeds]}
    clock = Clock(budget_s)
    out.mkdir(parents=True, exist_ok=True)
    # a stage JSON (or schedule.json) in OUT is skipped as done only when this data,
    # profile (and choice of variants) made it (geo.cache: StaleCache before any work otherwise)
    claim(out, {"data_identity": experiments.data_identity(data), "profile": profile,
                **({"variants": list(variants)} if variants is not None else {}),
                **({"k_max": int(k_max)} if k_max is not None else {}),
                **({"steps": int(steps)} if steps is not None else {}),
                **({"k_min": int(k_min)} if k_min is not None else {}),
                **({"label_seeds": [int(v) for v in label_seeds]} if label_seeds is not None else {})})
    ds = load(data)
    dev = experiments.device()
    _log(f"data {data}: {sum(len(v) for v in ds.sequences.values())} sequences; device {dev}; "
         f"profile {profile}; budget {budget_s} s; stages {list(stages)}")
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    ctx = Run(ds=ds, data=data, dev=dev, out=out, P=P, clock=clock)
    failed: list = []
    for stage in stages:
        path = out / f"{_file(stage, dev)}.json"
        if stage != "bench":
            ctx.P = _adopt_bench(ctx.P, out / f"{_file('bench', dev)}.json")
        if path.exists():
            _log(f"{stage}: {path.name} exists, skipped")
            continue
        _log(f"== {stage} ({clock.elapsed():.0f} s elapsed, {clock.left():.0f} s left)")
        try:
            STAGE_FUNCTIONS[stage](ctx, path)
        except Exception:  # noqa: BLE001 - one failed stage must not cost the others (GPU time is scarce)
            failed.append(stage)
            _log(f"{stage} FAILED:\n{traceback.format_exc()}")
    _log(f"done in {clock.elapsed():.0f} s" + (f"; failed stages: {failed}" if failed else ""))
    return 1 if failed else 0


def _adopt_bench(P: dict, bench_path: Path) -> dict:
    """``P`` with the compile mode the bench stage chose (a torch.compile mode that beat
    eager by 10% on this machine); the other choices (batch) are part of a run's identity
    and stay as the profile says, so that saved weights can be continued."""
    if not bench_path.exists():
        return P
    mode = json.loads(bench_path.read_text()).get("chosen", {}).get("compile")
    if not mode or P["train_over"].get("compile") == mode:
        return P
    _log(f"training with compile={mode!r}, as the bench stage measured it faster ({bench_path.name})")
    return {**P, "train_over": {**P["train_over"], "compile": mode}}


@dataclass
class Run:
    """What the stages of one run share: the data, where results go, the profile's
    settings ``P`` (:data:`geo.profiles.RUNS`, with the run's options), its clock, and the
    encoders the stages drew on so far, each with its :func:`geo.experiments.generator_record`
    (a stage's JSON names the generators it used by their sha256)."""
    ds: object
    data: str
    dev: str
    out: Path
    P: dict
    clock: Clock
    encoders: dict = field(default_factory=dict)   # {variant: (encoder, generator record)}

    @property
    def steps_path(self) -> Path:
        return self.out / "schedule.json"

    def encoder_of(self, variant: str):
        """``variant``'s frozen encoder: trained by this run's generators stage, else the
        saved set (to the steps of this run's schedule, when it has one)."""
        if variant not in self.encoders:
            steps = json.loads(self.steps_path.read_text())["steps"][variant] if self.steps_path.exists() else None
            models, _, folder = _generator(self.ds, self.data, variant, self.P, steps, None)
            rec = experiments.generator_record(variant, models, folder)
            saved = weights.read_meta(variant, self.out / "weights")
            if not rec["committed"] and saved is not None:
                # this run's own copy of the state in the run folder (whose steps may exceed the schedule's,
                # as saved weights are never trained backwards)
                ckpt = load_checkpoint(folder, "cpu")
                if ckpt is not None and saved.get("steps") == ckpt[2]["step"]:
                    rec = experiments.saved_record(rec, variant, self.out / "weights")
            self.encoders[variant] = (models["phi_psi"].encoder, rec)
        return self.encoders[variant][0]

    def records(self, *variants) -> dict:
        return {"generators": {v: self.encoders[v][1] for v in variants if v in self.encoders}}

    def provenance(self, seeds_key: str | None) -> Provenance:
        """A stage's provenance, started before its work (so that it measures the wall time)."""
        seeds = [0] if seeds_key is None else EXPERIMENTS[self.P["exp_profile"]][seeds_key]
        return Provenance(data=self.data, profile=self.P["train_profile"], seeds=seeds)


def _write_stage(ctx: Run, name: str, result, prov: Provenance, t0: float, *variants):
    _write(ctx.out, name, name, result, prov, stage_wall_s=round(time.time() - t0, 1), **ctx.records(*variants))


def _stage_bench(ctx: Run, path: Path):
    """The generator step's speed levers, measured on a GPU only."""
    t0 = time.time()
    if not ctx.P["bench"] or ctx.dev != "cuda":
        _log("bench: measured only on a GPU (benchmarks/train_generator.py covers CPU)")
        return
    prov = Provenance(data=ctx.data, profile="benchmark", seeds=[0])
    budget = min(90.0, max(20.0, ctx.clock.left() - ctx.P["train_s"] - ctx.P["reserve_s"]))
    r = _bench_module().bench(data=ctx.data, budget_s=budget)
    atomic_write(path, dumps({**r, "target": "MFU >= 30% in bf16 on one H100",
                              "meta": prov.sidecar(stage_wall_s=round(time.time() - t0, 1))}))
    _log(f"wrote {path}")


def _stage_generators(ctx: Run, path: Path):
    t0, prov = time.time(), ctx.provenance(None)
    res = _generators(ctx.ds, ctx.data, ctx.out, ctx.P, ctx.clock, ctx.encoders, ctx.steps_path)
    _write(ctx.out, "generators", "generators", res, prov, stage_wall_s=round(time.time() - t0, 1))


def _stage_fig5(ctx: Run, path: Path):
    t0, prov = time.time(), ctx.provenance("seeds")
    k_min, k_max, seeds = ctx.P.get("k_min"), ctx.P.get("k_max"), ctx.P.get("label_seeds")
    if seeds is not None:
        prov.meta["seeds"] = list(seeds)
    r = experiments.fig5(ctx.ds, ctx.encoder_of("DG+AUG"), ctx.P["exp_profile"], progress=True, seeds=seeds,
               k_range=(k_min or 1, k_max or 2**62) if (k_min or k_max) else None)
    _log("fig5 gain", r["gain_pct"])
    _write_stage(ctx, "fig5", r, prov, t0, "DG+AUG")


def _stage_fig6(ctx: Run, path: Path):
    t0, prov = time.time(), ctx.provenance("fig6_seeds")
    variants = ctx.P.get("variants")   # some generators only: their rungs, for experiments.merge_fig6
    rungs = None if variants is None else [f"BL+{v}" for v in variants]
    r = experiments.fig6(ctx.ds, {**{v: ctx.encoder_of(v) for v in variants or TRAINED}, "I_SG": None},
               ctx.P["exp_profile"], progress=True, k=ctx.P.get("k_max"), rungs=rungs)
    _log("fig6", {reg: {k: v.get("mpjpe_mean") for k, v in lad.items()} for reg, lad in r.items()})
    _write_stage(ctx, "fig6", r, prov, t0, *(variants or TRAINED))


def _stage_regressors(ctx: Run, path: Path):
    # benchmarks/regressors.py, the one implementation of the regressor benchmark: the
    # rows the other stages do not measure already (fig6's BL rungs are Baseline#1 and
    # Martinez on SH at all frames), Martinez on ground-truth 2D first.
    args = ["--data", ctx.data, "--out", str(ctx.out), "--name", path.stem, "--only", ctx.P["regressors"]]
    _bench_module("regressors").main(args + ctx.P["regressors_args"])


def _stage_tables(ctx: Run, path: Path):
    # Tables 1 and 2 (geo.tables.compute); G and each batch of fits are kept in
    # $GEO_RUNS, so a command cut off by its limit continues where it stopped.
    t0, prov = time.time(), ctx.provenance("fig6_seeds")
    hd = None
    if os.environ.get("GEO_3DHP"):
        p3 = Path(os.environ["GEO_3DHP"])
        hd = load_3dhp_mmpose(p3) if p3.suffix == ".npz" else load_3dhp_official(p3)
    r = tables.compute(ctx.ds, ctx.encoder_of("DG+AUG"), ctx.data, ctx.P["exp_profile"], threedhp=hd, cache=True,
                       progress=True, steps=ctx.P["tables_steps"])
    _log("tables", {f"{x['protocol']} {x['input']} {x['method']}": x["Avg."] for x in r["table1"]
                    if x["input"] != "image"})
    _write_stage(ctx, "tables", r, prov, t0, "DG+AUG")


# One function per stage (module docstring), each given the run and its JSON's path.
STAGE_FUNCTIONS = {"bench": _stage_bench, "generators": _stage_generators, "fig5": _stage_fig5,
                   "fig6": _stage_fig6, "regressors": _stage_regressors, "tables": _stage_tables}


def _bench_module(name: str = "train_generator"):
    """``benchmarks/<name>.py`` as a module (the benchmarks are scripts, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _file(stage: str, dev: str) -> str:
    return {"bench": "bench_train_generator_cuda" if dev == "cuda" else "bench_train_generator",
            "regressors": "bench_regressors"}.get(stage, stage)


def _generator(ds, data, variant, P, steps, heldout):
    over = dict(P["train_over"])
    if steps is not None:
        over["steps"] = steps
    # without a schedule in OUT (a stage run on its own, e.g. Figure 5 of the committed
    # generators) a saved set of the profile's config is used as it is, not trained further
    return experiments.generator(ds, data, variant, P["train_profile"], 0, progress=True, heldout=heldout,
                       prefer_weights=steps is None, continue_weights=True, weights_from=_weights_from(P),
                       committed=False, **over)


def _weights_from(P: dict):
    """The folder of saved weights a profile continues from (None: weights/ itself)."""
    return None if P.get("weights_from") is None else weights.profile_dir(P["weights_from"])


def _saved_steps(data, variant, P) -> int:
    """Steps of the saved weights (``weights/``) this run continues ``variant`` from: those
    of the same configuration and data, else 0 (trained from scratch)."""
    cfg = config_for(variant, P["train_profile"], **{**P["train_over"], "steps": 10**12})
    init = weights.initial(cfg, experiments.data_identity(data), _weights_from(P))   # the same test train() will make
    return 0 if init is None else init["step"]


def _generators(ds, data, out: Path, P, clock: Clock, encoders: dict, steps_path: Path) -> dict:
    """Train the four variants with steps sized from the measured throughput (or to
    ``P["steps"]`` each, when the run asks for a number)."""
    variants = P.get("variants", TRAINED)
    shares = {v: DEFAULT_SHARES[v] / sum(DEFAULT_SHARES[u] for u in variants) for v in variants}
    if steps_path.exists():
        steps = json.loads(steps_path.read_text())["steps"]
    elif P.get("steps") is not None:
        saved = {v: _saved_steps(data, v, P) for v in variants}
        steps = {v: max(P["steps"], saved[v]) for v in variants}   # saved weights are never trained backwards
        atomic_write(steps_path, dumps({"steps": steps, "new_steps": {v: steps[v] - saved[v] for v in variants},
                                        "continued_from_steps": saved, "requested_steps": P["steps"]}))
        _log(f"schedule: {P['steps']} steps each, continuing from saved weights at {saved}")
    else:
        if P["train_s"] is None and clock.budget is None:
            raise ValueError(f"profile {P['train_profile']!r} sizes training from --budget-s; pass one")
        pps = measure_throughput(ds, {v: config_for(v, P["train_profile"], **P["train_over"]) for v in variants})
        if P["train_s"] is None:   # what is left of the budget after measuring, less the overhead share
            train_s = clock.left() * (1 - P.get("overhead", 0.0))
        else:
            train_s = min(P["train_s"], max(P["train_s"] * 0.2, clock.left() - P["reserve_s"]))
        batch = config_for("DG+AUG", P["train_profile"], **P["train_over"]).batch
        new = steps_for_budget(pps, train_s, shares, batch)   # DG+AUG, Figure 5's encoder, the most
        # A variant whose weights of the same config and data are in weights/ (committed, or
        # carried by scripts/device_data.py) continues from them: its total is theirs + new.
        saved = {v: _saved_steps(data, v, P) for v in variants}
        steps = {v: saved[v] + new[v] for v in variants}
        atomic_write(steps_path, dumps({"steps": steps, "new_steps": new, "continued_from_steps": saved,
                                        "pairs_per_s": pps, "train_s": train_s, "shares": shares}))
        _log(f"schedule for {train_s:.0f} s of training: pairs/s {pps} -> new steps {new}; "
             f"continuing from saved weights at {saved}")
    heldout = PairSource(ds, ds.test_subjects, device=experiments.device(), seed=123)
    res = {}
    for v in [v for v in P.get("order", TRAINED) if v in variants]:
        models, hist, run = _generator(ds, data, v, P, steps[v], heldout)
        encoders[v] = (models["phi_psi"].encoder, experiments.generator_record(v, models, run))
        cfg, _, state = load_checkpoint(run, experiments.device())
        quality = experiments.synthesis_quality(models, ds, v)
        res[v] = {"history": hist, "quality": quality, "config": asdict(cfg), "steps": state["step"],
                  "run": run.name}
        _log(v, {k: quality[k] for k in ("iou", "l2_per_pixel")}, "steps", state["step"],
             f"wall {hist.get('wall_s', 0):.0f} s")
        persist = P.get("persist", PERSIST)
        if v in persist:
            weights.save(models, cfg, v, out / "weights", parts=persist[v], steps=state["step"],
                         heldout_iou=quality["iou"], data=data)
            # the later stages use this float32 encoder: their sidecars also name its saved copy
            encoders[v] = (encoders[v][0], experiments.saved_record(encoders[v][1], v, out / "weights"))
    return res

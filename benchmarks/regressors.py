"""Benchmark of the 3D regressors (geo.regress) on Human3.6M, and the validation study
that chose their schedule.

Benchmark (default): train on all frames of S1 S5 S6 S7 S8 (every camera, 10 Hz), test
on S9 S11: Protocol #1 MPJPE and #2 P-MPJPE (per action, then over actions) for
Baseline#1 (2-layer FC) and Martinez et al. 2017, on SH detections and on the projected
ground-truth 2D. Each fit uses ``geo.regress.schedule`` (the full profile unless
``--quick``). Writes ``bench_regressors.json`` (+ .md) with MPJPE, P-MPJPE, epochs, steps,
wall time, device and the targets beside them:
Baseline#1 SH <= 80 mm, Martinez SH <= 67.5 mm, Martinez GT <= 47 mm (Martinez et al.
report 67.5 / 45.5 mm, Protocol #1).

Validation study (``--validate``): train on S1 S5 S6 S7, validate on S8 -- the test
subjects S9/S11 are never loaded -- over the schedule choices of ``geo.regress.schedule``
(epochs at all frames, decay on/off, the fewest steps at small k). Writes
``regressors_validation.json``.

Usage::

    python benchmarks/regressors.py --data PATH                 # GPU: about a minute
    python benchmarks/regressors.py --data PATH --only martinez_gt --frames 20000 --max-epochs 5   # CPU check
    python benchmarks/regressors.py --data PATH --validate      # the schedule study

``--frames N`` / ``--test-frames N`` subsample rows evenly (geo.regress.subsample);
``--max-epochs E`` caps each fit's epochs (results then say so). It picks CUDA when
available and prints progress.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # runs from a bare checkout too

from geo import regress, results  # noqa: E402
from geo.profiles import SCHEDULES  # noqa: E402

SHARED_H36M = REPO.parent / "shared" / "data" / "h36m"
TARGETS = {"baseline1_sh": 80.0, "martinez_sh": 67.5, "martinez_gt": 47.0}
BENCH = {   # name: (kind, input2d, label)
    "baseline1_sh": ("fc", "sh", "Baseline#1 (FC), SH 2D"),
    "martinez_sh": ("martinez", "sh", "Martinez et al., SH 2D"),
    "martinez_gt": ("martinez", "gt", "Martinez et al., GT 2D"),
    "baseline1_gt": ("fc", "gt", "Baseline#1 (FC), GT 2D"),
}


def capped(cfg: regress.FitConfig, k: int, max_epochs: float | None) -> regress.FitConfig:
    if max_epochs is not None and cfg.schedule(k).epochs > max_epochs:
        return regress.FitConfig(**{**cfg.__dict__, "epochs": max_epochs})
    return cfg


def data_for(ds, subjects_train, subjects_test, input2d, frames, test_frames):
    tr = regress.subsample(regress.make_split(ds, subjects_train, input2d), frames)
    te = regress.subsample(regress.make_split(ds, subjects_test, input2d), test_frames)
    return tr, te


def bench(args, ds, dev, prov):
    """The benchmark rows; fits of one kind on the same number of rows train together as
    one batched model (``geo.regress.fit_many``: the same predictions as alone), so that
    Martinez et al. on SH and on GT 2D cost one run, not two."""
    names = args.only.split(",")
    unknown = [n for n in names if n not in BENCH]
    if unknown:
        raise SystemExit(f"--only: unknown rows {unknown}; expected some of {list(BENCH)}")
    splits = {}
    cfgs, trains, tests, labs, data = [], [], [], [], []
    for name in names:
        kind, input2d, label = BENCH[name]
        if input2d not in splits:
            splits[input2d] = data_for(ds, ds.train_subjects, ds.test_subjects, input2d, args.frames,
                                       args.test_frames)
        tr, te = splits[input2d]
        k = len(tr)
        cfg = capped(regress.FitConfig(kind, True, False, profile=args.profile), k, args.max_epochs)
        print(f"{label}: {k} training rows ({tr.note}), {len(te)} test rows, schedule {cfg.schedule(k)}", flush=True)
        cfgs.append(cfg)
        trains.append({"x2d": tr.x2d, "y": tr.y})
        tests.append({"x2d": te.x2d, "y": te.y})
        labs.append(np.arange(k))
        data.append((tr, te))
    t0 = time.time()
    fits = regress.fit_many(cfgs, trains, tests, labs, dev, progress=True, bf16=args.bf16)
    preds, info = fits.preds, fits.info
    wall = time.time() - t0
    rows = []
    for name, pred, inf, (tr, te) in zip(names, preds, info, data):
        kind, input2d, label = BENCH[name]
        ev = regress.evaluate(pred, te.y, te.actions)
        row = {"name": name, "regressor": label, "input": input2d, "mpjpe": ev["mpjpe"], "p_mpjpe": ev["p_mpjpe"],
               "target_mpjpe": TARGETS.get(name), "meets_target": None if name not in TARGETS else ev["mpjpe"] <= TARGETS[name],
               "epochs": inf["epochs"], "steps": inf["steps"], "batch": inf["batch"], "dtype": inf["dtype"],
               "wall_s": inf["group_wall_s"], "fits_trained_together": inf["group_size"],
               "train_rows": len(tr), "test_rows": len(te), "train_frames": tr.note, "test_frames": te.note,
               "device": str(dev), "threads": torch.get_num_threads()}
        print(f"  -> {label}: MPJPE {ev['mpjpe']:.1f} mm, P-MPJPE {ev['p_mpjpe']:.1f} mm (target {TARGETS.get(name)})",
              flush=True)
        rows.append(row)
        rows[-1]["mpjpe_per_action"] = ev["mpjpe_per_action"]
    print(f"all fits: {wall:.0f} s", flush=True)
    table = [{k: v for k, v in r.items() if k != "mpjpe_per_action"} for r in rows]
    results.save_table({"rows": rows, "targets_mpjpe": TARGETS, "profile": args.profile,
                        "schedule": SCHEDULES[args.profile]}, args.name, prov, rows=table, out_dir=args.out)


# The study: (kind, k or None for all frames, overrides of FitConfig). Each entry one fit.
def study_grid(quick: bool):
    if quick:
        return [("fc", None, {"epochs": 2}), ("fc", None, {"epochs": 4}), ("fc", 500, {"steps": 300}),
                ("fc", 500, {"steps": 1200})]
    return [
        ("fc", None, {"epochs": 5}), ("fc", None, {"epochs": 10}), ("fc", None, {"epochs": 20}),
        ("fc", None, {"epochs": 10, "lr_final": 1e-3}),                 # no decay
        ("fc", 50, {"steps": 1000}), ("fc", 50, {"steps": 4000}), ("fc", 50, {"steps": 16000}),
        ("fc", 500, {"steps": 1000}), ("fc", 500, {"steps": 4000}), ("fc", 500, {"steps": 16000}),
        ("fc", 50, {"steps": 300}), ("fc", 500, {"steps": 300}), ("fc", 5000, {"steps": 1000}),
        ("fc", 5000, {"steps": 4000}),
        ("fc", None, {"epochs": 20, "lr_final": 1e-3}), ("fc", None, {"epochs": 20, "dropout": 0.0}),
        ("fc", None, {"epochs": 40}),
        ("fc", 50, {"steps": 4000, "lr_final": 1e-3}), ("fc", 500, {"steps": 4000, "lr_final": 1e-3}),
        ("fc", 5000, {"steps": 4000, "lr_final": 1e-3}), ("fc", None, {"epochs": 40, "lr_final": 1e-3}),
        ("martinez", None, {"epochs": 10}), ("martinez", None, {"epochs": 30}),
        ("martinez", None, {"epochs": 10, "lr_final": 1e-3}), ("martinez", None, {"epochs": 30, "lr_final": 1e-3}),
        ("martinez", None, {"epochs": 40}),          # the chosen schedule; run at all frames on a GPU only
    ]


def validate(args, ds, dev, prov):
    trs, vas = regress.VALIDATION
    save.args, save.prov = args, prov
    out_rows = []
    path = Path(args.out) / f"{args.name}.json"
    if args.append and path.is_file():
        import json

        out_rows = json.loads(path.read_text()).get("rows", [])
    splits = {}
    for kind, k, over in study_grid(args.quick):
        if args.kinds and kind not in args.kinds.split(","):
            continue
        frames = args.frames if kind == "fc" or args.martinez_frames is None else (args.martinez_frames or None)
        key = ("sh", frames)
        if key not in splits:
            splits[key] = data_for(ds, trs, vas, "sh", frames, args.test_frames)
        tr, va = splits[key]
        n = len(tr)
        lab = regress.label_subsets(n, [k or n], [0])[(min(k or n, n), 0)]
        if any(r["kind"] == kind and r["k"] == len(lab) and r["overrides"] == str(over) and r["train_rows"] == n
               for r in out_rows):
            continue
        cfg = regress.FitConfig(kind, True, False, seed=0, profile=args.profile, **over)
        t0 = time.time()
        fits = regress.fit_many([cfg], {"x2d": tr.x2d, "y": tr.y}, {"x2d": va.x2d, "y": va.y}, [lab], dev)
        pred, info = fits[0], fits.info
        ev = regress.evaluate(pred, va.y, va.actions)
        row = {"kind": kind, "input": "sh", "k": len(lab), "overrides": str(over), "epochs": info[0]["epochs"],
               "steps": info[0]["steps"], "batch": info[0]["batch"], "lr": info[0]["lr"], "lr_final": info[0]["lr_final"],
               "val_mpjpe": ev["mpjpe"], "val_p_mpjpe": ev["p_mpjpe"], "wall_s": time.time() - t0,
               "train_rows": n, "train_frames": tr.note, "val_rows": len(va), "device": str(dev)}
        print(f"{kind} k={row['k']} {over}: {row['steps']} steps, {row['epochs']:.1f} epochs -> S8 MPJPE "
              f"{ev['mpjpe']:.1f} mm, P-MPJPE {ev['p_mpjpe']:.1f} ({row['wall_s']:.0f} s)", flush=True)
        out_rows.append(row)
        save(out_rows)
    save(out_rows)


def save(out_rows, args=None, prov=None):
    save.args = args or save.args
    save.prov = prov or save.prov
    trs, vas = regress.VALIDATION
    results.save_table({"split": {"train": list(trs), "validate": list(vas)}, "rows": out_rows,
                        "note": "schedule study on the training subjects only; S9/S11 are not loaded. Rows "
                                "accumulate over runs (--append); each row has its own wall time and device.",
                        "choice": {"schedules": SCHEDULES,
                                   "why": "the geo.regress.schedule docstring cites these rows"}},
                       save.args.name, save.prov, rows=out_rows, out_dir=save.args.out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(SHARED_H36M), help="Human3.6M (pack or original layout)")
    ap.add_argument("--quick", action="store_true", help="the quick (CPU) schedule profile")
    ap.add_argument("--validate", action="store_true", help="the schedule study on S1 S5 S6 S7 -> S8")
    ap.add_argument("--only", default=",".join(BENCH), help=f"benchmark rows, of {list(BENCH)}")
    ap.add_argument("--append", action="store_true", help="--validate: keep the rows already in the file, run the rest")
    ap.add_argument("--kinds", default="", help="--validate: only these kinds (fc,martinez)")
    ap.add_argument("--frames", type=int, default=None, help="subsample the training rows to at most N")
    ap.add_argument("--martinez-frames", type=int, default=None, help="--validate: training rows for martinez fits (0: all)")
    ap.add_argument("--test-frames", type=int, default=None, help="subsample the test/validation rows")
    ap.add_argument("--max-epochs", type=float, default=None, help="cap each fit's epochs")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                    help="fits under bf16 autocast: auto = geo.regress.BF16_KINDS on a CPU with bf16 units")
    ap.add_argument("--name", default=None)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    args.profile = "quick" if args.quick else "full"
    args.bf16 = {"auto": None, "on": True, "off": False}[args.bf16]
    args.name = args.name or ("regressors_validation" if args.validate else "bench_regressors")
    import geo.data

    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
    ds = geo.data.load(args.data)
    prov = results.Provenance(data=args.data, profile=args.profile, seeds=[0], device_requested=args.device,
                              frames=args.frames, test_frames=args.test_frames, max_epochs=args.max_epochs)
    print(f"device {args.device}, profile {args.profile}", flush=True)
    (validate if args.validate else bench)(args, ds, torch.device(args.device), prov)


if __name__ == "__main__":
    main()

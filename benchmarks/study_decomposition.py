"""Why Regression#1 gains little over Baseline#1 at k = 500: a decomposition without
training any generator (paper Sec. 3.4 and Sec. 4, Figure 5).

Every arm is the paper's 2-layer FC (``geo.regress.fit_many``, the Figure 5 recipe:
hidden 1024, dropout 0.25, the full profile's schedule at k = 500, i.e. 4,000 steps) on
k = 500 labelled rows, one fit per label seed; only the input features and the target
frame change:

* ``BL raw``: Baseline#1 on the 2D joints in pixels (Figure 5's Baseline#1);
* ``BL crop``: Baseline#1 on the joints in the renderer's crop (continuous map coords);
* ``BL crop-snap``: the same, snapped to the 64 x 64 map grid (pixel centres);
* ``BL crop ray``: ``BL crop`` with ray-frame targets (geo.study.ray_rotations from the
  2D root pixel and the intrinsics), predictions rotated back before scoring;
* ``R1 G``: Regression#1 on G of the committed DG+AUG encoder (Figure 5's Regression#1);
* ``R1 G+box``: G plus the crop box (centre x, y, side in px; through the 2D embedding,
  which the first layer sums with G's: the same as one layer on the concatenation);
* ``R1 G ray``: ``R1 G`` with ray-frame targets, rotated back before scoring.

Plus the ``floor``: the exact ray-frame targets scored in the camera frame without
rotating back (what anything that cannot see the ray must lose, at least to first order).

Rows: training rows are an evenly spaced subsample of S1 S5 S6 S7 S8 (geo.regress.subsample;
the label subsets of geo.regress.label_subsets are drawn from it and its mean/std
normalise the inputs), test rows an evenly spaced subsample of S9/S11 (all cameras),
scored with Protocols #1/#2 per action, then averaged (geo.regress.evaluate).

Usage::

    python benchmarks/study_decomposition.py [--data PATH] [--inputs sh,gt]
        [--train-rows 5000] [--test-rows 10000] [--seeds 0,1,2]

Writes ``figures/study_decomposition.{json,md}`` (after each input, so a partial run
keeps what it measured).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # runs from a bare checkout too

from geo import regress, results, study, weights  # noqa: E402
from geo.data import load  # noqa: E402
from geo.render import MAP_SIZE, MARGIN  # noqa: E402

SHARED_H36M = REPO.parent / "shared" / "data" / "h36m"
ENCODER = "DG+AUG"
K = 500
# arm: (method, input features, target frame)
ARMS = {
    "BL raw": ("Baseline#1", "2D px", "camera"),
    "BL crop": ("Baseline#1", "2D crop (continuous)", "camera"),
    "BL crop-snap": ("Baseline#1", "2D crop (64x64 grid)", "camera"),
    "BL crop ray": ("Baseline#1", "2D crop (continuous)", "ray"),
    "R1 G": ("Regression#1", "G", "camera"),
    "R1 G+box": ("Regression#1", "G + crop box", "camera"),
    "R1 G ray": ("Regression#1", "G", "ray"),
}


def encoder_sha256(variant: str = ENCODER) -> str:
    meta = weights.read_meta(variant)
    if meta is None:
        raise FileNotFoundError(f"weights/{weights.stem(variant)}.json is missing; expected the committed {variant} set")
    return meta["files"][f"{weights.stem(variant)}.phi.pt"]["sha256"]


def features(ds, split, g):
    """Per arm, the fit's data dict for ``split`` (one dict per arm, shared by its seeds)
    and the split's ray rotations."""
    f, c = study.intrinsics(ds, split)
    R = study.ray_rotations(study.root_pixels(split.x2d), f, c)
    crop = study.crop_normalise(split.x2d)
    y_ray = study.to_ray_frame(split.y, R).astype(np.float32)
    d = {
        "BL raw": {"x2d": split.x2d, "y": split.y},
        "BL crop": {"x2d": crop, "y": split.y},
        "BL crop-snap": {"x2d": study.snap_to_grid(crop), "y": split.y},
        "BL crop ray": {"x2d": crop, "y": y_ray},
        "R1 G": {"g": g, "y": split.y},
        "R1 G+box": {"g": g, "x2d": study.crop_box(split.x2d), "y": split.y},
        "R1 G ray": {"g": g, "y": y_ray},
    }
    return d, R, (f, c)


def config(arm: str, seed: int, steps: int | None = None) -> regress.FitConfig:
    """Figure 5's fc recipe; ``steps`` overrides the schedule (smoke runs only)."""
    uses_2d = arm.startswith("BL") or arm == "R1 G+box"
    return regress.FitConfig("fc", use_2d=uses_2d, use_g=arm.startswith("R1"), seed=seed, profile="full", hidden=1024,
                             steps=steps)


def run_input(ds, encoder, input2d: str, seeds, train_rows: int, test_rows: int,
              steps: int | None = None) -> tuple[list, dict]:
    t0 = time.time()
    tr = regress.subsample(regress.make_split(ds, ds.train_subjects, input2d), train_rows)
    te = regress.subsample(regress.make_split(ds, ds.test_subjects, input2d), test_rows)
    g_tr = regress.encode(encoder, tr.x2d, progress=True)
    g_te = regress.encode(encoder, te.x2d, progress=True)
    t_enc = time.time() - t0
    train, R_tr, _ = features(ds, tr, g_tr)
    test, R_te, (f_te, c_te) = features(ds, te, g_te)
    labs = regress.label_subsets(len(tr), [K], seeds)
    jobs = [(arm, s) for arm in ARMS for s in seeds]
    cfgs = [config(arm, s, steps) for arm, s in jobs]
    fits = regress.fit_many(cfgs, [train[a] for a, _ in jobs], [test[a] for a, _ in jobs],
                            [labs[(min(K, len(tr)), s)] for _, s in jobs], progress=True)
    preds, info = fits.preds, fits.info
    per_seed = []
    for (arm, s), p, inf in zip(jobs, preds, info):
        if ARMS[arm][2] == "ray":   # back to the camera frame with the test rows' own rays
            p = study.from_ray_frame(p, R_te)
        ev = regress.evaluate(p, te.y, te.actions)
        per_seed.append({"input": input2d, "arm": arm, "seed": s, "mpjpe": ev["mpjpe"], "p_mpjpe": ev["p_mpjpe"],
                         "steps": inf["steps"], "epochs": inf["epochs"], "group_wall_s": inf["group_wall_s"]})
    floor = regress.evaluate(study.to_ray_frame(te.y, R_te), te.y, te.actions)
    ang = study.ray_angles_deg(study.root_pixels(te.x2d), f_te, c_te)
    extra = {"input": input2d, "train_rows": len(tr), "train_frames": tr.note, "test_rows": len(te),
             "test_frames": te.note, "k": min(K, len(tr)), "encode_s": round(t_enc, 1),
             "floor_mpjpe": floor["mpjpe"], "floor_p_mpjpe": floor["p_mpjpe"],
             "root_ray_angle_deg_median": float(np.median(ang)), "root_ray_angle_deg_p90": float(np.percentile(ang, 90)),
             "wall_s": round(time.time() - t0, 1)}
    return per_seed, extra


def summary(per_seed: list, extras: list) -> list[dict]:
    """Mean and sd (ddof 1) over seeds per (input, arm), and the change relative to
    ``BL raw`` of the same input: 100 * (BL raw - arm) / BL raw (positive: better; the
    sign of Figure 5's gain)."""
    rows = []
    for ex in extras:
        inp = ex["input"]
        mean = {}
        for arm in ARMS:
            rs = [r for r in per_seed if r["input"] == inp and r["arm"] == arm]
            m1, m2 = np.array([r["mpjpe"] for r in rs]), np.array([r["p_mpjpe"] for r in rs])
            mean[arm] = (m1.mean(), m2.mean())
            method, feats, frame = ARMS[arm]
            rows.append({"input": inp, "arm": arm, "method": method, "features": feats, "targets": frame,
                         "seeds": len(rs), "mpjpe_mean": float(m1.mean()), "mpjpe_sd": float(m1.std(ddof=1)),
                         "p_mpjpe_mean": float(m2.mean()), "p_mpjpe_sd": float(m2.std(ddof=1))})
        for r in rows[-len(ARMS):]:
            b1, b2 = mean["BL raw"]
            r["gain_mpjpe_pct"] = float(100 * (b1 - r["mpjpe_mean"]) / b1)
            r["gain_p_mpjpe_pct"] = float(100 * (b2 - r["p_mpjpe_mean"]) / b2)
        rows.append({"input": inp, "arm": "floor", "method": "exact ray-frame targets", "features": "-",
                     "targets": "ray, not rotated back", "seeds": 0, "mpjpe_mean": ex["floor_mpjpe"], "mpjpe_sd": 0.0,
                     "p_mpjpe_mean": ex["floor_p_mpjpe"], "p_mpjpe_sd": 0.0, "gain_mpjpe_pct": float("nan"),
                     "gain_p_mpjpe_pct": float("nan")})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(SHARED_H36M), help="Human3.6M (pack or original layout)")
    ap.add_argument("--inputs", default="sh,gt", help="2D inputs, of sh,gt")
    ap.add_argument("--seeds", default="0,1,2", help="label-subset (and init) seeds")
    ap.add_argument("--train-rows", type=int, default=5000, help="evenly spaced S1 S5 S6 S7 S8 rows")
    ap.add_argument("--test-rows", type=int, default=10000, help="evenly spaced S9/S11 rows")
    ap.add_argument("--steps", type=int, default=None, help="override the schedule's steps (smoke runs only)")
    ap.add_argument("--out-dir", default=None, help="where to write (default figures/)")
    a = ap.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    profile = "study-k500" if a.steps is None else f"study-k500-smoke{a.steps}"
    prov = results.Provenance(a.data, profile, seeds, encoder=ENCODER, encoder_sha256=encoder_sha256(),
                              k=K, hidden=1024, recipe="Figure 5's fc (full profile schedule)",
                              map_size=MAP_SIZE, margin=MARGIN)
    # the real run publishes to figures/ (its profile is not "full", so say so); a smoke run goes to runs/
    out_dir = a.out_dir or (REPO / "figures" if a.steps is None else None)
    ds = load(a.data)
    encoder = weights.load_parts(ENCODER, parts=("phi",))["phi"]
    per_seed, extras = [], []
    for inp in a.inputs.split(","):
        rows, ex = run_input(ds, encoder, inp, seeds, a.train_rows, a.test_rows, a.steps)
        per_seed += rows
        extras.append(ex)
        table = summary(per_seed, extras)
        results.save_table({"rows": table, "per_seed": per_seed, "inputs": extras, "arms": ARMS}, "study_decomposition",
                           prov, rows=table, out_dir=out_dir)
        print(results.markdown_table(table), flush=True)
        print(json.dumps(ex), flush=True)


if __name__ == "__main__":
    main()

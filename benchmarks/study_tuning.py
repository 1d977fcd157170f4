"""Is Regression#1's recipe (chosen for 2D inputs) holding G back? Tuning on S8 only.

Train rows: S1 S5 S6 S7; validation rows: S8; S9/S11 are never loaded (the split of
``geo.regress.VALIDATION``). Paper Sec. 3.4: Regression#1 is "a two-layers
fully-connected neural network" on G; Baseline#1 the same on the 2D joints (Sec. 4).

* ``ridge`` (always): a linear probe (geo.study.ridge_fit_predict) of the camera-frame
  targets on 2D px, 2D crop coordinates, G, and G + crop box, for k labelled rows; the
  penalty is chosen on S8 per (features, k) from a grid, and the best is reported.
* ``fc`` (``--fc``): Baseline#1 (2D px) and Regression#1 (G) over steps x dropout x
  weight decay x hidden width (``--steps``, ``--dropouts``, ``--wds``, ``--hiddens``),
  each grid point's seeds batched by geo.regress.fit_many.

Rows: evenly spaced subsamples (geo.regress.subsample) of the training subjects
(``--train-rows``, the "all rows" k) and of S8 (``--val-rows``).

Usage::

    python benchmarks/study_tuning.py [--data PATH] [--input sh] [--ks 50,500,5000,all] [--fc ...]

Writes ``figures/study_tuning.{json,md}``.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # runs from a bare checkout too

from geo import regress, results, study, weights  # noqa: E402
from geo.data import load  # noqa: E402

SHARED_H36M = REPO.parent / "shared" / "data" / "h36m"
ENCODER = "DG+AUG"
ALPHAS = tuple(float(a) for a in np.logspace(-2, 5, 15))


def ridge_rows(feats: dict, y, yv, actions, labs: dict) -> list[dict]:
    """Per (features, k): the S8 MPJPE / P-MPJPE (mean, sd over seeds) of the alpha with
    the lowest mean S8 MPJPE."""
    rows = []
    for name, (x, xv) in feats.items():
        for k in sorted({k for k, _ in labs}):
            seeds = sorted(s for kk, s in labs if kk == k)
            ev = {}   # alpha index -> list of (mpjpe, p_mpjpe) over seeds
            for s in seeds:
                lab = labs[(k, s)]
                for i, p in enumerate(study.ridge_fit_predict(x[lab], y[lab], xv, ALPHAS)):
                    e = regress.evaluate(p, yv, actions)
                    ev.setdefault(i, []).append((e["mpjpe"], e["p_mpjpe"]))
            best = min(ev, key=lambda i: np.mean([v[0] for v in ev[i]]))
            m = np.array(ev[best])
            rows.append({"probe": "ridge", "features": name, "k": k, "seeds": len(seeds), "alpha": ALPHAS[best],
                         "mpjpe_mean": float(m[:, 0].mean()), "mpjpe_sd": float(m[:, 0].std(ddof=1)) if len(m) > 1 else 0.0,
                         "p_mpjpe_mean": float(m[:, 1].mean()),
                         "p_mpjpe_sd": float(m[:, 1].std(ddof=1)) if len(m) > 1 else 0.0,
                         "alpha_at_grid_edge": best in (0, len(ALPHAS) - 1)})
    return rows


def fc_grid(a) -> list[dict]:
    return [dict(steps=st, dropout=d, weight_decay=w, hidden=h)
            for st, d, w, h in itertools.product(a.steps, a.dropouts, a.wds, a.hiddens)]


DEFAULT = dict(steps=None, dropout=None, weight_decay=0.0, hidden=1024)   # Figure 5's recipe (schedule's steps)


def fc_rows(train, val, actions, labs: dict, grid: list[dict], grid_arms=("Baseline#1", "Regression#1"),
            progress=True) -> list[dict]:
    """Baseline#1 (2D px) and Regression#1 (G) at every grid point (arms not in
    ``grid_arms``: at Figure 5's recipe only, as the reference), k and seed; one fit_many
    call, which batches the seeds of each (arm, k, grid point)."""
    jobs = [(arm, k, s, gp) for arm in ("Baseline#1", "Regression#1") for (k, s) in sorted(labs)
            for gp in (grid if arm in grid_arms else [DEFAULT])]
    cfgs = [regress.FitConfig("fc", arm == "Baseline#1", arm == "Regression#1", seed=s, profile="full", **gp)
            for arm, k, s, gp in jobs]
    fits = regress.fit_many(cfgs, train, val, [labs[(k, s)] for _, k, s, _ in jobs], progress=progress)
    preds, info = fits.preds, fits.info
    per, ran = {}, {}
    for (arm, k, s, gp), p, inf, c in zip(jobs, preds, info, cfgs):
        e = regress.evaluate(p, val["y"], actions)
        key = (arm, k, tuple(gp.items()))
        per.setdefault(key, []).append((e["mpjpe"], e["p_mpjpe"]))
        # what actually ran (None in the grid point: the schedule's / the kind's default)
        ran[key] = {"steps": inf["steps"], "dropout": 0.25 if c.dropout is None else c.dropout}
    rows = []
    for (arm, k, gp), v in per.items():
        m = np.array(v)
        rows.append({"probe": arm, "k": k, **dict(gp), **ran[(arm, k, gp)], "seeds": len(v),
                     "mpjpe_mean": float(m[:, 0].mean()),
                     "mpjpe_sd": float(m[:, 0].std(ddof=1)) if len(v) > 1 else 0.0,
                     "p_mpjpe_mean": float(m[:, 1].mean())})
    return rows


def winners(fc: list[dict]) -> list[dict]:
    """Per (arm, k): the grid point with the lowest mean S8 MPJPE."""
    out = []
    for arm, k in sorted({(r["probe"], r["k"]) for r in fc}):
        rs = [r for r in fc if r["probe"] == arm and r["k"] == k]
        out.append({**min(rs, key=lambda r: r["mpjpe_mean"]), "of": len(rs)})
    return out


def md_rows(ridge: list[dict], fc: list[dict]) -> list[dict]:
    """One table of both probes (shared columns): ridge per (features, k) at its best
    alpha; every FC grid point, the best of each (arm, k) marked."""
    best = {(r["probe"], r["k"]): (r["mpjpe_mean"], r["of"]) for r in winners(fc)} if fc else {}
    rows = [{"probe": r["probe"], "features": r["features"], "k": r["k"], "recipe": f"alpha {r['alpha']:.3g}",
             "seeds": r["seeds"], "mpjpe_mean": r["mpjpe_mean"], "mpjpe_sd": r["mpjpe_sd"],
             "p_mpjpe_mean": r["p_mpjpe_mean"], "best": ""} for r in ridge]
    for r in sorted(fc, key=lambda r: (r["probe"], r["k"], r["mpjpe_mean"])):
        rows.append({"probe": r["probe"], "features": "2D px" if r["probe"] == "Baseline#1" else "G", "k": r["k"],
                     "recipe": f"{r['steps']} steps, dropout {r['dropout']:g}, wd {r['weight_decay']:g}, "
                               f"hidden {r['hidden']}",
                     "seeds": r["seeds"], "mpjpe_mean": r["mpjpe_mean"], "mpjpe_sd": r["mpjpe_sd"],
                     "p_mpjpe_mean": r["p_mpjpe_mean"],
                     "best": ("reference (not tuned)" if best[(r["probe"], r["k"])][1] == 1 else
                              "yes" if best[(r["probe"], r["k"])][0] == r["mpjpe_mean"] else "")})
    return rows


def main(argv=None):
    floats = lambda s: [float(v) for v in s.split(",")]   # noqa: E731
    ints = lambda s: [int(v) for v in s.split(",")]       # noqa: E731
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(SHARED_H36M))
    ap.add_argument("--input", default="sh", help="sh or gt 2D")
    ap.add_argument("--ks", default="50,500,5000,all", help="k labelled rows; 'all' = every training row kept")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--train-rows", type=int, default=10000, help="evenly spaced S1 S5 S6 S7 rows")
    ap.add_argument("--val-rows", type=int, default=5000, help="evenly spaced S8 rows")
    ap.add_argument("--fc", action="store_true", help="also the FC grid (slow on a CPU)")
    ap.add_argument("--fc-ks", default="500", help="k of the FC grid")
    ap.add_argument("--fc-seeds", default="0,1,2", help="label seeds of the FC grid")
    ap.add_argument("--grid-arms", default="Baseline#1,Regression#1",
                    help="arms tuned over the grid; the others run Figure 5's recipe only")
    ap.add_argument("--steps", type=ints, default=[1000, 4000, 16000])
    ap.add_argument("--dropouts", type=floats, default=[0.0, 0.25, 0.5])
    ap.add_argument("--wds", type=floats, default=[0.0, 1e-4, 1e-3])
    ap.add_argument("--hiddens", type=ints, default=[256, 1024])
    ap.add_argument("--out-dir", default=str(REPO / "figures"))
    ap.add_argument("--name", default="study_tuning", help="result name (<name>.json / .md)")
    ap.add_argument("--no-ridge", action="store_true", help="skip the ridge probe")
    a = ap.parse_args(argv)
    seeds = ints(a.seeds)
    prov = results.Provenance(a.data, "study-tuning-s8", seeds, encoder=ENCODER,
                              encoder_sha256=weights.read_meta(ENCODER)["files"][f"{weights.stem(ENCODER)}.phi.pt"]["sha256"],
                              split={"train": list(regress.VALIDATION[0]), "validate": list(regress.VALIDATION[1])},
                              alphas=list(ALPHAS))
    trs, vas = regress.VALIDATION
    ds = load(a.data, subjects=trs + vas)   # S9/S11 never loaded
    if set(ds.subjects) & {"S9", "S11"}:
        raise AssertionError(f"test subjects loaded: {ds.subjects}")
    t0 = time.time()
    tr = regress.subsample(regress.make_split(ds, trs, a.input), a.train_rows)
    va = regress.subsample(regress.make_split(ds, vas, a.input), a.val_rows)
    enc = weights.load_parts(ENCODER, parts=("phi",))["phi"]
    g, gv = regress.encode(enc, tr.x2d, progress=True), regress.encode(enc, va.x2d, progress=True)
    t_enc = time.time() - t0
    ks = sorted({len(tr) if k == "all" else min(int(k), len(tr)) for k in a.ks.split(",")})
    labs = regress.label_subsets(len(tr), ks, seeds)
    box, boxv = study.crop_box(tr.x2d), study.crop_box(va.x2d)
    feats = {"2D px": (tr.x2d, va.x2d), "2D crop": (study.crop_normalise(tr.x2d), study.crop_normalise(va.x2d)),
             "G": (g, gv), "G + crop box": (np.concatenate([g.reshape(len(g), -1), box], 1),
                                            np.concatenate([gv.reshape(len(gv), -1), boxv], 1))}
    t1 = time.time()
    ridge = [] if a.no_ridge else ridge_rows(feats, tr.y, va.y, va.actions, labs)
    t_ridge = time.time() - t1
    fc, best = [], []
    if a.fc:
        fks = {len(tr) if k == "all" else min(int(k), len(tr)) for k in a.fc_ks.split(",")}
        fc = fc_rows({"x2d": tr.x2d, "g": g, "y": tr.y}, {"x2d": va.x2d, "g": gv, "y": va.y}, va.actions,
                     regress.label_subsets(len(tr), sorted(fks), ints(a.fc_seeds)), fc_grid(a), tuple(a.grid_arms.split(",")))
        best = winners(fc)
    data = {"input": a.input, "train_rows": len(tr), "train_frames": tr.note, "val_rows": len(va),
            "val_frames": va.note, "ks": ks, "ridge": ridge, "fc": fc, "fc_winners": best,
            "fc_grid": fc_grid(a) if a.fc else None, "fc_grid_arms": a.grid_arms.split(",") if a.fc else None,
            "fc_default": DEFAULT, "encode_s": round(t_enc, 1), "ridge_s": round(t_ridge, 1)}
    table = md_rows(ridge, fc)
    results.save_table(data, a.name, prov, rows=table, out_dir=a.out_dir)
    print(results.markdown_table(table))


if __name__ == "__main__":
    main()

"""The matched-budget generator study: which of the reproduction's open choices make G
help Regression#1? Every cell trains one generator on the same number of training pairs
(``--pairs``), in the cpu profile's setting (width 16, batch 64, constant learning rate),
and is scored the same way:

* held-out synthesis IoU (S9/S11 real pairs; ``geo.train.heldout_iou``);
* the template share and matched / other-frame L_rc (``geo.diagnostics.consistency``);
* the Figure 5 gain at k = 500: Baseline#1 on 2D vs Regression#1 on G, 3 label seeds,
  SH and GT 2D, on evenly spaced test rows (``--test-rows``); only the labelled rows and
  the test rows are encoded, so a cell's scoring costs seconds, not an hour. Scored twice:
  with the figures' default recipe, and with each arm's own best recipe from the S8
  tuning study (``figures/study_tuning*.json``, read from there, never typed in).

Cells (``--cells``, comma list; ``CELLS`` below): the paper's setting as implemented
(``base``), L_rc forms a template cannot meet (``lrc_residual``, ``lrc_ratio``), maps 6
map pixels wide (``wide``), a cosine decay instead of a constant rate (``cosine``), SG at
the same pairs (``sg``), virtual views whose 2D joints are fitted to the detector's
(``joints``: ``geo.skeleton.fit_joint_map``). Each cell resumes from its checkpoints (run folders under
``runs/``, keyed by the cell's identity) and its finished row is kept in the output, so a
killed study continues where it stopped. Writes ``figures/study_generators.{json,md}``.

    python benchmarks/study_generators.py --data PATH --pairs 200000 [--cells base,lrc_ratio]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from geo import diagnostics, regress  # noqa: E402
from geo.data import load  # noqa: E402
from geo.lock import hold  # noqa: E402
from geo.pairs import PairSource  # noqa: E402
from geo.render import LINE_WIDTH  # noqa: E402
from geo.results import Provenance, figures_dir, runs_dir, save_table  # noqa: E402
from geo.train import config_for, heldout_batches, heldout_iou, identity_hash, train  # noqa: E402

# name: (variant, TrainConfig overrides on the cpu profile)
CELLS = {
    "base": ("DG+AUG", {}),
    "lrc_residual": ("DG+AUG", {"lrc_norm": "residual"}),
    "lrc_ratio": ("DG+AUG", {"lrc_norm": "ratio"}),
    "wide": ("DG+AUG", {"generator": {"width": 16, "line_width": 6.0}}),
    "cosine": ("DG+AUG", {"lr_min": 1e-5}),
    "sg": ("SG+AUG", {}),
    "joints": ("DG+AUG", {"virtual_joints": "detector"}),
}


# The study's base: the cpu profile as it was before it adopted the study's findings
# (geo.profiles.ADOPTED), so that every cell keeps the setting and run folder it was
# trained in, and changes one choice of it.
BASE = {"lrc_norm": "rms", "torus": "all", "generator": {"line_width": LINE_WIDTH}}


def cell_config(name: str, pairs: int, over: dict | None = None):
    """The TrainConfig of cell ``name`` at ``pairs`` training pairs (``over``: rehearsal overrides)."""
    variant, o = CELLS[name]
    over = over or {}
    gen = {**BASE["generator"], **o.get("generator", {}), **over.get("generator", {})}
    kw = {**{k: v for k, v in BASE.items() if k != "generator"}, **{k: v for k, v in o.items() if k != "generator"},
          **{k: v for k, v in over.items() if k != "generator"}}
    batch = kw.get("batch", config_for(variant, "cpu").batch)
    return config_for(variant, "cpu", generator=gen, steps=max(1, pairs // batch), **kw)


def tuned_recipes(k: int = 500, folder: Path = REPO / "figures") -> dict:
    """Each arm's best FC recipe at ``k`` from the S8 tuning study: {"bl"|"r1": {steps,
    dropout, weight_decay, hidden}}, the winner over the larger grid of the two files
    (``study_tuning.json`` tunes Regression#1, ``study_tuning_baseline.json`` Baseline#1)."""
    best = {}
    for f in ("study_tuning.json", "study_tuning_baseline.json", "study_tuning_k50.json"):
        path = folder / f
        if not path.is_file():
            continue
        for w in json.loads(path.read_text()).get("fc_winners", []):
            arm = {"Baseline#1": "bl", "Regression#1": "r1"}[w["probe"]]
            if w["k"] == k and w.get("of", 1) > best.get(arm, {}).get("of", 0):
                best[arm] = w
    if set(best) != {"bl", "r1"}:
        raise FileNotFoundError(f"{folder}: expected S8 tuning winners at k = {k} for both arms in "
                                f"study_tuning*.json; found {sorted(best)}")
    return {a: {f: w[f] for f in ("steps", "dropout", "weight_decay", "hidden")} for a, w in best.items()}


def gain_at_k(ds, encoder, k: int, seeds, test_rows: int, hidden: int = 1024, profile: str = "full",
              recipes=(None,)) -> list[dict]:
    """Figure 5's comparison at one k, once per recipe in ``recipes``: a list of {input:
    {"baseline", "regression1", "gain_pct"}} (MPJPE mm, seed means). Only the labelled and
    the test rows are encoded, once for all recipes. A recipe: per-arm FitConfig fields
    ({"bl": {...}, "r1": {...}}); None: the figures' default recipe."""
    recipes = [r or {"bl": {"hidden": hidden}, "r1": {"hidden": hidden}} for r in recipes]
    outs = [{} for _ in recipes]
    for input2d in ("sh", "gt"):
        tr = regress.make_split(ds, ds.train_subjects, input2d)
        te = regress.subsample(regress.make_split(ds, ds.test_subjects, input2d), test_rows)
        subsets = regress.label_subsets(len(tr), [k], seeds)
        labs = [subsets[(min(k, len(tr)), s)] for s in seeds]
        rows = np.unique(np.concatenate(labs))
        g_rows = regress.encode(encoder, tr.x2d[rows])
        pos = {r: i for i, r in enumerate(rows)}
        train_d = {"x2d": tr.x2d[rows], "y": tr.y[rows], "g": g_rows}
        test_d = {"x2d": te.x2d, "y": te.y, "g": regress.encode(encoder, te.x2d)}
        local = [np.array([pos[r] for r in lab]) for lab in labs]
        for recipe, out in zip(recipes, outs):
            cfgs = [regress.FitConfig("fc", m == "bl", m == "r1", seed=s, profile=profile, **recipe[m])
                    for m in ("bl", "r1") for s in seeds]
            preds = regress.fit_many(cfgs, train_d, test_d, local * 2)
            err = [regress.evaluate(p, te.y, te.actions)["mpjpe"] for p in preds]
            bl, r1 = float(np.mean(err[:len(seeds)])), float(np.mean(err[len(seeds):]))
            out[input2d] = {"baseline": bl, "regression1": r1, "gain_pct": 100 * (bl - r1) / bl, "test_rows": len(te)}
    return outs


def run_cell(name: str, ds, data: str, pairs: int, test_rows: int, seeds, progress=True, over=None, hidden=1024,
             fit_profile: str = "full", tuned: dict | None = None) -> dict:
    """Train cell ``name`` on ``pairs`` pairs (resuming its run folder) and score it."""
    from geo.data.identity import data_identity

    cfg = cell_config(name, pairs, over)
    run = runs_dir() / "study_generators" / f"{name}-{identity_hash(cfg, data_identity(data))}"
    t0 = time.time()
    src = PairSource(ds, ds.train_subjects, seed=cfg.seed)
    ho = PairSource(ds, ds.test_subjects, seed=cfg.seed)
    models, hist = train(cfg, src, run, progress=progress, heldout=ho)
    row = score(name, cfg, models, hist, ds, ho, test_rows, seeds, hidden, fit_profile, tuned)
    if src.joint_map_fit:
        row["joint_map_fit"] = src.joint_map_fit
    return {**row, "wall_s": time.time() - t0}


def score(name: str, cfg, models, hist: dict, ds, ho, test_rows: int, seeds, hidden=1024, fit_profile="full",
          tuned: dict | None = None) -> dict:
    """A cell's row: its setting, held-out IoU, L_rc diagnostics, and Figure 5's comparison
    at k = 500 with the default recipe and (given ``tuned``) each arm's own."""
    iou = heldout_iou(models["phi_psi"], heldout_batches(ho, cfg.variant, width=cfg.generator.line_width), cfg.variant)
    cons = diagnostics.consistency(models, ho, n=600)
    gain, *more = gain_at_k(ds, models["phi_psi"].encoder, 500, seeds, test_rows, hidden, fit_profile,
                            (None, tuned) if tuned else (None,))
    gain_t = more[0] if more else {}
    return {"cell": name, "variant": cfg.variant, "pairs": cfg.steps * cfg.batch, "steps": cfg.steps,
            "width": cfg.generator.width, "line_width": cfg.generator.line_width, "lrc_norm": cfg.lrc_norm,
            "lr_min": cfg.lr_min, "virtual_joints": cfg.virtual_joints, "torus": cfg.torus, "heldout_iou": iou,
            "iou_curve": list(zip(hist.get("iou_step", []), hist.get("iou", []))),
            **{k: cons[k] for k in ("template_share", "lrc_matched", "other_over_matched", "unrotated_over_matched")},
            **{f"gain_{i}_pct": g["gain_pct"] for i, g in gain.items()},
            **{f"{i}_{m}_mm": g[m] for i, g in gain.items() for m in ("baseline", "regression1")},
            **{f"tuned_gain_{i}_pct": g["gain_pct"] for i, g in gain_t.items()},
            **{f"tuned_{i}_{m}_mm": g[m] for i, g in gain_t.items() for m in ("baseline", "regression1")}}


def score_committed(variant: str, folder: Path, ds, test_rows: int, seeds, tuned: dict | None = None,
                    hidden: int = 1024, fit_profile: str = "full") -> dict:
    """The same row for a committed generator set (e.g. the cpu profile's, trained longer
    longer): cell ``<variant>@<folder name>:<the set's identity>``, its sha256s named, so
    that sets of another setting committed later are rows of their own."""
    from geo import weights

    t0 = time.time()
    models, meta = weights.load_generators(variant, folder, "cpu")
    from geo.train import TrainConfig

    cfg = TrainConfig.from_dict({**meta["config"], "steps": int(meta["steps"])})
    ho = PairSource(ds, ds.test_subjects, seed=cfg.seed)
    row = score(f"{weights.stem(variant)}@{Path(folder).name}:{meta['identity']}", cfg, models, {}, ds, ho, test_rows, seeds, hidden,
                fit_profile, tuned)
    return {**row, "committed": str(Path(folder).relative_to(REPO)) if Path(folder).is_relative_to(REPO) else str(folder),
            "files_sha256": {fn: f["sha256"] for fn, f in meta["files"].items()}, "wall_s": time.time() - t0}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "h36m"))
    ap.add_argument("--cells", default=",".join(CELLS))
    ap.add_argument("--pairs", type=int, default=200_000, help="training pairs per cell (the matched budget)")
    ap.add_argument("--test-rows", type=int, default=10_000)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default=None, help="folder for study_generators.json (default: figures/)")
    ap.add_argument("--no-tuned", action="store_true", help="score with the default recipe only")
    ap.add_argument("--score-committed", default="", metavar="VARIANT@PROFILE",
                    help="score a committed set instead of training cells, e.g. DG+AUG@cpu (weights/cpu/)")
    ap.add_argument("--tiny", action="store_true", help="a rehearsal: width 4, 8 points, a few pairs (tests)")
    a = ap.parse_args(argv)
    cells = [c for c in a.cells.split(",") if c]
    bad = [c for c in cells if c not in CELLS]
    if bad:
        raise SystemExit(f"--cells: unknown {bad}; expected some of {list(CELLS)}")
    seeds = [int(s) for s in a.seeds.split(",")]
    over = {"generator": {"width": 4, "points": 8}, "batch": 8, "eval_every": 2} if a.tiny else None
    # what this run did: trained cells at a matched budget, or scored one committed set
    what = ({"scored": a.score_committed, "test_rows": a.test_rows} if a.score_committed
            else {"pairs": a.pairs, "cells": cells})
    prov = Provenance(data=a.data, profile="cpu" if not a.tiny else "tiny", seeds=seeds, **what)
    out = Path(a.out) if a.out else figures_dir(None, prov)
    path = out / "study_generators.json"
    tuned = None
    if not a.no_tuned:
        tuned = tuned_recipes(500)
        if a.tiny:   # the rehearsal keeps the winners' regularisation at a size a test affords
            tuned = {m: {**r, "hidden": 16, "steps": min(r["steps"], 20)} for m, r in tuned.items()}
    ds = load(a.data)
    if a.score_committed:
        from geo import weights

        variant, _, prof = a.score_committed.partition("@")
        r = score_committed(variant, weights.profile_dir(prof or "full"), ds, a.test_rows, seeds, tuned,
                            hidden=16 if a.tiny else 1024, fit_profile="quick" if a.tiny else "full")
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k != "files_sha256"}, flush=True)
        _save_row(path, r, prov, out, tuned)
        print(f"wrote {path}")
        return
    for c in cells:
        if any(r["cell"] == c and r["pairs"] >= a.pairs - 64 for r in _rows(path)):
            print(f"{c}: done, kept", flush=True)
            continue
        r = run_cell(c, ds, a.data, a.pairs, a.test_rows, seeds, over=over, hidden=16 if a.tiny else 1024,
                     fit_profile="quick" if a.tiny else "full", tuned=tuned)
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k != "iou_curve"}, flush=True)
        _save_row(path, r, prov, out, tuned)
    print(f"wrote {path}")


# the columns of study_generators.md (the JSON keeps every field, curves included)
MD_COLUMNS = ("cell", "variant", "pairs", "line_width", "lrc_norm", "lr_min", "virtual_joints", "torus", "heldout_iou",
              "template_share", "other_over_matched", "gain_sh_pct", "gain_gt_pct", "tuned_gain_sh_pct",
              "tuned_gain_gt_pct", "tuned_sh_baseline_mm", "tuned_sh_regression1_mm", "wall_s")


def _save_row(path: Path, r: dict, prov, out: Path, tuned) -> None:
    # several studies may run at once (one per core), each on its own cells: re-read the
    # rows under a lock and replace only this cell's, so none overwrites another's
    with hold(runs_dir() / "study_generators", "study's results file", wait=True):
        rows = [x for x in _rows(path) if x["cell"] != r["cell"]] + [r]
        rows.sort(key=lambda x: list(CELLS).index(x["cell"]) if x["cell"] in CELLS else len(CELLS))
        save_table({"rows": rows, "k": 500, "tuned_recipes": tuned}, "study_generators", prov,
                   rows=[{k: x.get(k, "") for k in MD_COLUMNS} for x in rows], out_dir=out)


def _rows(path: Path) -> list:
    return json.loads(path.read_text()).get("rows", []) if path.is_file() else []


if __name__ == "__main__":
    main()

"""Command line: ``python -m geo reproduce`` runs every numbered notebook in order with
papermill (what ``make reproduce`` does); ``python -m geo full-gpu`` computes the
full-profile results on a GPU in resumable stages and writes JSON that the notebooks
draw from (``precomputed`` parameter).

    python -m geo reproduce [--data embedded|PATH] [--profile quick|full] [--precomputed DIR]
    python -m geo full-gpu --data PATH --out DIR [--stages generators,fig5,fig6]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from geo.results import REPO, Provenance, atomic_write, dumps

NOTEBOOKS = REPO / "notebooks"
VARIANTS = ("AE", "SG", "SG+AUG", "DG+AUG")
PRECOMPUTED = {"02_generators": "generators", "03_fig5_label_efficiency": "fig5", "04_fig6_ablations": "fig6"}


def reproduce(data: str, profile: str, precomputed: str | None = None) -> int:
    import papermill as pm

    out = REPO / "runs" / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    books = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if not books:
        print(f"no notebooks found in {NOTEBOOKS}", file=sys.stderr)
        return 1
    for nb in books:
        params = {"data": data, "profile": profile}
        stage = PRECOMPUTED.get(nb.stem)
        if precomputed and stage and (Path(precomputed) / f"{stage}.json").exists():
            params["precomputed"] = str(Path(precomputed) / f"{stage}.json")
        print(f"== {nb.name} {params}", flush=True)
        t = time.time()
        pm.execute_notebook(str(nb), str(out / nb.name), parameters=params, cwd=str(NOTEBOOKS), progress_bar=False)
        print(f"   done in {time.time() - t:.0f} s", flush=True)
    print(f"figures in {REPO / 'figures'}, executed notebooks in {out}")
    return 0


def full_gpu(data: str, out: str, stages) -> int:
    """Stages write ``<out>/<stage>.json``; a stage whose JSON exists is skipped, and the
    generators resume from their checkpoints in runs/, so a cut-off run continues."""
    from geo import experiments as E

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ds = E.load_data(data)
    print(f"data {data}: {sum(len(v) for v in ds.sequences.values())} sequences, device {E.device()}", flush=True)
    encoders = {}
    for stage in stages:
        path = out / f"{stage}.json"
        ex = E.EXPERIMENTS["full"]
        seeds = {"fig5": ex["seeds"], "fig6": ex["fig6_seeds"]}.get(stage, [0])
        prov = Provenance(data=data, profile="full", seeds=seeds)
        if stage == "generators":
            res = json.loads(path.read_text())["generators"] if path.exists() else {}
            for v in VARIANTS:
                models, hist, run = E.generator(ds, data, v, "full", progress=False)
                encoders[v] = models["phi_psi"].encoder
                if v not in res:
                    from geo.train import load_checkpoint
                    cfg, _, state = load_checkpoint(run, E.device())
                    from dataclasses import asdict
                    res[v] = {"history": hist, "quality": E.synthesis_quality(models, ds, v), "config": asdict(cfg),
                              "steps": state["step"]}
                    atomic_write(path, dumps({"generators": res, "meta": prov.sidecar()}))
                print(v, {k: res[v]["quality"][k] for k in ("iou", "l2_per_pixel")}, "steps", res[v]["steps"], flush=True)
            continue
        if path.exists():
            print(f"{stage}: {path} exists, skipped", flush=True)
            continue
        for v in VARIANTS:
            if v not in encoders:
                encoders[v] = E.generator(ds, data, v, "full", progress=False)[0]["phi_psi"].encoder
        if stage == "fig5":
            r = E.fig5(ds, encoders["DG+AUG"], "full", progress=False)
            print("fig5 gain", r["gain_pct"], flush=True)
        elif stage == "fig6":
            r = E.fig6(ds, {**encoders, "I_SG": None}, "full", progress=False)
            print("fig6", {reg: {k: v.get("mpjpe_mean") for k, v in lad.items()} for reg, lad in r.items()}, flush=True)
        else:
            raise SystemExit(f"unknown stage {stage!r}; expected generators, fig5, fig6")
        atomic_write(path, dumps({stage: r, "meta": prov.sidecar()}))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="geo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("reproduce", help="run every notebook in order (papermill)")
    r.add_argument("--data", default="embedded", help="'embedded' or a path to a Human3.6M copy")
    r.add_argument("--profile", default="quick", choices=["quick", "full"])
    r.add_argument("--precomputed", default=None, help="folder with full-gpu JSON results to draw from")
    f = sub.add_parser("full-gpu", help="compute full-profile results (GPU) in resumable stages")
    f.add_argument("--data", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--stages", default="generators,fig5,fig6")
    a = ap.parse_args(argv)
    if a.cmd == "reproduce":
        return reproduce(a.data, a.profile, a.precomputed)
    return full_gpu(a.data, a.out, a.stages.split(","))


if __name__ == "__main__":
    sys.exit(main())

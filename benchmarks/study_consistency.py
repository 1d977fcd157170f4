"""Can a template meet L_rc? The latent diagnostics (geo.diagnostics) of every committed
generator set, on held-out S9/S11 real camera pairs.

For each weights set (``weights/`` and its sub-folders, e.g. ``weights/cpu/``): the share
of each normalised cloud's energy that is the mean cloud (the same for every pose) and
how much of that mean lies on one axis, and L_rc of matched pairs against the same clouds
paired with other frames and against no rotation. Writes
``figures/study_consistency.{json,md}`` (``--out`` to write elsewhere) with a sidecar that
names each set's sha256 and its training steps.

    python benchmarks/study_consistency.py [--data PATH] [--pairs 600]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from geo import diagnostics, weights  # noqa: E402
from geo.data import load  # noqa: E402
from geo.pairs import PairSource  # noqa: E402
from geo.results import Provenance, figures_dir, save_table  # noqa: E402


def sets(root: Path):
    """(folder, variant) of every generator set under ``root``."""
    for side in sorted(root.rglob("*.json")):
        if side.name.endswith(".regressor.json"):
            continue
        meta = weights.read_meta(side.stem.replace("_", "+"), side.parent)
        if meta and "files" in meta:
            yield side.parent, meta["variant"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "h36m"))
    ap.add_argument("--pairs", type=int, default=600)
    ap.add_argument("--weights", default=str(weights.weights_dir()))
    ap.add_argument("--out", default=None, help="folder for the result (default: figures/)")
    a = ap.parse_args(argv)
    prov = Provenance(data=a.data, profile="full", seeds=[20190601], pairs=a.pairs)
    ds = load(a.data)
    src = PairSource(ds, ds.test_subjects, seed=0)
    rows, shas = [], {}
    root = Path(a.weights)
    for folder, variant in sets(root):
        models, meta = weights.load_generators(variant, folder)
        r = diagnostics.consistency(models, src, n=a.pairs)
        name = f"{folder.relative_to(root).as_posix()}/{variant}".lstrip("./")
        cfg = meta["config"]
        rows.append({"set": name, "width": cfg["generator"]["width"], "steps": meta["steps"], "batch": cfg["batch"],
                     "pairs_trained": meta["steps"] * cfg["batch"], "heldout_iou": meta.get("heldout_iou"),
                     **{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}})
        shas[name] = {f: d["sha256"] for f, d in meta["files"].items()}
        print(rows[-1], flush=True)
    out = Path(a.out) if a.out else figures_dir(None, prov)
    save_table({"rows": rows, "weights_sha256": shas,
                "note": "held-out S9/S11 real camera pairs; L_rc as geo.losses.lrc (per-cloud normalisation). "
                        "template_share: mean over frames of |mean normalised cloud|^2 / |normalised cloud|^2 "
                        "(the ground-truth 3D poses: 0.69). other_over_matched and unrotated_over_matched: how much "
                        "worse other frames and no rotation score than the matched, rotated pair."},
               "study_consistency", prov, rows=rows, out_dir=out)
    print(f"wrote {out / 'study_consistency.json'}")


if __name__ == "__main__":
    main()

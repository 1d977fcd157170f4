"""Command line.

    python -m geo reproduce [--data embedded|PATH] [--profile quick|full] [--precomputed DIR]
    python -m geo full-gpu --data PATH --out DIR [--stages ...] [--profile full|tiny]
                           [--budget-s S] [--commit SHA]

``reproduce`` runs every numbered notebook in order with papermill (what ``make
reproduce`` does). ``full-gpu`` computes the full-profile results on a GPU in resumable
stages (:mod:`geo.pipeline`) and writes JSON that the notebooks draw from
(``precomputed``); ``scripts/gpu_run.sh`` is the one prepared run that calls it on a lent
GPU. Every argument is checked before any heavy work starts; paths are resolved against
the caller's directory (papermill runs the notebooks from ``notebooks/``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from geo.results import REPO

NOTEBOOKS = REPO / "notebooks"
PRECOMPUTED = {"02_generators": "generators", "03_fig5_label_efficiency": "fig5", "04_fig6_ablations": "fig6"}


class UsageError(ValueError):
    """A bad command-line argument: the message names it and what was expected."""


def check_data(data: str) -> str:
    """``embedded`` or an absolute path to a readable Human3.6M copy (either layout)."""
    if data in ("embedded", "default"):
        return "embedded"
    from geo.data.h36m import LAYOUTS, require_dir

    p = Path(data).expanduser().resolve()
    require_dir(p, LAYOUTS)  # raises DataError naming the folder and the layouts expected
    return str(p)


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
        pm.execute_notebook(str(nb), str(out / nb.name), parameters=params, cwd=str(NOTEBOOKS),
                            progress_bar=False, log_output=True)
        print(f"   done in {time.time() - t:.0f} s", flush=True)
    print(f"results in {REPO / 'runs' / 'figures'} (or figures/ for a full run on Human3.6M), "
          f"executed notebooks in {out}")
    return 0


def main(argv=None) -> int:
    from geo.pipeline import PROFILES as RUN_PROFILES, STAGES

    ap = argparse.ArgumentParser(prog="geo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("reproduce", help="run every notebook in order (papermill)")
    r.add_argument("--data", default="embedded", help="'embedded' or a path to a Human3.6M copy")
    r.add_argument("--profile", default="quick", choices=["quick", "full"])
    r.add_argument("--precomputed", default=None, help="folder with full-gpu JSON results to draw from")
    f = sub.add_parser("full-gpu", help="compute full-profile results (GPU) in resumable stages")
    f.add_argument("--data", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, from {','.join(STAGES)}")
    f.add_argument("--profile", default="full", choices=sorted(RUN_PROFILES),
                   help="'full' on a GPU; 'tiny' rehearses the whole run on CPU in a minute")
    f.add_argument("--budget-s", type=float, default=None,
                   help="wall-clock budget of the whole run (s); training is sized to fit it")
    f.add_argument("--commit", default=None, help="git commit of the code (the device copy has no .git)")
    a = ap.parse_args(argv)
    from geo.data import DataError

    try:
        data = check_data(a.data)
        if a.cmd == "reproduce":
            pre = None
            if a.precomputed is not None:
                pre = Path(a.precomputed).expanduser().resolve()
                if not pre.is_dir():
                    raise UsageError(f"--precomputed {a.precomputed}: no such folder; expected the --out folder "
                                     f"of `python -m geo full-gpu`")
                if not any((pre / f"{s}.json").exists() for s in PRECOMPUTED.values()):
                    raise UsageError(f"--precomputed {pre}: holds none of "
                                     f"{sorted(s + '.json' for s in PRECOMPUTED.values())}")
            return reproduce(data, a.profile, str(pre) if pre else None)
        stages = [s.strip() for s in a.stages.split(",") if s.strip()]
        bad = [s for s in stages if s not in STAGES]
        if bad or not stages:
            raise UsageError(f"--stages {a.stages!r}: unknown {bad}; expected a comma-separated list from {list(STAGES)}")
        if a.budget_s is not None and a.budget_s <= 0:
            raise UsageError(f"--budget-s {a.budget_s}: expected a positive number of seconds")
    except (UsageError, DataError) as e:
        print(f"geo: error: {e}", file=sys.stderr)
        return 2
    from geo.pipeline import run

    return run(data, Path(a.out).expanduser().resolve(), stages, a.profile, a.budget_s, a.commit)


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: every notebook in the quick profile, cold cache, as ``python -m geo reproduce``
runs them -- wall time, CPU time (this process's children: the kernels) and the machine's
load average before each, per notebook and in total.

The quick profile promises all notebooks within 10 minutes of wall time on 2 cores, on any
data; this is where that is measured, not in a timed test. A cold cache means a fresh
``runs/`` folder (``GEO_RUNS``) and results folder (``GEO_FIGURES``) per run of this
script, so nothing trained or encoded earlier is reused. Run it on an otherwise idle
machine: a row whose load average is above the core count was measured beside other work.

Writes ``benchmarks/results/bench_notebooks.json`` (+ .md); rows for one data name replace
that data's rows of an earlier run.

    python benchmarks/notebooks.py [--data embedded] [--data ../shared/data/h36m]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from geo.results import Provenance, save_table  # noqa: E402

NAME = "bench_notebooks"
LIMIT_S = 600.0   # the quick profile's promise for all notebooks together, on 2 cores


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(data: str, books=None) -> list[dict]:
    """One cold run of the notebooks on ``data``: a row per notebook and a total row."""
    import papermill as pm

    from geo.__main__ import NOTEBOOKS, portable

    books = books or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="geo-bench-notebooks-") as tmp:
        os.environ["GEO_RUNS"] = str(Path(tmp) / "runs")
        os.environ["GEO_FIGURES"] = str(Path(tmp) / "figures")
        os.environ.setdefault("TQDM_MININTERVAL", "15")
        t_all, cpu_all = time.time(), _children_cpu()
        for nb in books:
            load = os.getloadavg()[0]
            t, cpu = time.time(), _children_cpu()
            pm.execute_notebook(str(nb), str(Path(tmp) / nb.name), parameters={"data": portable(data), "profile": "quick"},
                                cwd=str(NOTEBOOKS), progress_bar=False)
            rows.append({"data": Path(str(data)).name, "notebook": nb.stem, "wall_s": round(time.time() - t, 1),
                         "cpu_s": round(_children_cpu() - cpu, 1), "load_before": round(load, 2)})
            print(rows[-1], flush=True)
        wall = time.time() - t_all
        rows.append({"data": Path(str(data)).name, "notebook": "all", "wall_s": round(wall, 1),
                     "cpu_s": round(_children_cpu() - cpu_all, 1), "load_before": rows[0]["load_before"],
                     "within_limit": wall <= LIMIT_S})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", action="append", help="embedded (default) or a Human3.6M copy; repeatable")
    ap.add_argument("--out", default=None, help="folder for bench_notebooks.json (default: benchmarks/results/)")
    a = ap.parse_args(argv)
    datas = a.data or ["embedded"]
    out = Path(a.out) if a.out else REPO / "benchmarks" / "results"
    path = out / f"{NAME}.json"
    old = json.loads(path.read_text()).get("rows", []) if path.is_file() else []
    new = [r for d in datas for r in run(d)]
    names = {r["data"] for r in new}
    rows = [r for r in old if r["data"] not in names] + new
    prov = Provenance(data=",".join(datas), profile="quick", seeds=[0], cores=os.cpu_count())
    save_table({"rows": rows, "limit_s": LIMIT_S}, NAME, prov, rows=rows, out_dir=out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

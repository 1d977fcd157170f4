"""Mutation score of the test suite, a benchmark outside CI.

Runs mutmut (https://pypi.org/project/mutmut/, 3.x) over geo/metrics.py, geo/cameras.py,
geo/render.py, geo/pairs.py and geo/regress.py, each module against its own test files
only, and writes ``benchmarks/results/mutation.json``: per module and per phase the
counts (killed, survived, no tests, timeout, ...), the score, the test files used, the
wall time, and every mutant left alive with its diff. ``mutation_survivors.md`` next to
it says, for each one, which test now kills it or why it is equivalent.

Phases: ``before`` uses the module's existing test file(s) only; ``after`` adds
``tests/test_mutants_<module>.py`` (the tests written from the survivors). Both run on
the same snapshot of the sources, so the two scores are comparable. Those tests have since
been folded into each module's own ``tests/test_<module>.py`` (grouped by behaviour), so on
the current tree both phases run the same tests: the ``before`` scores in mutation.json were
measured at commit bfbc874, where the files were still separate; check it out to re-run them.

One command (both phases, all five modules: about an hour at nice 15 on the shared 2-core
dev box; ``--modules metrics``: about two minutes)::

    pip install 'mutmut==3.8.1'        # or: pip install -e '.[mutation]'
    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/mutation.py

(mutmut must be importable by the Python that runs this script; its own dependencies
-- libcst, textual, ... -- need not be in the project's environment otherwise: installing it
with ``pip install --target DIR mutmut==3.8.1`` and ``PYTHONPATH=DIR`` works too.)

Options: ``--modules metrics cameras`` (a subset; other modules' entries in the JSON
are kept), ``--phases before after``, ``--workdir`` (scratch, default a fresh
/tmp/geo-mutation-*; never inside the repository), ``--sample FRACTION --seed N``
(a deterministic sample of each module's mutants: ``random.Random(seed).sample`` of the
sorted mutant names; default all), ``--out``.

Test selection: each module's own test file; left out (slow, each mutant re-runs them):
``tests/test_render.py::test_compiled_equals_eager`` (torch.compile, ~10 s a mutant) and
the two 5-s training runs of tests/test_regress.py (``MODULES`` below).

How: the working tree's geo/ and tests/ are copied into ``<workdir>/<phase>/<module>``
with a pyproject.toml that holds only the mutmut and pytest settings below; mutmut
copies them on into ``mutants/``, puts that first on sys.path (so the copy, not an
editable install of the repository, is what the tests import; mutmut's forced-fail
check refuses to run otherwise) and runs, for each mutant, the selected tests that
execute the mutated function, one worker at a time (``--max-children 1``). The
licensed data is reached through a symlink ``<workdir>/<phase>/<module>/shared`` to
``../shared`` of the repository (read by path, never copied). Nothing in the
repository is touched except the output files.

Score = (killed + timeout) / total. "no tests" (a mutant in a function that none of the
module's selected tests executes) counts as alive, like "survived".
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "mutation.json"
TOOL = "mutmut"
TOOL_VERSION = "3.8.1"

# Module -> its test files and the slow tests left out of the mutation runs (each
# mutant re-runs the tests that execute its function; these would dominate the time).
MODULES = {
    "metrics": {"tests": ["tests/test_metrics.py"], "deselect": []},
    "cameras": {"tests": ["tests/test_cameras.py"], "deselect": []},
    "render": {"tests": ["tests/test_render.py"],
               # torch.compile of every mutant's renderer: ~10 s a mutant; the eager path it
               # is compared with is the one every other render test exercises
               "deselect": ["tests/test_render.py::test_compiled_equals_eager"]},
    "pairs": {"tests": ["tests/test_pairs.py"], "deselect": []},
    "regress": {"tests": ["tests/test_regress.py"],
                # the two multi-second training runs (5 s each); the fast subset keeps
                # batched-vs-single fits, the quick-profile Fig. 5/6 splits and the rest
                "deselect": ["tests/test_regress.py::test_gt2d_regressor_beats_mean_pose",
                             "tests/test_regress.py::test_fig5_fig6_splits_keep_test_subjects_out[full]"]},
}

ALIVE = ("survived", "no tests", "suspicious", "not checked", "skipped", "segfault")


def new_tests(module: str) -> str:
    return f"tests/test_mutants_{module}.py"


def _git(*args) -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _pyproject(module: str, tests: list[str], deselect: list[str]) -> str:
    sel = tests + [a for d in deselect for a in ("--deselect", d)]
    q = lambda xs: "[" + ", ".join(json.dumps(x) for x in xs) + "]"   # noqa: E731
    return f"""[tool.mutmut]
source_paths = ["geo"]
only_mutate = ["geo/{module}.py"]
pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]
pytest_add_cli_args_test_selection = {q(sel)}
use_git_change_detection = false

[tool.pytest.ini_options]
addopts = ""
filterwarnings = ["ignore::DeprecationWarning"]
"""


def _prepare(d: Path, module: str, tests: list[str], deselect: list[str], with_new: bool):
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    ign = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "geo", d / "geo", ignore=ign)
    shutil.copytree(REPO / "tests", d / "tests", ignore=ign)
    if not with_new:
        for f in (d / "tests").glob("test_mutants_*.py"):
            f.unlink()
    (d / "shared").symlink_to(REPO.parent / "shared")   # tests/conftest.py: parents[2] / "shared"
    # tqdm's default lock holds a multiprocessing semaphore that every mutant's worker (each
    # forked from mutmut's main process, which created the lock while it ran the suite) shares:
    # a worker killed at its timeout while holding it leaves every later worker's progress bar
    # waiting, and all of them time out. In the scratch copy only, each worker gets its own lock.
    with open(d / "tests" / "conftest.py", "a") as f:
        f.write("\n\nimport threading as _threading  # noqa: E402 - benchmarks/mutation.py\n"
                "from tqdm import tqdm as _tqdm  # noqa: E402\n_tqdm.set_lock(_threading.RLock())\n")
    (d / "pyproject.toml").write_text(_pyproject(module, tests, deselect))


def _mutmut(d: Path, args: list[str], log, nice: int) -> int:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    pre = (lambda: os.nice(nice)) if nice else None
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=d, env=env, stdout=log,
                          stderr=subprocess.STDOUT, preexec_fn=pre).returncode


def _changed_lines(diff: str) -> str:
    """The -/+ lines of a unified diff (``mutmut show`` prints the whole function)."""
    return "\n".join(ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---")))


def _status_map():
    from mutmut.stats import status_by_exit_code   # mutmut 3.x
    return status_by_exit_code


def run_phase(d: Path, module: str, sample: float, seed: int, nice: int) -> dict:
    t0 = time.time()
    with open(d / "run.log", "w") as log:
        names: list[str] = []
        if sample < 1:
            # generate the mutants and the test stats only (a filter that matches nothing
            # stops mutmut right after), then run a deterministic sample of the names
            _mutmut(d, ["run", "--max-children", "1", f"geo.{module}.__none__"], log, nice)
            keys = sorted(json.loads((d / "mutants" / "geo" / f"{module}.py.meta").read_text())["exit_code_by_key"])
            names = sorted(random.Random(seed).sample(keys, max(1, round(sample * len(keys)))))
        rc = _mutmut(d, ["run", "--max-children", "1", *names], log, nice)
    wall = time.time() - t0
    meta = d / "mutants" / "geo" / f"{module}.py.meta"
    if not meta.exists():
        raise RuntimeError(f"mutmut produced no results for {module} (rc {rc}); see {d / 'run.log'}")
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    if names:
        codes = {k: v for k, v in codes.items() if k in set(names)}
    status = _status_map()
    by = {}
    for k, v in codes.items():
        by.setdefault(status[v], []).append(k)
    killed, timeout = len(by.get("killed", [])), len(by.get("timeout", []))
    total = len(codes)
    alive = sorted(k for s in ALIVE for k in by.get(s, []))
    survivors = []
    from mutmut.mutation.diff_apply import get_diff_for_mutant   # what ``mutmut show`` prints
    here = os.getcwd()
    try:
        os.chdir(d)
        for k in alive:
            diff = get_diff_for_mutant(k, path=Path("geo") / f"{module}.py")
            survivors.append({"name": k, "status": status[codes[k]], "diff": _changed_lines(diff)})
    finally:
        os.chdir(here)
    return {"killed": killed, "survived": len(by.get("survived", [])), "no_tests": len(by.get("no tests", [])),
            "timeout": timeout, "other": {s: len(v) for s, v in by.items()
                                          if s not in ("killed", "survived", "no tests", "timeout")},
            "total": total, "score": round((killed + timeout) / total, 4) if total else None,
            "mutmut_exit_code": rc, "wall_s": round(wall, 1), "survivors": survivors}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modules", nargs="+", default=list(MODULES), choices=list(MODULES))
    ap.add_argument("--phases", nargs="+", default=["before", "after"], choices=["before", "after"])
    ap.add_argument("--sample", type=float, default=None,
                    help="fraction of each module's mutants (default: all)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the sample")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--nice", type=int, default=15, help="niceness of the mutmut runs (0: unchanged)")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    try:
        import mutmut  # noqa: F401
        from importlib.metadata import version
        tool_version = version("mutmut")
    except ImportError:
        sys.exit("mutmut is not installed: pip install 'mutmut==3.8.1'")
    work = (a.workdir or Path(tempfile.mkdtemp(prefix="geo-mutation-"))).resolve()
    if REPO in (work, *work.parents):
        sys.exit(f"--workdir {work} is inside the repository; mutants must never touch it")
    import torch

    doc = json.loads(a.out.read_text()) if a.out.exists() else {}
    doc.update({
        "tool": TOOL, "tool_version": tool_version,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "OMP_NUM_THREADS=1 nice -n 15 python benchmarks/mutation.py " + " ".join(argv or sys.argv[1:]),
        "commit": _git("rev-parse", "HEAD"), "dirty_files": _git("status", "--porcelain").splitlines(),
        "python": platform.python_version(), "torch": torch.__version__,
        "settings": {"max_children": 1, "OMP_NUM_THREADS": 1, "nice": a.nice, "seed": a.seed,
                     "score": "(killed + timeout) / total; 'no tests' counts as alive"},
    })
    mods = doc.setdefault("modules", {})
    for m in a.modules:
        spec = MODULES[m]
        sample = a.sample if a.sample is not None else spec.get("sample", 1.0)
        entry = mods.setdefault(m, {})
        src = (REPO / "geo" / f"{m}.py").read_bytes()
        entry.update({"source": f"geo/{m}.py", "source_sha256": hashlib.sha256(src).hexdigest(),
                      "deselected": spec["deselect"], "sample": sample, "seed": a.seed})
        for ph in a.phases:
            tests = list(spec["tests"])
            if ph == "after" and (REPO / new_tests(m)).exists():
                tests.append(new_tests(m))
            d = work / ph / m
            _prepare(d, m, tests, spec["deselect"], with_new=(ph == "after"))
            print(f"{m} [{ph}]: mutmut over geo/{m}.py with {' '.join(tests)} ...", flush=True)
            r = run_phase(d, m, sample, a.seed, a.nice)
            r["test_files"] = tests
            r["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            r["git_head"] = doc["commit"]
            r["source_sha256"] = hashlib.sha256((d / "geo" / f"{m}.py").read_bytes()).hexdigest()
            entry[ph] = r
            print(f"  {r['killed']} killed, {r['timeout']} timeout, {r['survived']} survived, "
                  f"{r['no_tests']} no tests of {r['total']}: score {r['score']}, {r['wall_s']} s", flush=True)
            a.out.parent.mkdir(parents=True, exist_ok=True)
            a.out.write_text(json.dumps(doc, indent=1) + "\n")   # after every phase: partial runs keep results
    print(f"wrote {a.out} (scratch: {work})")


if __name__ == "__main__":
    main()

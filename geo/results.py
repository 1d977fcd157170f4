"""Results with provenance: the one helper that writes figures and tables.

Every result in ``figures/`` gets a JSON sidecar ``<name>.json`` (a table's JSON is its own
sidecar: its content plus ``meta``), whose ``meta`` holds: data source,
profile, seeds, git commit (and whether the tree was dirty), device, wall time, the
geo version, and anything the caller adds. Figures: PNG (matplotlib) or HTML (plotly; its
plotly.js is written once beside as ``plotly.min.js`` so that the HTML opens offline);
tables: JSON (+ markdown). A result's files and its sidecar are written as one set
(:func:`geo.commit.commit`): the sidecar records every file's sha256 and size
(``meta.sha256``), and nothing is renamed into place until every file is complete.

Where results go (:func:`figures_dir`): ``out_dir`` of ``save_figure`` / ``save_table`` if
given (the benchmarks write to ``benchmarks/results/``); else ``$GEO_FIGURES`` if set (tests
point it at a temp folder); else by what the run is: the committed ``figures/`` only for a
**full-profile run on a Human3.6M copy** (the results this repository publishes), and
``runs/figures/[<data key>/]<data>-<profile>/`` for every other run (quick profile,
embedded default; the key, of the data's identity, keeps two copies of one name apart),
so that no command a user runs overwrites a tracked result with toy numbers.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import subprocess
import time
from pathlib import Path

import numpy as np

from geo.commit import atomic_write, commit  # noqa: F401 - callers write through geo.results
from geo import precision
from geo.device import has_cuda
from geo.data.identity import data_key
from geo.profiles import PUBLISHED
from geo.safety import plain_name

REPO = Path(__file__).resolve().parent.parent




def notebook_path(value: str) -> str:
    """A notebook's path parameter as the notebook uses it: a relative path is taken from
    ``notebooks/``, wherever the notebook runs (``reproduce`` runs it there; an executed
    copy in ``figures/notebooks/`` or ``runs/notebooks/`` resolves the same way, so its
    Run All works on another machine with the same layout); names that are not paths
    (``"embedded"``, empty) pass as they are; comma lists are taken item by item."""
    if not value or value in ("embedded", "default"):
        return value
    if "," in value:
        return ",".join(notebook_path(v.strip()) for v in value.split(",") if v.strip())
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (REPO / "notebooks" / p).resolve())


def publishes(data, profile) -> bool:
    """Whether a run of ``data`` in ``profile`` writes the committed ``figures/``: only a
    full- or cpu-profile run on a Human3.6M copy does."""
    return profile in PUBLISHED and data not in (None, "", "embedded", "default")


def figures_dir(out_dir=None, prov: "Provenance | None" = None) -> Path:
    """The folder a result is written to (module docstring): ``out_dir``, else
    ``$GEO_FIGURES``, else ``figures/`` for a full run on Human3.6M, else
    ``runs/figures/[<data key>/]<data>-<profile>/`` (``prov`` gives data and profile;
    :func:`data_key`)."""
    if out_dir is not None:
        d = Path(out_dir)
    elif os.environ.get("GEO_FIGURES"):
        d = Path(os.environ["GEO_FIGURES"])
    elif prov is None:
        d = REPO / "figures"
    elif publishes(prov.meta.get("data"), prov.meta.get("profile")):
        d = REPO / "figures" / PUBLISHED[prov.meta.get("profile")]
    else:
        data = str(prov.meta.get("data"))
        tag = "embedded" if data in ("None", "", "embedded", "default") else re.sub(r"[^A-Za-z0-9]+", "_", Path(data).name).strip("_")
        # the profile may come from a file (a precomputed JSON's meta): it names a folder
        # only when it is one plain name
        d = runs_dir() / "figures" / f"{tag or 'data'}-{plain_name(str(prov.meta.get('profile')), 'profile')}"
        if tag != "embedded":   # two copies (/a/h36m, /b/h36m) never share a folder
            d = d.parent / data_key(data) / d.name
    d.mkdir(parents=True, exist_ok=True)
    return d


def runs_dir() -> Path:
    d = Path(os.environ.get("GEO_RUNS", REPO / "runs"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def git_commit() -> dict:
    def run(*args):
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)

    env = os.environ.get("GEO_COMMIT")
    if env:
        # The caller says which commit the code is (scripts/gpu_run.sh passes it to the GPU
        # machine, whose copy of the tree may carry stale or no git metadata): it wins.
        return {"commit": env, "dirty": None, "commit_from": "GEO_COMMIT"}
    try:
        # Check the exit codes: in a repository without commits (or a partial copy of
        # .git) plain `git rev-parse HEAD` prints "HEAD" and fails.
        c = run("rev-parse", "--verify", "--quiet", "HEAD")
        if c.returncode != 0 or not c.stdout.strip():
            return {"commit": None, "dirty": None}
        # results being rewritten do not make the code dirty
        dirty = run("status", "--porcelain", "--untracked-files=no", "--", ".", ":!figures", ":!benchmarks/results")
        return {"commit": c.stdout.strip(), "dirty": bool(dirty.stdout.strip()) if dirty.returncode == 0 else None}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def device_info() -> dict:
    """Where a result was computed: host, versions, threads, the processor and, for the
    device the work ran on, its compute dtype (:func:`geo.precision.describe`): a wall time
    measured in float32 on a CPU without bf16 units is not comparable with one in bf16."""
    import torch

    info = {"host": platform.node(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu_threads": torch.get_num_threads(), "cpu": cpu_model()}
    if has_cuda():
        info["cuda"] = torch.cuda.get_device_name(0)
        info["device"] = "cuda"
    else:
        info["device"] = "cpu"
    info["compute"] = precision.describe(info["device"])
    return info


def cpu_model() -> str | None:
    """The processor's model name (Linux: /proc/cpuinfo; elsewhere :func:`platform.processor`),
    None when neither says."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return platform.processor() or None


def stamp() -> dict:
    """What every written result and weight file records of where it was made: commit
    (and whether the tree was dirty), device, time written, geo version."""
    return {**git_commit(), "device": device_info(),
            "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "geo_version": __import__("geo").__version__}


def _jsonable(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def _finite(o):
    """``o`` with numpy values made plain and every NaN/inf float made ``None``: results
    are strict JSON (``null``), never the bare ``NaN``/``Infinity`` that JSON has not."""
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if isinstance(o, np.ndarray):
        return _finite(o.tolist())
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        o = o.item()
    if isinstance(o, float) and not np.isfinite(o):
        return None
    return o


def dumps(obj) -> str:
    """JSON text of ``obj`` (numpy values allowed; NaN/inf are written as ``null``)."""
    return json.dumps(_finite(obj), indent=2, default=_jsonable, sort_keys=False, allow_nan=False)


def check_name(name) -> str:
    """A result name must be one plain file name: a non-empty string with no path
    separator, no NUL, not ``.``/``..`` and no leading dot (which would hide it); anything
    else raises ValueError naming it, before anything is written."""
    ok = (isinstance(name, str) and name != "" and not name.startswith(".")
          and not any(c in name for c in ("/", "\\", "\0")) and not os.path.isabs(name))
    if not ok:
        raise ValueError(f"result name {name!r} is not one plain file name "
                         "(no '/', '\\', '..', leading dot or empty name)")
    return name


class Provenance:
    """Collects how a result was made. Create it at the start of the work (it starts the
    wall clock); pass it to ``save_*``."""

    def __init__(self, data: str, profile: str, seeds=(), **extra):
        self.t0 = time.time()
        self.started = _dt.datetime.fromtimestamp(self.t0, _dt.timezone.utc).isoformat(timespec="microseconds")
        self.meta = {"data": data, "profile": profile, "seeds": list(seeds), **extra}

    def sidecar(self, **more) -> dict:
        """The meta of a result. ``wall_time_s`` is the time of the work the result comes
        from: since this Provenance was created (create it before the work), or, for a
        result drawn from an earlier run (``computed_by=`` that run's meta), that run's
        work time; the drawing itself is then ``drawn_in_s``."""
        here = round(time.time() - self.t0, 2)
        side = {**self.meta, **more, **stamp(), "wall_time_s": here}
        earlier = side.get("computed_by")
        if isinstance(earlier, dict) and earlier:
            work = earlier.get("stage_wall_s", earlier.get("wall_time_s"))
            side["wall_time_s"] = None if work is None else float(work)
            side["drawn_in_s"] = here
        return side


def _sidecar(name: str, prov: Provenance, files, out_dir=None, data: dict | None = None, **more):
    """The path of ``<name>.json`` and a function that makes its text from the hashes of
    the files written with it: ``data`` (a table's content, if any) plus ``meta``. A
    figure and a table of one name made by the same work share it: files and hashes are
    merged, data is kept. The meta is serialised here once (so that a meta that cannot
    be serialised stops a save before any of its files is written)."""
    path = figures_dir(out_dir, prov) / f"{name}.json"
    names, sums = [Path(f).name for f in files], {}
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
        if isinstance(old, dict) and old.get("meta", {}).get("started") == prov.started:
            names = sorted(set(old["meta"].get("files", [])) | set(names))
            sums = dict(old["meta"].get("sha256") or {})
            if data is None:
                data = {k: v for k, v in old.items() if k != "meta"}
    names = sorted(set(names) | {path.name})
    meta = prov.sidecar(files=names, started=prov.started, **more)
    dumps({**(data or {}), "meta": meta})   # fails here, before any write, if it cannot be serialised

    def make(hashes: dict) -> str:
        sha = {**sums, **{n: h["sha256"] for n, h in hashes.items()}}
        return dumps({**(data or {}), "meta": {**meta, "sha256": sha}})

    return path, make


def save_figure(fig, name: str, prov: Provenance, out_dir=None, **more) -> list[Path]:
    """Save a matplotlib figure as ``<name>.png`` or a plotly figure as ``<name>.html``
    (+ sidecar) in ``out_dir`` (default: :func:`figures_dir`). Returns the written paths.
    The figure is made in memory first, then it and its sidecar (which holds its sha256)
    are committed together (:func:`geo.commit.commit`): a failed or killed save leaves
    the previous figure and sidecar as they were."""
    check_name(name)
    d = figures_dir(out_dir, prov)
    extra = []
    if hasattr(fig, "to_html"):  # plotly: works offline, with plotly.js shipped once beside the HTML
        path, content = d / f"{name}.html", fig.to_html(include_plotlyjs=PLOTLY_JS, full_html=True)
        extra = [d / PLOTLY_JS]
    else:
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
        path, content = d / f"{name}.png", buf.getvalue()
    side, make = _sidecar(name, prov, [path, *extra], out_dir, **more)
    written = [ship_plotly_js(d)] if extra else []
    path, side = commit({path: content}, side, make)
    return [path, side, *written]


PLOTLY_JS = "plotly.min.js"


def ship_plotly_js(d: Path) -> Path:
    """``d/plotly.min.js``, the plotly.js of the installed ``plotly`` package, written once
    (rewritten only when it differs), so that every HTML figure in ``d`` loads it by a
    relative path and opens offline (no CDN)."""
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    path = Path(d) / PLOTLY_JS
    if not (path.exists() and path.stat().st_size == len(js.encode()) and path.read_text() == js):
        atomic_write(path, js)
    return path


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])

    def fmt(v):
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def table_heading(name: str, prov: Provenance) -> str:
    """The line above a saved table: what data and profile it comes from (a table read
    alone must not pass for another run's), and where its provenance is."""
    data = prov.meta.get("data")
    label = "embedded" if data in (None, "", "embedded", "default") else Path(str(data)).name
    return f"*{name}: data `{label}`, profile `{prov.meta.get('profile')}`; provenance in `{name}.json`.*\n\n"


def save_table(data: dict, name: str, prov: Provenance, rows: list[dict] | None = None, out_dir=None,
               **more) -> list[Path]:
    """Save ``data`` with its provenance as ``<name>.json`` (``{**data, "meta": ...}``) and,
    given ``rows``, ``<name>.md``; in ``out_dir`` (default: :func:`figures_dir`)."""
    check_name(name)
    d = figures_dir(out_dir, prov)
    md = {} if rows is None else {d / f"{name}.md": table_heading(name, prov) + markdown_table(rows)}
    side, make = _sidecar(name, prov, list(md), out_dir, data=data, **more)
    *parts, side = commit(md, side, make)
    return [side, *parts]

"""Tables 1 and 2 of the paper: Human3.6M under Protocols #1-#3 per action, and
MPI-INF-3DHP PCK/AUC for regressors trained on Human3.6M only.

Paper Sec. 4, "Implementation Details": "we also try to use state-of-the-art 3D pose
estimators [18, 31] as the regression components. The learnt representation G, behaves
as a 3D structure prior, is injected into their frameworks. These two configurations are
referred to as Regression#2 and Regression#3 respectively. [...] we only forward the
geometry representation G to fully connection layers to match the feature dimension of
baselines, and then directly do element-wise sum with baselines".

"Evaluation Protocols": Protocol #1, MPJPE, "all 4 camera views in subjects 1, 5, 6, 7
and 8 for training, and same all 4 camera views in 9 and 11 for testing"; Protocol #2, the
same after "a rigid transformation" (P-MPJPE, :func:`geo.metrics.p_mpjpe`); Protocol #3,
"subjects 1, 5, 6, 7 and 8 in 3 camera views for training, while 9 and 11 in the other
camera view for testing" (:func:`geo.regress.protocol3_cameras` says which camera and why).

Table 2 (Sec. 4, "Cross-Domain Generalization"): "training on Human3.6M and then testing
on INF-3DHP [...] we use AUC and PCK as the evaluation metrics".

:func:`compute` makes every row of ours (the one function behind both tables); the
paper's rows (:data:`PAPER_TABLE1`, :data:`PAPER_TABLE2`) are only ever shown beside
them, labelled as the paper's. The methods (:data:`METHODS`), all trained identically on
the same rows with the same schedule (:func:`geo.regress.schedule`):

* ``Baseline#1``: the two-layer FC network on 2D joints (the paper's "R#1" in Table 2);
* ``Ours+Regression#1``: the same network on G alone;
* ``Martinez et al. (no G)``: Martinez et al.'s lifting network on 2D joints;
* ``Ours+Regression#2``: the same network with G through one FC layer summed into its
  first layer's features (:class:`geo.models.BatchedRegressor`).

Regression#3 (Sun et al. 2018, :mod:`geo.integral`) needs the RGB frames of Human3.6M;
without them its rows say "needs video frames" and carry no number.

CPU full profile: G of every row is encoded once per (encoder, 2D input) into
``runs/<data>/tables/`` in chunks that a cut-off run resumes (:func:`encode_cached`, a
progress bar with an ETA), and every batched fit's predictions are kept there too, so a
run continues where it stopped.
"""
from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np
import torch

from geo import experiments
from geo import integral
from geo import metrics, regress
from geo.data.identity import data_tag
from geo.data.mpi_inf_3dhp import SCENES, as_h36m
from geo.profiles import EXPERIMENTS
from geo.results import atomic_write, runs_dir

# --------------------------------------------------------------------------- constants
# Columns of Table 1 in the paper's order: (paper's label, our action name).
ACTIONS = (("Direction", "Directions"), ("Discuss", "Discussion"), ("Eat", "Eating"), ("Greet", "Greeting"),
           ("Phone", "Phoning"), ("Photo", "Photo"), ("Pose", "Posing"), ("Purchase", "Purchases"),
           ("Sit", "Sitting"), ("SitDown", "SittingDown"), ("Smoke", "Smoking"), ("Wait", "Waiting"),
           ("WalkDog", "WalkDog"), ("Walk", "Walking"), ("WalkT.", "WalkTogether"))
COLUMNS = tuple(a for a, _ in ACTIONS) + ("Avg.",)

# Table 1 of the paper (mm), 15 actions + average, only ever shown as labelled references.
PAPER_TABLE1 = {
    "#1": {
        "Martinez et al. (ICCV'17)": (51.8, 56.2, 58.1, 59.0, 69.5, 78.4, 55.2, 58.1, 74.0, 94.6, 62.3, 59.1, 65.1, 49.5, 52.4, 62.9),
        "Sun et al. (ECCV'18)": (46.5, 48.1, 49.9, 51.1, 47.3, 43.2, 45.9, 57.0, 77.6, 47.9, 54.9, 46.9, 37.1, 49.8, 41.2, 49.8),
        "Ours+Regression#1": (63.9, 73.7, 70.9, 76.1, 82.6, 69.5, 75.1, 96.1, 120.6, 75.4, 96.8, 78.7, 69.1, 83.5, 72.2, 80.2),
        "Ours+Regression#2": (45.9, 53.5, 50.1, 53.2, 61.5, 72.8, 50.7, 49.4, 68.4, 82.1, 58.6, 53.9, 57.6, 41.1, 46.0, 56.9),
        "Ours+Regression#3": (41.1, 44.2, 44.9, 45.9, 46.5, 39.3, 41.6, 54.8, 73.2, 46.2, 48.7, 42.1, 35.8, 46.6, 38.5, 46.3),
    },
    "#2": {
        "Martinez et al. (ICCV'17)": (39.5, 43.2, 46.4, 47.0, 51.0, 56.0, 41.4, 40.6, 56.5, 69.4, 49.2, 45.0, 49.5, 38.0, 43.1, 47.7),
        "Sun et al. (ECCV'18)": (40.9, 41.4, 45.0, 45.2, 42.1, 37.6, 41.1, 52.0, 71.4, 42.5, 47.4, 41.6, 32.0, 42.6, 36.9, 44.1),
        "Ours+Regression#1": (47.0, 51.8, 53.3, 55.3, 59.7, 48.4, 51.7, 72.1, 90.6, 56.6, 65.4, 55.1, 50.2, 59.4, 53.9, 58.2),
        "Ours+Regression#2": (36.5, 41.0, 40.9, 43.9, 45.6, 53.8, 38.5, 37.3, 53.0, 65.2, 44.6, 40.9, 44.3, 32.0, 38.4, 44.1),
        "Ours+Regression#3": (36.9, 39.3, 40.5, 41.2, 42.0, 34.9, 38.0, 51.2, 67.5, 42.1, 42.5, 37.5, 30.6, 40.2, 34.2, 41.6),
    },
    "#3": {
        "Martinez et al. (ICCV'17)": (65.7, 68.8, 92.6, 79.9, 84.5, 100.4, 72.3, 88.2, 109.5, 130.8, 76.9, 81.4, 85.5, 69.1, 68.2, 84.9),
        "Sun et al. (ECCV'18)": (52.4, 50.5, 45.0, 57.8, 49.8, 50.3, 46.1, 57.1, 96.3, 47.4, 56.4, 52.1, 45.7, 53.7, 48.7, 53.6),
        "Ours+Regression#1": (70.8, 78.3, 84.9, 89.2, 89.2, 78.0, 85.6, 116.3, 142.7, 87.0, 114.2, 88.1, 81.5, 92.9, 80.3, 91.4),
        "Ours+Regression#2": (60.4, 63.6, 77.2, 69.5, 64.8, 96.1, 64.1, 75.0, 87.6, 111.1, 66.6, 67.7, 70.0, 54.8, 57.6, 71.8),
        "Ours+Regression#3": (45.9, 48.0, 48.6, 50.8, 48.9, 45.1, 46.1, 57.4, 77.3, 49.4, 54.2, 47.2, 39.9, 49.9, 42.9, 50.3),
    },
}
# Table 2 of the paper (MPI-INF-3DHP, overall only: the paper gives no per-scene numbers),
# keyed by our method names: "R#1" = Baseline#1, "R#2 [18]" = Martinez et al. without G.
PAPER_TABLE2 = {
    "Baseline#1": {"paper_label": "R#1", "pck": 41.0, "auc": 17.1},
    "Martinez et al. (no G)": {"paper_label": "R#2 [18]", "pck": 68.0, "auc": 34.7},
    "Sun et al. (no G)": {"paper_label": "R#3 [31]", "pck": 68.4, "auc": 29.4},
    "Ours+Regression#1": {"paper_label": "Ours + R#1", "pck": 61.4, "auc": 29.4},
    "Ours+Regression#2": {"paper_label": "Ours + R#2", "pck": 68.7, "auc": 34.6},
    "Ours+Regression#3": {"paper_label": "Ours + R#3", "pck": 75.9, "auc": 36.3},
}
# Which of our rows stands beside which paper row (the paper's Martinez row was trained by
# Martinez et al. on fine-tuned detections; ours on the pack's non-fine-tuned ones).
PAPER_OF = {"Martinez et al. (no G)": "Martinez et al. (ICCV'17)", "Ours+Regression#1": "Ours+Regression#1",
            "Ours+Regression#2": "Ours+Regression#2", "Sun et al. (no G)": "Sun et al. (ECCV'18)",
            "Ours+Regression#3": "Ours+Regression#3"}

# Our methods: (kind, use 2D, use G) of geo.regress.FitConfig.
METHODS = {
    "Baseline#1": ("fc", True, False),
    "Ours+Regression#1": ("fc", False, True),
    "Martinez et al. (no G)": ("martinez", True, False),
    "Ours+Regression#2": ("martinez", True, True),
}
IMAGE_METHODS = ("Sun et al. (no G)", "Ours+Regression#3")   # geo.integral: RGB crops
NEEDS_FRAMES = "needs video frames"
NEEDS_3DHP = "needs the MPI-INF-3DHP test set (TS1-TS6)"
PROTOCOLS = {"#1": ("standard", "mpjpe"), "#2": ("standard", "p_mpjpe"), "#3": ("camera", "mpjpe")}


# --------------------------------------------------------------------------- caching
def _hash(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str((p.shape, p.dtype.str)).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        elif isinstance(p, torch.nn.Module):
            buf = io.BytesIO()
            torch.save({k: v.detach().cpu() for k, v in p.state_dict().items()}, buf)
            h.update(buf.getvalue())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def encode_cached(encoder, x2d: np.ndarray, folder: Path | None, device="cpu", chunk: int = 4096,
                  progress: bool = True) -> np.ndarray:
    """G (N, M, 3) of ``encoder`` for 2D poses ``x2d`` (:func:`geo.regress.encode`, the one
    way to encode), chunk by chunk into ``folder/g-<hash>.npy`` (the hash over the
    encoder's weights and the 2D rows), with a tqdm bar and its ETA. A run cut off resumes
    at its last finished chunk; a finished file is simply read. ``folder`` None: no cache."""
    from tqdm import tqdm   # text on stderr: papermill logs and terminals show it

    n = len(x2d)
    if folder is None:
        return regress.encode(encoder, x2d, device)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"g-{_hash(encoder, np.asarray(x2d, np.float32))}.npy"
    done_path = path.with_suffix(".done")
    if path.exists() and not done_path.exists():
        return np.load(path)
    m = encoder.points if hasattr(encoder, "points") else regress.encode(encoder, x2d[:1], device).shape[1]
    partial = path.with_suffix(".part.npy")
    mode = "r+" if partial.exists() and done_path.exists() else "w+"
    g = np.lib.format.open_memmap(partial, mode=mode, dtype=np.float32, shape=(n, m, 3))
    done = int(done_path.read_text()) if mode == "r+" else 0
    bar = tqdm(total=n, initial=done, desc=f"encoding G ({n} rows)", unit="row", disable=not progress,
               mininterval=2.0)
    for s in range(done, n, chunk):
        e = min(s + chunk, n)
        g[s:e] = regress.encode(encoder, x2d[s:e], device)
        g.flush()
        atomic_write(done_path, str(e))
        bar.update(e - s)
    bar.close()
    del g
    partial.replace(path)
    done_path.unlink(missing_ok=True)
    return np.load(path)


def _fit_cached(folder: Path | None, key: str, fn):
    """``fn()`` -> (preds list, info list), kept in ``folder/fit-<key>.npz`` when a folder is given."""
    if folder is None:
        return fn()
    path = Path(folder) / f"fit-{key}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        return [z[f"p{i}"] for i in range(int(z["n"]))], json.loads(str(z["info"]))
    preds, info = fn()
    buf = io.BytesIO()
    np.savez(buf, n=len(preds), info=json.dumps(info), **{f"p{i}": p for i, p in enumerate(preds)})
    atomic_write(path, buf.getvalue())
    return preds, info


def cache_dir(data: str, profile: str) -> Path:
    """``runs/<data_tag>/<profile>/tables``: where :func:`compute` keeps G and fits."""
    return runs_dir() / data_tag(data) / profile / "tables"


# --------------------------------------------------------------------------- rows
def _subset(d: dict, mask: np.ndarray) -> dict:
    return {k: v[mask] for k, v in d.items()}


def _per_action_row(table: dict, avg: float) -> dict:
    """{action: mm} -> the row's columns: the paper's 15 action columns when the data has
    Human3.6M's actions (a missing one is None), else the data's own action names (the
    embedded default), then "Avg." = ``avg``, the mean over the actions present (H36M
    convention, :func:`geo.metrics.per_action`)."""
    if set(table) & {name for _, name in ACTIONS}:
        row = {col: table.get(name) for col, name in ACTIONS}
    else:
        row = dict(table)
    row["Avg."] = avg
    return row


def compute(ds, encoder, data: str, profile: str = "quick", inputs=("sh", "gt"), protocols=("#1", "#2", "#3"),
            seeds=None, threedhp=None, cache: bool | Path = False, device=None, progress: bool = True,
            steps: int | None = None, frames=None) -> dict:
    """Every row of ours of Tables 1 and 2 (module docstring).

    ``ds``: a Human3.6M :class:`geo.data.Dataset` (or the embedded default), ``encoder``: the
    frozen phi of DG+AUG; ``data``: its data argument (cache key); ``profile``: rows and
    schedules of :data:`geo.profiles.EXPERIMENTS` / :func:`geo.regress.schedule`;
    ``seeds``: regressor seeds (default: the profile's ``fig6_seeds``); ``threedhp``: an
    :class:`geo.data.mpi_inf_3dhp.ThreeDHPTest` or None (Table 2 then says it needs one);
    ``cache``: True (``runs/<data>/<profile>/tables``), a folder, or False; ``steps``: a
    fixed number of updates per fit instead of the schedule's (tests); ``frames``: a folder of
    Human3.6M video frames (:func:`geo.integral.frame_path`), for Regression#3's status.

    For each 2D input (stacked-hourglass detections "sh", ground-truth projections "gt"):
    the training and test rows of :func:`geo.experiments.splits` and their G (encoded
    once); then per split -- "standard" (all cameras: Protocols #1 and #2 from the same
    fits) and "camera" (Protocol #3: three cameras of the training subjects train, the
    fourth camera of the test subjects tests) -- one :func:`geo.regress.fit_many` over every
    method and seed, whose fits of one architecture train as one batched model. Table 2
    uses the "standard" fits on ground-truth 2D (the MPI-INF-3DHP test set's 2D is ground
    truth), whose test rows are extended by the 3DHP rows
    (:func:`geo.data.mpi_inf_3dhp.as_h36m`).

    Returns {"table1": rows, "table2": rows, "runs": per-fit details, "protocol3": cameras,
    "seeds", "profile"}. A Table 1 row: protocol, input, method, source "ours", the 15
    action columns and "Avg." (mm, mean over seeds), seeds, rows used; Regression#3's rows
    have ``status`` "needs video frames" and no numbers."""
    ex = EXPERIMENTS[profile]
    seeds = list(ex["fig6_seeds"] if seeds is None else seeds)
    device = device or experiments.device()
    folder = cache_dir(data, profile) if cache is True else (Path(cache) if cache else None)
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad:
        raise ValueError(f"protocols {bad}: unknown; expected some of {list(PROTOCOLS)}")
    splits = sorted({PROTOCOLS[p][0] for p in protocols}, key=["standard", "camera"].index)
    train_cams, test_cam = regress.protocol3_cameras(ds) if "camera" in splits else ((), None)
    enc_key = _hash(encoder)
    hd = None
    if threedhp is not None:
        cams = [c for s in ds.train_subjects for c in ds.cameras[s].values()]
        f_ref = np.mean([np.ravel(c.f) for c in cams], 0)
        c_ref = np.mean([np.ravel(c.c) for c in cams], 0)
        hd = as_h36m(threedhp, f_ref, c_ref)
    t_all = time.time()
    image_status = NEEDS_FRAMES if not frames else _frames_status(ds, frames)
    data_in = _encoded_splits(ds, encoder, inputs, profile, folder, device, progress)
    if hd is not None and "gt" in inputs:
        hd["g"] = encode_cached(encoder, hd["x2d"], folder, device, progress=progress)
    results, runs = {}, []
    for split in splits:
        for input2d in inputs:   # one batched fit_many per (split, input): its fits share rows and sizes
            tr, te = data_in[input2d][:2]
            train, test, actions = _split_rows(split, input2d, data_in[input2d], hd, train_cams, test_cam)
            jobs = [(method, regress.FitConfig(kind, use_2d, use_g, seed=s, profile=profile, hidden=ex["hidden"],
                                               steps=steps))
                    for method, (kind, use_2d, use_g) in METHODS.items() for s in seeds]
            key = _hash(enc_key, experiments.data_identity(data), split, input2d, [(m, repr(c)) for m, c in jobs],
                        tr.note, te.note, len(train["y"]), len(test["y"]))

            def fit():
                fits = regress.fit_many([c for _, c in jobs], train, test, [np.arange(len(train["y"]))] * len(jobs),
                                        device, progress=progress)
                return fits.preds, fits.info

            t0 = time.time()
            preds, info = _fit_cached(folder, key, fit)
            for method in METHODS:
                sel = [i for i, (m, _) in enumerate(jobs) if m == method]
                n = len(actions)
                evs = [regress.evaluate(preds[i][:n], test["y"][:n], actions) for i in sel]
                results[(input2d, split, method)] = {"evals": evs, "preds_3dhp": [preds[i][n:] for i in sel]}
                runs.append({"input": input2d, "split": split, "method": method, "seeds": seeds,
                             "train_rows": len(train["y"]), "test_rows": n, "train_frames": tr.note,
                             "test_frames": te.note, "hidden": ex["hidden"], "epochs": info[sel[0]]["epochs"],
                             "steps": info[sel[0]]["steps"], "fits_wall_s": round(time.time() - t0, 1)})
                if progress:
                    print(f"{input2d} {split} {method}: MPJPE {np.mean([e['mpjpe'] for e in evs]):.1f} mm, "
                          f"P-MPJPE {np.mean([e['p_mpjpe'] for e in evs]):.1f} mm", flush=True)
    table1 = _table1(results, runs, protocols, inputs, seeds, image_status)
    table2 = _table2(results, hd, seeds, image_status)
    return {"table1": table1, "table2": table2, "runs": runs, "seeds": seeds, "profile": profile,
            "protocol3": {"train_cameras": list(train_cams), "test_camera": test_cam},
            "threedhp": None if threedhp is None else {"source": threedhp.source, "layout": threedhp.layout,
                                                       "frames": len(threedhp), "universal": hd["universal"]},
            "wall_s": round(time.time() - t_all, 1)}


def _encoded_splits(ds, encoder, inputs, profile: str, folder, device, progress: bool) -> dict:
    """Per 2D input: (train split, test split, train rows, test rows), the rows as the dicts
    :func:`geo.regress.fit_many` takes, with G encoded once (and cached in ``folder``)."""
    data_in = {}
    for input2d in inputs:
        tr, te = experiments.splits(ds, input2d, profile)
        g_tr = encode_cached(encoder, tr.x2d, folder, device, progress=progress)
        g_te = encode_cached(encoder, te.x2d, folder, device, progress=progress)
        data_in[input2d] = (tr, te, {"x2d": tr.x2d, "y": tr.y, "g": g_tr}, {"x2d": te.x2d, "y": te.y, "g": g_te})
    return data_in


def _split_rows(split: str, input2d: str, encoded, hd, train_cams, test_cam):
    """(train rows, test rows, test actions) of one split: "standard" uses every camera
    (Table 2 appends MPI-INF-3DHP's rows to the ground-truth 2D test rows); "camera"
    (Protocol #3) trains on ``train_cams`` and tests on ``test_cam``."""
    tr, te, train_all, test_all = encoded
    if split == "standard":
        test = test_all
        if "g" in (hd or {}) and input2d == "gt":   # Table 2: the test rows plus MPI-INF-3DHP's
            test = {k: np.concatenate([test_all[k], hd[k]]) for k in ("x2d", "y", "g")}
        return train_all, test, te.actions
    mtr = np.isin(np.asarray(tr.cameras), train_cams)
    mte = np.asarray(te.cameras) == test_cam
    return _subset(train_all, mtr), _subset(test_all, mte), [a for a, keep in zip(te.actions, mte) if keep]


def _table1(results: dict, runs: list, protocols, inputs, seeds, image_status: str) -> list[dict]:
    """Table 1 rows of ours: per protocol, input and method, the per-action means over seeds
    and their average; the image-based methods with their status and no numbers."""
    table1 = []
    for p in protocols:
        split, metric = PROTOCOLS[p]
        for input2d in inputs:
            for method in METHODS:
                r = results[(input2d, split, method)]
                per = [e[f"{metric}_per_action"] for e in r["evals"]]
                mean = {a: float(np.mean([t[a] for t in per])) for a in per[0]}
                avg = float(np.mean([e[metric] for e in r["evals"]]))
                run = next(x for x in runs if (x["input"], x["split"], x["method"]) == (input2d, split, method))
                table1.append({"protocol": p, "input": input2d, "method": method, "source": "ours",
                               **_per_action_row(mean, avg), "seeds": len(seeds), "train_rows": run["train_rows"],
                               "test_rows": run["test_rows"],
                               "avg_per_seed": [float(e[metric]) for e in r["evals"]]})
        for method in IMAGE_METHODS:
            table1.append({"protocol": p, "input": "image", "method": method, "source": "ours",
                           **{c: None for c in COLUMNS}, "status": image_status})
    return table1


def _frames_status(ds, frames) -> str:
    """Regression#3's status when a frames folder is given: how many test rows have a
    frame. Training Sun et al.'s network on every frame is GPU work that this table does
    not run, so the rows still carry no number."""
    try:
        n = len(integral.samples(ds, frames, ds.test_subjects)["paths"])
    except FileNotFoundError:
        return NEEDS_FRAMES
    return f"{n} test frames found: train with geo.integral (GPU); not run by this table"


def _table2(results: dict, hd: dict | None, seeds, image_status: str = NEEDS_FRAMES) -> list[dict]:
    """Table 2 rows: PCK@150 / AUC overall and per scene type, mean over seeds, for the
    regressors trained on Human3.6M ground-truth 2D ("gt", standard split)."""
    rows = []
    for method in (*METHODS, *IMAGE_METHODS):
        if method in IMAGE_METHODS:
            rows.append({"method": method, "source": "ours", "status": image_status})
            continue
        r = results.get(("gt", "standard", method))
        if hd is None or r is None:
            rows.append({"method": method, "source": "ours",
                         "status": NEEDS_3DHP if hd is None else "needs the ground-truth 2D input"})
            continue
        z = np.zeros((len(hd["y"]), 1, 3), np.float32)
        gt = np.concatenate([z, hd["y"]], 1)
        per_seed = [metrics.pck_auc_by_group(np.concatenate([z, p], 1), gt, hd["sequences"], SCENES)
                    for p in r["preds_3dhp"]]
        row = {"method": method, "source": "ours", "input": "gt"}
        for scene in per_seed[0]:
            for m in ("pck", "auc"):
                row[f"{scene}_{m}"] = float(np.mean([s[scene][m] for s in per_seed]))
            row[f"{scene}_frames"] = per_seed[0][scene]["frames"]
        row["overall_mpjpe"] = float(np.mean([metrics.mpjpe(np.concatenate([z, p], 1), gt).mean()
                                              for p in r["preds_3dhp"]]))   # mm, 17 joints, pelvis-aligned
        row["seeds"] = len(seeds)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- presentation
def with_paper(rows: list[dict], table: str = "table1") -> list[dict]:
    """Our rows with the paper's rows after them, each paper row labelled ``source:
    "paper"`` and its method suffixed " (paper)"; for the markdown tables."""
    if table == "table1":
        out = []
        for p in dict.fromkeys(r["protocol"] for r in rows):
            out += [r for r in rows if r["protocol"] == p]
            out += [{"protocol": p, "input": "paper", "method": f"{name} (paper)", "source": "paper",
                     **dict(zip(COLUMNS, vals)), "status": "reported in the paper, not measured here"}
                    for name, vals in PAPER_TABLE1.get(p, {}).items()]
        head = ("protocol", "input", "method", "source")
        skip = set(head) | {"status", "seeds", "train_rows", "test_rows", "avg_per_seed", "Avg."}
        cols = head + tuple(dict.fromkeys(k for r in out for k in r if k not in skip)) + ("Avg.", "status")
        return [{c: ("" if r.get(c) is None else r.get(c, "")) for c in cols} for r in out]
    cols = ("method", "source", "overall_pck", "overall_auc", "overall_mpjpe", "studio_gs_pck", "studio_gs_auc",
            "studio_no_gs_pck", "studio_no_gs_auc", "outdoor_pck", "outdoor_auc", "status")
    out = [{c: r.get(c, "") for c in cols} for r in rows]
    out += [{"method": f"{m} (paper: {p['paper_label']})", "source": "paper", "overall_pck": p["pck"],
             "overall_auc": p["auc"], "status": "reported in the paper (overall only), not measured here"}
            for m, p in PAPER_TABLE2.items()]
    return [{c: ("" if r.get(c) is None else r.get(c, "")) for c in cols} for r in out]


def averages(table1: list[dict]) -> list[dict]:
    """Our averages beside the paper's: one row per (protocol, input, method) of ours, with
    the paper's average of the row it stands beside (None where the paper has none)."""
    out = []
    for r in table1:
        paper = PAPER_TABLE1.get(r["protocol"], {}).get(PAPER_OF.get(r["method"], ""))
        out.append({"protocol": r["protocol"], "input": r["input"], "method": r["method"],
                    "ours_avg": r.get("Avg.") if r.get("status") is None else r["status"],
                    "paper_avg": None if paper is None else paper[-1]})
    return out


def g_gain(table1: list[dict]) -> list[dict]:
    """What G adds under identical conditions: per protocol and input, the average without
    G minus the average with G (mm; positive = G helps), for both regressors."""
    pairs = (("Baseline#1", "Ours+Regression#1"), ("Martinez et al. (no G)", "Ours+Regression#2"))
    out = []
    idx = {(r["protocol"], r["input"], r["method"]): r for r in table1}
    for (p, i, m), r in idx.items():
        for base, ours in pairs:
            if m == ours and (p, i, base) in idx and r.get("Avg.") is not None:
                b = idx[(p, i, base)]["Avg."]
                out.append({"protocol": p, "input": i, "without_G": base, "with_G": ours, "without": b,
                            "with": r["Avg."], "gain_mm": b - r["Avg."], "gain_pct": 100 * (b - r["Avg."]) / b})
    return out

"""The experiments behind the notebooks: generators per variant (cached in ``runs/``),
synthesis quality, Figure 5 (label efficiency) and Figure 6 (ablations). Notebooks set
parameters, call these, and draw.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from geo import regress
from geo import weights
from geo.data import Dataset
from geo.pairs import PairSource
from geo.profiles import EXPERIMENTS
from geo.results import atomic_write, publishes, runs_dir
from geo.safety import UnsafeFile, plain_name
from geo.cameras import Torus
from geo.data import DataError
from geo.device import default as default_device
from geo.data.identity import data_identity, data_tag  # noqa: F401 - re-exported (E.data_identity)
from geo.train import NeedsImages, config_for, identity_hash, map_iou, synthesise, train

# Paper numbers, only ever shown as labelled references beside ours.
PAPER = {
    "fig5_gain_pct_at_500": {"mpjpe": 17.98, "p_mpjpe": 3.90},   # Sec. 4, "Results on Human3.6M"
    "fig6_mpjpe": {"BL": 49.8, "BL+DG+AUG": 46.3},                 # Table 1 / Sec. 4 (Regression#3)
}

def device() -> str:
    """Where experiments run (:func:`geo.device.default`)."""
    return default_device()


def run_dir(data: str, variant: str, profile: str = "quick", seed: int = 0, **over) -> Path:
    """``runs/<data_tag>/<profile>/<variant>-s<seed>-<hash>``, the hash over the run's
    identity (``geo.train.identity``: every config field but steps and logging/speed
    knobs), the data's identity and the virtual cameras' distribution (``Torus()``, part
    of the pairs a run draws): another config, other data or other virtual cameras never
    share a folder, so a changed default starts a new run instead of meeting a checkpoint
    it must refuse."""
    cfg = config_for(variant, profile, seed=seed, **over)
    key = identity_hash(cfg, f"{data_identity(data)}|{Torus()!r}")
    return runs_dir() / data_tag(data) / profile / f"{variant.replace('+', '_')}-s{seed}-{key}"


# The committed generator sets the quick profile draws on Human3.6M, best first: the quick
# profile's own generators train for a minute and reach a held-out IoU of a few
# hundredths, so on real data they would show the method failing for want of training.
COMMITTED_SETS = (None, "cpu")   # weights/ (the full profile's), then weights/cpu/


def committed_generator(ds: Dataset, variant: str, profile: str, seed: int = 0, over: dict | None = None):
    """(models, history, folder) of the committed set of ``variant`` that the ``quick``
    profile uses on Human3.6M (``COMMITTED_SETS``, the first that has it), or None: for
    other data, profiles, overrides or seeds, and for variants with no committed set (those
    are trained as the profile says). Every file is sha256-checked on load."""
    if profile != "quick" or ds.name != "h36m" or over or seed != 0 or variant == "I_SG":
        return None
    for name in COMMITTED_SETS:
        d = weights.weights_dir() if name is None else weights.profile_dir(name)
        if weights.read_meta(variant, d) is not None:
            models, meta = weights.load_generators(variant, d, device())
            print(f"{variant}: the committed generators in {d} ({meta.get('steps')} steps of "
                  f"{meta['config']['batch']} pairs, width {meta['config']['generator']['width']}); "
                  "the quick profile trains only the variants with none")
            hist = meta.get("history") or {"step": [meta.get("steps")], "iou_step": [meta.get("steps")],
                                            "iou": [meta["heldout_iou"]] if meta.get("heldout_iou") is not None else []}
            return models, {**hist, "committed": str(d)}, d
    return None


def profile_note(profile: str, records: dict) -> str:
    """What a figure title says of its generators: in the quick profile committed sets,
    smoke-test generators trained for a minute, or which is which; in the cpu profile their
    width and training pairs; nothing in the full profile.
    ``records``: {variant: :func:`generator_record`}."""
    if profile == "cpu":   # the CPU's own line of generators: say how small and how trained
        recs = {v: r for v, r in records.items() if r.get("width") and r.get("pairs")}
        if not recs:
            return " (cpu profile)"
        if len(recs) > 1 and len({(r["width"], r["pairs"]) for r in recs.values()}) == 1:   # a matched set: once
            r = next(iter(recs.values()))
            return f" (cpu profile: {', '.join(recs)} width {r['width']}, {r['pairs']:,} training pairs each)"
        return " (cpu profile: " + "; ".join(f"{v} width {r['width']}, {r['pairs']:,} training pairs"
                                             for v, r in recs.items()) + ")"
    if profile != "quick":
        return ""
    com = [v for v, r in records.items() if r.get("committed")]
    rest = [v for v, r in records.items() if not r.get("committed")]
    if not com:
        return " (quick profile: smoke-test generators trained for a minute, not the paper's setting)"
    if not rest:
        return " (quick profile: committed generators, subsampled frames)"
    return f" (quick profile: committed {', '.join(com)}; smoke-test {', '.join(rest)})"


def generator_record(variant: str, models: dict, folder) -> dict:
    """What a figure's sidecar says of the generator it used: the variant, where it came
    from, its steps, and the sha256 of its encoder's weights (float32 state, in order)
    and, for a committed set, of its files (``weights/<stem>.json``)."""

    h = hashlib.sha256()
    for k, v in models["phi_psi"].encoder.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
    rec = {"variant": variant, "from": str(folder), "encoder_state_sha256": h.hexdigest(), "committed": False}
    meta = weights.read_meta(variant, folder) if Path(folder).is_dir() else None
    if meta is not None:
        rec.update(committed=True, **_weights_fields(meta))
    return rec


def _weights_fields(meta: dict) -> dict:
    """A saved set's sidecar (``weights/<stem>.json``) as a generator record's fields."""
    return {"steps": meta.get("steps"), "heldout_iou": meta.get("heldout_iou"),
            "width": meta["config"]["generator"]["width"],
            "pairs": int(meta.get("steps") or 0) * int(meta["config"]["batch"]),
            "files_sha256": {fn: f["sha256"] for fn, f in meta["files"].items()}}


def saved_record(record: dict, variant: str, folder) -> dict:
    """``record`` (:func:`generator_record` of a generator used as trained, from its run
    folder) with what :func:`geo.weights.save` then wrote of it to ``folder``: its steps,
    width and training pairs, and under ``saved_as`` the folder, dtype and files' sha256.
    The encoder a figure used is the run's float32 state (``encoder_state_sha256``); the
    saved files are its copy in their dtype (bf16), which loads to a slightly different
    state, so the record names both."""
    meta = weights.read_meta(variant, folder)
    if meta is None:
        raise ValueError(f"{folder}: no saved {variant} set (expected {weights.stem(variant)}.json there)")
    f = _weights_fields(meta)
    return {**record, **{k: f[k] for k in ("steps", "heldout_iou", "width", "pairs")},
            "saved_as": {"folder": str(folder), "dtype": meta.get("dtype"), "files_sha256": f["files_sha256"]}}


def generator(ds: Dataset, data: str, variant: str, profile: str = "quick", seed: int = 0, progress=True,
              prefer_weights: bool = False, heldout=True, continue_weights: bool = False, weights_from=None,
              committed: bool = True, **over):
    """Train (or load, or resume, or extend) one generator variant on the training
    subjects, in :func:`run_dir`. ``heldout``: True (a PairSource of the test subjects),
    a PairSource, or None/False; the held-out IoU is logged every ``eval_every`` steps. ``prefer_weights``: first look in ``weights_from``
    (:mod:`geo.weights`) for a set of this variant with the same identity, the same data
    and at least the steps asked for, and load it if there is one. Returns (models,
    history, folder); raises NeedsImages for I_SG. ``continue_weights``: a run folder
    without a checkpoint starts from the saved weights of this variant when they have the
    same identity and data and fewer steps (:func:`geo.weights.initial`), so that a later
    GPU run adds steps instead of starting over; ``steps`` is then the total.
    ``weights_from``: the folder of saved weights to continue from (default ``weights/``).
    ``committed``: in the quick profile on Human3.6M, use the committed set of the variant
    when there is one (:func:`committed_generator`)."""
    cfg = config_for(variant, profile, seed=seed, **over)
    if variant == "I_SG":
        train(cfg, None, None)   # raises NeedsImages
    got = committed_generator(ds, variant, profile, seed, over) if committed else None
    if got is not None:
        return got
    if prefer_weights:
        got = weights.find(cfg, data_identity(data), weights_from)
        if got is not None:
            return got
    run = run_dir(data, variant, profile, seed, **over)
    src = PairSource(ds, ds.train_subjects, device=device(), seed=seed)
    ho = heldout if isinstance(heldout, PairSource) else None
    if heldout is True and cfg.eval_every and ds.test_subjects:
        try:
            ho = PairSource(ds, ds.test_subjects, device=device(), seed=seed)
        except DataError as e:
            print(f"no held-out IoU during training: {e}")
    init = None
    if continue_weights and not (run / "last.pt").exists():
        init = weights.initial(cfg, data_identity(data), weights_from)
        if init is not None:
            print(f"{variant}: continuing from {init['source']} to {cfg.steps} steps")
    models, hist = train(cfg, src, run, progress=progress, heldout=ho, init=init)
    return models, hist, run


@torch.no_grad()
def synthesis_quality(models, ds: Dataset, variant: str, n: int = 1024, seed: int = 123) -> dict:
    """On held-out subjects: per-channel IoU of maps thresholded at 0.5, and the per-pixel
    squared error, for real camera pairs (AE: the same view)."""
    src = PairSource(ds, ds.test_subjects, device=device(), seed=seed)
    g = models["phi_psi"]
    ious, l2s = [], []
    for s in range(0, n, 256):
        b = src.sample(min(256, n - s), same_view=variant == "AE", width=g.cfg.line_width)
        out = synthesise(g, b.maps_i, None if variant == "AE" else b.R_ij)
        ious.append(map_iou(out, b.maps_j).cpu())     # the measure train() logs on held-out pairs
        l2s.append((out.float() - b.maps_j.float()).pow(2).mean((1, 2, 3)).cpu())
    iou = torch.cat(ious)
    return {"iou": float(iou.mean()), "iou_per_channel": iou.mean(0).tolist(), "l2_per_pixel": float(torch.cat(l2s).mean()),
            "pairs": n}


def splits(ds, input2d, profile: str = "full"):
    """Train rows (the training subjects only) and test rows (the test subjects only) of the
    regressors, subsampled as the profile says. Each :class:`geo.regress.Split` carries its
    per-row ``subjects`` and a ``note`` on the subsample."""
    ex = EXPERIMENTS[profile]
    tr = regress.make_split(ds, ds.train_subjects, input2d)
    te = regress.make_split(ds, ds.test_subjects, input2d)
    return regress.subsample(tr, ex["train_frames"]), regress.subsample(te, ex["test_frames"])


def _inputs(tr, te, encoder):
    """Regressor inputs of train/test splits: 2D, targets, and G when an encoder is given."""
    train, test = {"x2d": tr.x2d, "y": tr.y}, {"x2d": te.x2d, "y": te.y}
    if encoder is not None:
        train["g"] = regress.encode(encoder, tr.x2d, device())
        test["g"] = regress.encode(encoder, te.x2d, device())
    return train, test


def _fig5_ks(n: int, ex: dict) -> list[int]:
    """k on a log scale from 50 to all n training rows, at most ``max_ks`` of them plus
    500 (the paper's comparison point); a k within 1.5x of 500 gives way to 500."""
    ks = regress.log_ks(n, per_decade=ex["per_decade"])
    if len(ks) > ex["max_ks"]:
        keep = np.unique(np.round(np.linspace(0, len(ks) - 1, ex["max_ks"])).astype(int))
        ks = sorted(set([ks[i] for i in keep]) | {min(500, n)})
    k5 = min(500, n)
    return [k for k in ks if k in (k5, n, ks[0]) or abs(np.log(k / k5)) >= np.log(1.5)]


def fig5(ds: Dataset, encoder, profile: str = "quick", inputs=("sh", "gt"), progress=True, seeds=None,
         k_range=None) -> dict:
    """Baseline#1 (FC on 2D) vs Regression#1 (FC on G) for k labelled frames. The seeds of
    one (method, k) train together as one batched model (geo.regress.fit_many).
    ``seeds`` (default: the profile's) and ``k_range`` ((k_min, k_max), inclusive; default
    all) run one shard of the sweep: a label subset depends only on (k, seed), so shards run
    as separate jobs give the rows of one run, joined by :func:`merge_fig5`."""
    ex = EXPERIMENTS[profile]
    seeds = list(ex["seeds"] if seeds is None else seeds)
    if not seeds or not all(isinstance(v, int) for v in seeds):
        raise ValueError(f"seeds {seeds!r}: expected a non-empty list of integers (label-subset seeds)")
    if k_range is not None and (len(k_range) != 2 or k_range[0] > k_range[1]):
        raise ValueError(f"k_range {k_range!r}: expected (k_min, k_max) with k_min <= k_max")
    rows = []
    for input2d in inputs:
        tr, te = splits(ds, input2d, profile)
        n = len(tr.y)
        ks = [k for k in _fig5_ks(n, ex) if k_range is None or k_range[0] <= k <= k_range[1]]
        if not ks:
            raise ValueError(f"k_range {list(k_range)}: no k of the sweep {_fig5_ks(n, ex)} ({input2d} input) in it")
        train, test = _inputs(tr, te, encoder)
        subsets = regress.label_subsets(n, ks, seeds)
        jobs = [(method, k, seed, lab) for (k, seed), lab in sorted(subsets.items())
                for method in ("Baseline#1", "Regression#1")]
        cfgs = [regress.FitConfig("fc", method == "Baseline#1", method == "Regression#1", seed=seed, profile=profile,
                                  hidden=ex["hidden"]) for method, k, seed, _ in jobs]
        fits = regress.fit_many(cfgs, train, test, [j[3] for j in jobs], device(), progress=progress)
        preds, info = fits.preds, fits.info
        for (method, k, seed, _), pred, inf in zip(jobs, preds, info):
            ev = regress.evaluate(pred, test["y"], te.actions)
            rows.append({"input": input2d, "method": method, "k": k, "seed": seed, "mpjpe": ev["mpjpe"],
                         "p_mpjpe": ev["p_mpjpe"], "epochs": inf["epochs"], "steps": inf["steps"],
                         "train_rows": n, "test_rows": len(te), "train_frames": tr.note, "test_frames": te.note,
                         "hidden": ex["hidden"]})
    return {"rows": rows, "gain_pct": gain_at(rows, 500)}


def gain_at(rows, k_target: int = 500) -> dict:
    """Relative improvement (%) of Regression#1 over Baseline#1 at the k nearest k_target,
    per input, from seed means: 100 * (BL - R1) / BL."""
    out = {}
    for input2d in sorted({r["input"] for r in rows}):
        rs = [r for r in rows if r["input"] == input2d]
        k = min({r["k"] for r in rs}, key=lambda v: abs(v - k_target))
        m = {(meth, key): float(np.mean([r[key] for r in rs if r["k"] == k and r["method"] == meth]))
             for meth in ("Baseline#1", "Regression#1") for key in ("mpjpe", "p_mpjpe")}
        out[input2d] = {"k": k, **{key: 100 * (m[("Baseline#1", key)] - m[("Regression#1", key)]) / m[("Baseline#1", key)]
                                   for key in ("mpjpe", "p_mpjpe")},
                        **{f"{meth}_{key}": v for (meth, key), v in m.items()}}
    return out


def merge_fig5(shards, out=None) -> dict:
    """Join the partial Figure 5 results of parallel jobs (notebook 03 run with ``shard``,
    ``label_seeds``, ``k_range``; each wrote ``fig5-<shard>.json``), or the ``fig5.json`` of
    ``python -m geo full-gpu`` runs (e.g. one with ``--k-max``, one with ``--k-min``), into
    one: {"fig5": {"rows", "gain_pct"}, "meta"}; written to ``out`` if given, where notebook
    03 draws it as ``precomputed``. The shards must share data, profile, generator seed and,
    where their sidecars name them, the generators' sha256 (kept in the merged meta), and
    no (input, method, k, seed) may come twice (ValueError naming the files)."""
    import json

    rows, metas, seen = [], [], {}
    for p in map(Path, shards):
        try:
            blob = json.loads(p.read_text())
            part = blob["fig5"] if "fig5" in blob else blob   # a full-gpu stage JSON or a notebook's shard
            shard_rows, meta = part["rows"], blob.get("meta", {})
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{p}: not a partial Figure 5 result ({type(e).__name__}: {e}); expected the "
                             f"fig5-<shard>.json that notebook 03 writes") from e
        for f in ("data", "profile", "generator_seed"):
            if metas and meta.get(f) != metas[0][1].get(f):
                raise ValueError(f"{p}: {f} {meta.get(f)!r} differs from {metas[0][0]}'s {metas[0][1].get(f)!r}; "
                                 f"expected shards of one sweep")
        for q, m in metas:   # one figure, one generator: never rows of two encoders side by side
            for v in set(_encoder_shas(meta)) & set(_encoder_shas(m)):
                if _encoder_shas(meta)[v] != _encoder_shas(m)[v]:
                    raise ValueError(f"{p}: its {v} encoder (sha256 {_encoder_shas(meta)[v][:12]}...) differs from "
                                     f"{q}'s ({_encoder_shas(m)[v][:12]}...); expected shards from one generator")
        for r in shard_rows:
            key = (r["input"], r["method"], r["k"], r["seed"])
            if key in seen:
                raise ValueError(f"{p}: {key} is also in {seen[key]}; expected disjoint (k, seed) ranges")
            seen[key] = p
        rows += shard_rows
        metas.append((p, meta))
    if not rows:
        raise ValueError(f"shards {list(map(str, shards))}: no rows; expected at least one fig5-<shard>.json")
    rows.sort(key=lambda r: (r["input"], r["method"], r["k"], r["seed"]))
    first = metas[0][1]
    meta = {"data": first.get("data"), "profile": first.get("profile"), "generator_seed": first.get("generator_seed"),
            "seeds": sorted({r["seed"] for r in rows}), **_merged_provenance(metas)}
    gens = {v: r for _, m in metas for v, r in (m.get("generators") or {}).items()}
    if gens:
        meta["generators"] = gens
    merged = {"fig5": {"rows": rows, "gain_pct": gain_at(rows, 500)}, "meta": meta}
    if out is not None:
        atomic_write(Path(out), json.dumps(merged, indent=1))
    return merged


def _merged_provenance(metas) -> dict:
    """What a result merged from parts ((path, meta) each) says of where it was computed:
    the parts' files, summed wall time (None if a part lacks one), commits and devices."""
    walls = [m.get("wall_time_s") for _, m in metas]
    return {"merged_from": [str(p) for p, _ in metas], "wall_time_s": sum(walls) if None not in walls else None,
            "commit": sorted({str(m.get("commit")) for _, m in metas}), "device": [m.get("device") for _, m in metas]}


def _encoder_shas(meta: dict) -> dict:
    """{variant: encoder sha256} of the generators a stage's sidecar names (none: {})."""
    gens = meta.get("generators") if isinstance(meta, dict) else None
    return {v: r["encoder_state_sha256"] for v, r in (gens or {}).items()
            if isinstance(r, dict) and r.get("encoder_state_sha256")}


FIG6_RUNGS = ("BL", "BL+I_SG", "BL+AE", "BL+SG", "BL+SG+AUG", "BL+DG+AUG")


def fig6(ds: Dataset, encoders: dict, profile: str = "quick", progress=True, k: int | None = None,
         rungs=None) -> dict:
    """The ablation ladder, Protocol #1 MPJPE, SH input, on all labelled training frames
    (``k``: on k of them per seed, :func:`geo.regress.label_subsets`, the subsets Figure 5
    draws at that k: what a CPU can afford; only those rows are encoded).
    ``encoders``: {variant: encoder or None when the variant could not be trained}.
    Regression#1 ladder: BL = FC on 2D, BL+X = FC on G of X. Regression#2 ladder: BL =
    Martinez et al. on 2D, BL+X = Martinez et al. on 2D + G of X (summed after one FC).
    Per ladder, the rungs with G (and their seeds) train together as one batched model.
    ``rungs``: only these of :data:`FIG6_RUNGS` (default all), e.g. the one rung whose
    generator trained further; a fit gives the same predictions alone or batched
    (:func:`geo.regress.fit_many`), so :func:`merge_fig6` puts them into a whole ladder."""
    chosen = FIG6_RUNGS if rungs is None else tuple(r for r in FIG6_RUNGS if r in set(rungs))
    if rungs is not None and (not chosen or len(chosen) != len(set(rungs))):
        raise ValueError(f"rungs {list(rungs)!r}: expected some of {list(FIG6_RUNGS)}")
    ex = EXPERIMENTS[profile]
    tr, te = splits(ds, "sh", profile)
    n = len(tr.y)
    if k is not None and k < 2:
        raise ValueError(f"k = {k}: expected at least 2 labelled rows per seed")
    if k is None or k >= n:
        labs = {seed: np.arange(n) for seed in ex["fig6_seeds"]}
    else:   # encode only the rows some seed labels; each seed's rows as indices into them
        subsets = {seed: lab for (_, seed), lab in regress.label_subsets(n, [k], ex["fig6_seeds"]).items()}
        used = np.unique(np.concatenate(list(subsets.values())))
        labs = {seed: np.searchsorted(used, lab) for seed, lab in subsets.items()}
        tr = tr.take(used, note=f"{k} labelled of {n} rows per seed ({tr.note})")
    inputs = {}   # each variant's G is encoded once and serves both regressors
    out = {}
    for reg, kind in (("Regression#1", "fc"), ("Regression#2", "martinez")):
        ladder, jobs = {}, []
        for rung in chosen:
            variant = rung[3:] if rung != "BL" else None
            if variant is not None and encoders.get(variant) is None:
                why = "I_SG needs Human3.6M video frames, which this data has not" if variant == "I_SG" else "not trained"
                ladder[rung] = {"skipped": f"no {variant} generator: {why}"}
                continue
            if variant not in inputs:
                inputs[variant] = _inputs(tr, te, encoders[variant] if variant else None)
            use_2d = variant is None or kind == "martinez"
            jobs += [(rung, variant, seed, regress.FitConfig(kind, use_2d, variant is not None, seed=seed,
                                                             profile=profile, hidden=ex["hidden"]))
                     for seed in ex["fig6_seeds"]]
            ladder[rung] = None
        if progress:
            print(f"fig6 {reg}: {len(jobs)} fits", flush=True)
        fits = regress.fit_many([j[3] for j in jobs], [inputs[j[1]][0] for j in jobs], [inputs[j[1]][1] for j in jobs],
                                [labs[j[2]] for j in jobs], device(), progress=progress)
        preds, info = fits.preds, fits.info
        for rung in chosen:
            if ladder[rung] is not None:
                continue
            sel = [i for i, j in enumerate(jobs) if j[0] == rung]
            vals = [regress.evaluate(preds[i], te.y, te.actions)["mpjpe"] for i in sel]
            ladder[rung] = {"mpjpe_mean": float(np.mean(vals)), "mpjpe_std": float(np.std(vals)), "mpjpe_seeds": vals,
                            "epochs": info[sel[0]]["epochs"], "steps": info[sel[0]]["steps"], "hidden": ex["hidden"],
                            "labelled_rows": len(labs[jobs[sel[0]][2]]), "train_rows": n, "test_rows": len(te),
                            "train_frames": tr.note, "test_frames": te.note}
        out[reg] = {rung: ladder[rung] for rung in chosen}
    return out


# what two parts of one Figure 6 must share, per rung: the same split and labelled rows
_FIG6_SAME = ("labelled_rows", "train_rows", "test_rows", "train_frames", "test_frames", "hidden", "epochs", "steps")


def merge_fig6(base, part, out=None) -> dict:
    """A Figure 6 whose rungs in ``part`` (a ``python -m geo full-gpu`` fig6.json of some
    rungs, e.g. one generator trained further, ``--variants``) replace those of ``base``
    (a whole ladder's fig6.json): {"fig6", "meta"}, written to ``out`` if given, where
    notebook 04 draws it as ``precomputed``. The two must share data, profile and seeds,
    and each replaced rung its split, labelled rows and schedule (ValueError naming the
    file); the merged meta names every rung's generator (sha256) and the file it is from."""
    import json

    blobs = []
    for p in map(Path, (base, part)):
        try:
            blob = json.loads(p.read_text())
            ladders, meta = blob["fig6"], blob.get("meta", {})
            if not all(isinstance(ladders[reg], dict) for reg in ("Regression#1", "Regression#2")):
                raise TypeError("a ladder is not a dict")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{p}: not a Figure 6 result ({type(e).__name__}: {e}); expected the fig6.json "
                             f"that `python -m geo full-gpu` writes") from e
        blobs.append((p, ladders, meta))
    (pb, base_l, base_m), (pp, part_l, part_m) = blobs
    for f in ("data", "profile", "seeds"):
        if part_m.get(f) != base_m.get(f):
            raise ValueError(f"{pp}: {f} {part_m.get(f)!r} differs from {pb}'s {base_m.get(f)!r}; expected a part "
                             f"of the same Figure 6")
    merged, rungs_from = {}, {}
    for reg in ("Regression#1", "Regression#2"):
        merged[reg] = dict(base_l[reg])
        for rung, new in part_l[reg].items():
            if rung not in FIG6_RUNGS or not isinstance(new, dict) or "mpjpe_mean" not in new:
                raise ValueError(f"{pp}: {reg} rung {rung!r} is not a computed rung of {list(FIG6_RUNGS)}")
            old = base_l[reg].get(rung) or {}
            for f in _FIG6_SAME:
                if f in old and old.get(f) != new.get(f):
                    raise ValueError(f"{pp}: {reg} {rung} {f} {new.get(f)!r} differs from {pb}'s {old.get(f)!r}; "
                                     f"expected the same split, labelled rows and schedule")
            merged[reg][rung] = new
            rungs_from[f"{reg} {rung}"] = str(pp)
    gens = {**(base_m.get("generators") or {}), **(part_m.get("generators") or {})}
    meta = {**base_m, "generators": gens, "rungs_from": rungs_from, **_merged_provenance([(pb, base_m), (pp, part_m)])}
    result = {"fig6": merged, "meta": meta}
    if out is not None:
        atomic_write(Path(out), json.dumps(result, indent=1))
    return result


def check_precomputed(path, key: str, data: str, profile: str):
    """(blob, meta, data, profile) of a ``python -m geo full-gpu`` JSON, after checking it
    (the ``reproduce`` command does, before any notebook starts): a JSON object with a
    ``key`` entry and a ``meta`` dict. Its ``meta.data`` and ``meta.profile`` say what the
    numbers are, never where they go: the profile must be a plain name (it names a
    folder), and results that would publish (``figures/``: full profile on Human3.6M)
    are refused unless this run, with ``data`` and ``profile``, publishes too -- a quick
    or embedded run never overwrites the tracked figures with numbers a JSON claims.
    ValueError or KeyError naming the file otherwise."""
    import json

    path = Path(path)
    try:
        blob = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read ({e}); expected the JSON of `python -m geo full-gpu`") from e
    if not isinstance(blob, dict) or key not in blob:
        keys = sorted(blob) if isinstance(blob, dict) else f"a JSON {type(blob).__name__}"
        raise KeyError(f"{path}: no {key!r} entry (keys: {keys}); expected the output of `python -m geo full-gpu`")
    meta = blob.get("meta", {})
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: 'meta' is a {type(meta).__name__}; expected the provenance dict geo.results writes")
    used_data, used_profile = meta.get("data", data), meta.get("profile", profile)
    if not isinstance(used_data, str):
        raise ValueError(f"{path}: meta.data {used_data!r}; expected a string ('embedded' or a path)")
    try:
        plain_name(used_profile, f"{path}: meta.profile")
    except UnsafeFile as e:
        raise ValueError(str(e)) from e
    if publishes(used_data, used_profile) and not publishes(data, profile):
        raise ValueError(f"{path}: computed with profile {used_profile!r} on {used_data!r}, results that go to the "
                         f"tracked figures/, but this run is profile {profile!r} on {data!r}; draw it with "
                         f"`reproduce --profile full --data PATH/TO/h36m`")
    return blob, meta, used_data, used_profile


def load_precomputed(path, key: str, data: str, profile: str):
    """Results that ``python -m geo full-gpu`` wrote: (result, meta, data, profile), where
    data/profile are those the results were computed with (:func:`check_precomputed`
    first). Raises naming the file."""
    blob, meta, used_data, used_profile = check_precomputed(path, key, data, profile)
    print(f"drawing from {path}: data {used_data}, profile {used_profile}, "
          f"computed on {meta.get('device')}, commit {meta.get('commit')}, {meta.get('wall_time_s')} s")
    return blob[key], meta, used_data, used_profile


def results_source(precomputed, key: str, data: str, profile: str):
    """Where a notebook's numbers come from, as (stored, computed_by, data, profile, note).
    With ``precomputed`` (a JSON of ``python -m geo full-gpu``): its ``key`` result, its
    ``meta``, and the data and profile it was computed with (:func:`load_precomputed`);
    without: None, {} and the notebook's own data and profile (it computes). ``note``: what
    the figure titles add, the quick profile's caveat or, for a run that names its
    generators, :func:`profile_note` (a cpu run's width and training pairs)."""
    if precomputed:
        stored, computed_by, data, profile = load_precomputed(precomputed, key, data, profile)
    else:
        stored, computed_by = None, {}
    note = " (quick profile: not the paper's setting)" if profile == "quick" else ""
    if computed_by.get("generators"):
        note = profile_note(profile, computed_by["generators"]) or note
    return stored, computed_by, data, profile, note


__all__ = ["merge_fig5", "results_source",
           "load_precomputed", "NeedsImages", "PAPER", "generator", "run_dir", "data_identity",
           "data_tag", "synthesis_quality", "fig5", "fig6", "device"]

"""A generator's training curve across runs.

A run continued from saved weights (``--steps N`` of ``python -m geo full-gpu``, or
``init_from="weights"``) logs only its own steps. :func:`join` puts one variant's successive
runs back into one curve, so that the held-out IoU of the whole training is drawn (notebook 02)
and judged (:func:`geo.train.plateau`) at once; :func:`join_files` does it for the generators
JSON files those runs wrote, into one file notebook 02 draws as ``precomputed``.
"""
from __future__ import annotations

import json
from pathlib import Path

from geo.results import atomic_write, dumps
from geo.train.config import NOT_IDENTITY

# the per-log-step and per-evaluation series of a history (geo.train.loop); other keys are scalars
SERIES = ("step", "loss", "l2_ij", "l2_ji", "lrc", "lr", "pairs_per_s", "iou_step", "iou")


def _same_run(a: dict, b: dict) -> list[str]:
    """The config fields (outside NOT_IDENTITY) on which two entries' configs differ."""
    keys = (set(a) | set(b)) - set(NOT_IDENTITY)
    return sorted(k for k in keys if a.get(k) != b.get(k))


def _segments(entry: dict, source) -> list[dict]:
    """An entry's own segments: those a joined entry lists, else the one its history spans."""
    if entry.get("segments"):
        return [dict(s) for s in entry["segments"]]
    h = entry["history"]
    start = int(h["lr_start"]) if h.get("lr_start") is not None else 0
    seg = {"steps": [start, int(entry["steps"])], "run": entry.get("run"), "wall_s": h.get("wall_s")}
    if h.get("continued_from"):
        seg["continued_from"] = h["continued_from"]
    if source is not None:
        seg["from"] = str(source)
    return [seg]


def _resumed(e: dict, prev_steps: int, hist: dict, segments: list, name) -> tuple[dict, float | None] | None:
    """The new part of a run that resumed the previous segment's own checkpoint and trained
    on (its run folder logs from where that run started, e.g. the same ``--steps`` command
    run again with a larger N, any number of times): (its series past ``prev_steps``, its
    wall time less that of the segments it logged before), after checking that what it
    logged up to there is what the joined curve already holds (ValueError naming the entry
    otherwise); None for any other run."""
    h = e["history"]
    start = int(h["lr_start"]) if h.get("lr_start") is not None else 0
    first = len(segments) - 1   # the segment where this run started: back over its earlier resumptions
    while first > 0 and segments[first].get("resumed"):
        first -= 1
    if not (h["step"] and h["step"][0] <= prev_steps < int(e["steps"]) and start == segments[first]["steps"][0]
            and e.get("run") is not None and all(seg.get("run") == e.get("run") for seg in segments[first:])):
        return None
    new = {}
    for k in SERIES:
        xs = h["iou_step"] if k in ("iou_step", "iou") else h["step"]
        vals = list(h.get(k) or [])
        old = [v for x, v in zip(xs, vals) if x <= prev_steps]
        if old != hist[k][len(hist[k]) - len(old):]:
            raise ValueError(f"{name}: resumes run {e.get('run')} from step {start}, but its {k} up to step "
                             f"{prev_steps} differs from the previous run's; expected the same run's log")
        new[k] = [v for x, v in zip(xs, vals) if x > prev_steps]
    wall = h.get("wall_s")
    before = sum(float(seg.get("wall_s") or 0.0) for seg in segments[first:])
    return new, (float(wall) - before) if wall is not None else None


def join(entries, sources=None) -> dict:
    """One variant's successive runs, oldest first, as one entry {"history", "quality",
    "config", "steps", "run", "segments"}: the series concatenated, ``wall_s`` summed, the last
    run's quality, config and steps, and per run a segment {"steps": [start, end], "run",
    "wall_s", "continued_from", "from"} (``sources``: a label per entry, e.g. its file). Each
    entry is what a generators JSON holds per variant; one that is itself joined brings its
    segments. Each run must continue where the one before stopped (its first logged step after
    the previous run's last, its ``lr_start`` equal to that step), or resume the same run's
    checkpoint and log it again from that run's start (only its new steps are added, and its
    repeated ones must be the same), with the same configuration
    but for the fields that do not define a run (NOT_IDENTITY); ValueError naming the entry
    otherwise."""
    entries = list(entries)
    sources = list(sources) if sources is not None else [None] * len(entries)
    if not entries or len(sources) != len(entries):
        raise ValueError(f"{len(entries)} entries and {len(sources)} sources: expected one source per entry, "
                         "at least one entry")
    hist = {k: [] for k in SERIES}
    segments, wall = [], 0.0
    for i, (e, src) in enumerate(zip(entries, sources)):
        name = src if src is not None else f"entry {i}"
        h = e["history"]
        if i:
            prev = entries[i - 1]
            diff = _same_run(prev["config"], e["config"])
            if diff:
                raise ValueError(f"{name}: config differs from the previous run's on {diff}; expected one run "
                                 "continued (only the fields that do not define a run may change)")
            resumed = _resumed(e, int(prev["steps"]), hist, segments, name)
            if resumed is not None:   # the previous run resumed and extended: keep only its new steps
                new, seg_wall = resumed
                for k in SERIES:
                    hist[k] += new[k]
                wall += float(seg_wall or 0.0)
                segments.append({"steps": [int(prev["steps"]), int(e["steps"])], "run": e.get("run"),
                                 "wall_s": seg_wall, "resumed": f"its own checkpoint at step {prev['steps']}",
                                 **({"from": str(src)} if src is not None else {})})
                continue
            start = h.get("lr_start")
            if not h["step"] or h["step"][0] <= prev["steps"] or (start is not None and start != prev["steps"]):
                raise ValueError(f"{name}: starts at step {start} (first logged {h['step'][:1]}); expected the "
                                 f"continuation of the previous run, which stopped at step {prev['steps']}")
        for k in SERIES:
            hist[k] += list(h.get(k) or [])
        wall += float(h.get("wall_s") or 0.0)
        segments += _segments(e, src)
    hist["wall_s"] = wall
    last = entries[-1]
    return {"history": hist, "quality": last.get("quality"), "config": last["config"], "steps": last["steps"],
            "run": last.get("run"), "segments": segments}


def _read(path: Path) -> dict:
    try:
        blob = json.loads(path.read_text())
        blob["generators"].items()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a generators JSON ({type(e).__name__}: {e}); expected the generators.json "
                         "that `python -m geo full-gpu --stages generators` writes") from e
    return blob


def join_files(paths, out, labels=None) -> dict:
    """The generators JSON files of successive runs (``paths``, oldest first; each may hold any
    of the variants) joined per variant (:func:`join`) into one {"generators", "meta"} written
    to ``out`` (temp file, then rename). ``labels``: what the segments and ``joined_from`` call
    each file (default its path), e.g. "FILE at COMMIT" for one read out of git history.
    ``meta``: the data and profile (which must agree), the newest run's commit and device, the
    summed wall time, and ``joined_from`` (per file: its label, commit, written and wall time).
    ValueError naming the file otherwise."""
    paths = [Path(p) for p in paths]
    labels = [str(p) for p in paths] if labels is None else [str(x) for x in labels]
    if len(labels) != len(paths):
        raise ValueError(f"{len(labels)} labels for {len(paths)} files: expected one label per file")
    blobs = [_read(p) for p in paths]
    metas = [b.get("meta", {}) for b in blobs]
    for p, m in zip(paths[1:], metas[1:]):
        for f in ("data", "profile"):
            if m.get(f) != metas[0].get(f):
                raise ValueError(f"{p}: meta.{f} {m.get(f)!r} differs from {paths[0]}'s {metas[0].get(f)!r}; "
                                 "expected runs on one data and profile")
    order = list(dict.fromkeys(v for b in blobs for v in b["generators"]))
    gens = {}
    for v in order:
        have = [(b["generators"][v], x) for b, x in zip(blobs, labels) if v in b["generators"]]
        gens[v] = join([e for e, _ in have], [x for _, x in have])
    meta = {"data": metas[0].get("data"), "profile": metas[0].get("profile"), "seeds": metas[-1].get("seeds"),
            "commit": metas[-1].get("commit"), "device": metas[-1].get("device"),
            "wall_time_s": round(sum(float(m.get("wall_time_s") or 0.0) for m in metas), 1),
            "joined_from": [{"file": x, "commit": m.get("commit"), "written": m.get("written"),
                             "wall_time_s": m.get("wall_time_s")} for x, m in zip(labels, metas)]}
    blob = {"generators": gens, "meta": meta}
    atomic_write(out, dumps(blob) + "\n")
    return blob


__all__ = ["SERIES", "join", "join_files"]

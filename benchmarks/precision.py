"""Benchmark: float32 vs bf16 (and channels_last, batch, torch.compile) on the CPU.

Every ratio is measured within one run of this script, on one machine; each row records
the load average when it started, so that a row measured beside other work is visible.
Run it on an otherwise idle machine for speed numbers. Parts (``--parts``, comma list):

``generator``  one SG+AUG / DG+AUG training step (sampling and rendering included) at
               widths 8, 16, 32: float32, float32 + channels_last, bf16, bf16 +
               channels_last, at batch 64; bf16 + channels_last at batch 128; and
               torch.compile at width 32 (``--compile``; it costs a minute of compile).
``encoder``    the width-32 encoder's forward, maps given, float32 vs bf16 (+ channels_last),
               and ``geo.regress.encode`` (render + encode) as the code runs it.
``render``     ``geo.render.render`` into float32 vs bf16 maps.
``regressor``  one training step of Baseline#1 (FC) and Martinez et al. (fp32 vs bf16).
``accuracy``   the same fit in float32 and in bf16 on Human3.6M (train S1 S5 S6 S7 S8,
               test S9/S11, SH 2D): Baseline#1 on every frame, Martinez et al. on an
               evenly spaced subsample (``--martinez-frames``); S9/S11 MPJPE of both and
               their difference (``geo.regress.BF16_KINDS`` lists the kinds within 0.3 mm).

Writes ``benchmarks/results/bench_precision.json`` (+ .md); rows of a part replace that
part's rows of an earlier run, other parts' rows are kept. ``meta`` names the processor
and its bf16/AMX flags.

    python benchmarks/precision.py [--parts generator,encoder,render,regressor] [--data PATH]
    python benchmarks/precision.py --parts accuracy --data ../shared/data/h36m
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from geo import precision, regress  # noqa: E402
from geo.results import Provenance, save_table  # noqa: E402

OUT = REPO / "benchmarks" / "results"
NAME = "bench_precision"


def processor() -> dict:
    """The processor's name (geo.results.cpu_model, as every sidecar records it) and the
    flags that decide the CPU's dtype."""
    from geo.results import cpu_model

    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    name = cpu_model() or ""
    keep = sorted(f for f in flags if f.startswith(("amx", "avx512_bf16", "avx512_fp16", "avx512f", "avx2")))
    return {"name": name, "flags": keep, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch_capability": torch.backends.cpu.get_cpu_capability(), "cpu_has_bf16": precision.cpu_has_bf16()}


def load1() -> float:
    return round(os.getloadavg()[0], 2)


class dtype_env:
    """Set GEO_CPU_DTYPE for a block."""

    def __init__(self, dt: str):
        self.dt = dt

    def __enter__(self):
        self.old = os.environ.get(precision.ENV)
        os.environ[precision.ENV] = self.dt

    def __exit__(self, *a):
        if self.old is None:
            os.environ.pop(precision.ENV, None)
        else:
            os.environ[precision.ENV] = self.old


def timed(fn, steps: int, warm: int = 2) -> float:
    for _ in range(warm):
        fn()
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t) / steps


# --------------------------------------------------------------------------- generator
def part_generator(ds, steps: int, compile_: bool) -> list[dict]:
    from geo.pairs import PairSource
    from geo.train import config_for, time_steps

    src = PairSource(ds, ds.train_subjects, seed=0)
    rows = []
    settings = [("float32", False, 64), ("float32", True, 64), ("bfloat16", False, 64), ("bfloat16", True, 64),
                ("bfloat16", True, 128)]
    for width in (8, 16, 32):
        for variant in ("SG+AUG", "DG+AUG"):
            base = None
            for dt, cl, batch in settings:
                if variant == "SG+AUG" and batch != 64:
                    continue
                with dtype_env(dt):
                    cfg = config_for(variant, "quick", batch=batch, channels_last=cl, generator=dict(width=width))
                    ld = load1()
                    r = time_steps(cfg, src, steps=steps, warmup_steps=2)
                base = base or r["pairs_per_s"]
                rows.append({"part": "generator", "what": f"{variant} train step", "width": width, "dtype": dt,
                             "channels_last": cl, "batch": batch, "compile": False,
                             "pairs_per_s": round(r["pairs_per_s"], 1), "step_s": round(r["step_s"], 4),
                             "speedup_vs_float32": round(r["pairs_per_s"] / base, 2), "load1": ld})
                print(rows[-1], flush=True)
    if compile_:
        rows += _compiled_step(src, steps)
    return rows


def _compiled_step(src, steps: int) -> list[dict]:
    """bf16 + channels_last width-32 DG+AUG step, eager vs torch.compile'd generators."""
    from geo.train import build, config_for, make_optimizer, sample, train_step

    rows = []
    with dtype_env("bfloat16"):
        cfg = config_for("DG+AUG", "quick", batch=64, generator=dict(width=32))
        for comp in (False, True):
            models = build(cfg, "cpu")
            opt = make_optimizer(cfg, models, "cpu")
            fwd = {k: torch.compile(m, dynamic=False) for k, m in models.items()} if comp else models
            ld = load1()
            t0 = time.perf_counter()
            try:
                train_step(fwd, opt, sample(src, cfg), cfg)
                first = time.perf_counter() - t0
                dt = timed(lambda: train_step(fwd, opt, sample(src, cfg), cfg), steps, warm=1)
                rows.append({"part": "generator", "what": "DG+AUG train step", "width": 32, "dtype": "bfloat16",
                             "channels_last": True, "batch": 64, "compile": comp, "pairs_per_s": round(64 / dt, 1),
                             "step_s": round(dt, 4), "first_step_s": round(first, 1), "load1": ld})
            except Exception as e:  # noqa: BLE001 - a compile failure is a result
                rows.append({"part": "generator", "what": "DG+AUG train step", "width": 32, "compile": comp,
                             "error": f"{type(e).__name__}: {str(e)[:200]}", "load1": ld})
            print(rows[-1], flush=True)
    eager = next((r for r in rows if not r["compile"] and "pairs_per_s" in r), None)
    for r in rows:
        if eager and r["compile"] and "pairs_per_s" in r:
            r["speedup_vs_eager"] = round(r["pairs_per_s"] / eager["pairs_per_s"], 2)
    return rows


# --------------------------------------------------------------------------- encoder
def part_encoder(steps: int) -> list[dict]:
    from geo.models import Generator, GeneratorConfig
    from geo.render import render

    torch.manual_seed(0)
    enc = Generator(GeneratorConfig(width=32)).encoder.eval()
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(1024, 16, 2)) * 60 + 500).astype(np.float32)
    maps = render(x)
    rows = []
    base = None
    for dt, cl in (("float32", False), ("float32", True), ("bfloat16", False), ("bfloat16", True)):
        m = maps.contiguous(memory_format=torch.channels_last) if cl else maps
        e = enc.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        ld = load1()

        @torch.no_grad()
        def fwd():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dt == "bfloat16"):
                for s in range(0, len(m), 256):
                    e(m[s:s + 256])

        sec = timed(fwd, steps, warm=1)
        base = base or len(m) / sec
        rows.append({"part": "encoder", "what": "width-32 encoder forward (maps given, batch 256)", "dtype": dt,
                     "channels_last": cl, "samples_per_s": round(len(m) / sec, 1),
                     "speedup_vs_float32": round(len(m) / sec / base, 2), "load1": ld})
        print(rows[-1], flush=True)
    base = None
    for dt in ("float32", "bfloat16"):
        with dtype_env(dt):
            ld = load1()
            sec = timed(lambda: regress.encode(enc, x, batch=1024, progress=False), steps, warm=1)
        base = base or len(x) / sec
        rows.append({"part": "encoder", "what": "geo.regress.encode (render + encode, as the code runs it)",
                     "dtype": dt, "channels_last": dt == "bfloat16", "samples_per_s": round(len(x) / sec, 1),
                     "speedup_vs_float32": round(len(x) / sec / base, 2), "load1": ld})
        print(rows[-1], flush=True)
    return rows


def part_render(steps: int) -> list[dict]:
    from geo.render import render

    rng = np.random.default_rng(0)
    x = torch.as_tensor((rng.normal(size=(4096, 16, 2)) * 60 + 500).astype(np.float32))
    rows, base = [], None
    for dt in (torch.float32, torch.bfloat16):
        ld = load1()
        sec = timed(lambda: render(x, dtype=dt), steps)
        base = base or len(x) / sec
        rows.append({"part": "render", "what": "render 4096 poses", "dtype": str(dt).replace("torch.", ""),
                     "samples_per_s": round(len(x) / sec, 1), "speedup_vs_float32": round(len(x) / sec / base, 2),
                     "load1": ld})
        print(rows[-1], flush=True)
    return rows


def part_regressor(steps: int) -> list[dict]:
    rng = np.random.default_rng(0)
    n = 50_000
    tr = {"x2d": rng.normal(size=(n, 16, 2)).astype(np.float32), "y": rng.normal(size=(n, 16, 3)).astype(np.float32),
          "g": rng.normal(size=(n, 64, 3)).astype(np.float32)}
    te = {k: v[:1000] for k, v in tr.items()}
    rows = []
    for kind, use_g in (("fc", False), ("fc", True), ("martinez", False), ("martinez", True)):
        base = None
        for half in (False, True):
            # fc on G is Regression#1 (G only); martinez with G is Regression#2 (2D + G)
            c = regress.FitConfig(kind=kind, use_2d=kind == "martinez" or not use_g, use_g=use_g, steps=steps, batch=256)
            ld = load1()
            t = time.perf_counter()
            regress.fit_many([c], tr, te, [np.arange(n)], bf16=half)
            sec = (time.perf_counter() - t) / steps
            base = base or sec
            rows.append({"part": "regressor", "what": f"{kind} train step, batch 256, input {'2D+G' if use_g else '2D'}"
                         if kind == "martinez" else f"fc train step, batch 256, input {'G' if use_g else '2D'}",
                         "dtype": "bfloat16" if half else "float32", "step_ms": round(sec * 1000, 2),
                         "speedup_vs_float32": round(base / sec, 2), "load1": ld})
            print(rows[-1], flush=True)
    return rows


# --------------------------------------------------------------------------- accuracy
def part_accuracy(ds, martinez_frames: int) -> list[dict]:
    rows = []
    jobs = [("fc", None, "Baseline#1 (FC), SH 2D, every frame"),
            ("martinez", martinez_frames, f"Martinez et al., SH 2D, {martinez_frames} evenly spaced rows")]
    te = regress.make_split(ds, ds.test_subjects, "sh")
    for kind, frames, label in jobs:
        tr = regress.subsample(regress.make_split(ds, ds.train_subjects, "sh"), frames)
        res = {}
        for half in (False, True):
            cfg = regress.FitConfig(kind, True, False, profile="full")
            ld = load1()
            t = time.time()
            fits = regress.fit_many([cfg], {"x2d": tr.x2d, "y": tr.y}, {"x2d": te.x2d, "y": te.y}, [np.arange(len(tr))],
                                    bf16=half, progress=True)
            pred, info = fits[0], fits.info
            ev = regress.evaluate(pred, te.y, te.actions)
            res[half] = ev
            rows.append({"part": "accuracy", "what": label, "kind": kind, "dtype": "bfloat16" if half else "float32",
                         "mpjpe": round(ev["mpjpe"], 2), "p_mpjpe": round(ev["p_mpjpe"], 2),
                         "steps": info[0]["steps"], "train_rows": len(tr), "test_rows": len(te),
                         "wall_s": round(time.time() - t, 1), "threads": torch.get_num_threads(), "load1": ld})
            print(rows[-1], flush=True)
        d = res[True]["mpjpe"] - res[False]["mpjpe"]
        rows[-1]["mpjpe_bf16_minus_float32"] = round(d, 2)
        rows[-1]["within_0.3mm"] = bool(abs(d) <= 0.3)
        rows[-1]["speedup_vs_float32"] = round(rows[-2]["wall_s"] / rows[-1]["wall_s"], 2)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="generator,encoder,render,regressor")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "h36m"),
                    help="Human3.6M (pack or original layout) for the generator and accuracy parts; 'embedded' works "
                         "for the generator part")
    ap.add_argument("--steps", type=int, default=4, help="timed steps per speed row")
    ap.add_argument("--compile", action="store_true", help="generator part: also time torch.compile at width 32")
    ap.add_argument("--martinez-frames", type=int, default=24_000)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    parts = args.parts.split(",")
    prov = Provenance(data=args.data, profile="benchmark", seeds=[0], parts=parts)
    ds = None
    if any(p in ("generator", "accuracy") for p in parts):
        from geo.data import load

        ds = load(args.data)
    rows = []
    for p in parts:
        if p == "generator":
            rows += part_generator(ds, args.steps, args.compile)
        elif p == "encoder":
            rows += part_encoder(args.steps)
        elif p == "render":
            rows += part_render(args.steps)
        elif p == "regressor":
            rows += part_regressor(max(args.steps * 75, 300))
        elif p == "accuracy":
            rows += part_accuracy(ds, args.martinez_frames)
        else:
            raise SystemExit(f"--parts: unknown part {p!r}; expected generator, encoder, render, regressor, accuracy")
    path = Path(args.out) / f"{NAME}.json"
    old = json.loads(path.read_text()).get("rows", []) if path.is_file() else []
    keep = [r for r in old if r.get("part") not in parts]
    all_rows = keep + rows
    save_table({"rows": all_rows, "processor": processor(),
                "note": "ratios are within one run of this script; load1 is the 1-minute load average at each "
                        "row's start (2 cores: about 1 means one core was busy with other work)"},
               NAME, prov, rows=[{k: v for k, v in r.items()} for r in all_rows], out_dir=args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Benchmark of the skeleton-map renderer (geo.render.render) against the per-sample
OpenCV loop (geo.render.render_cv2), on the same real 2D poses.

Poses: the stacked-hourglass detections of ../shared/data/h36m when present (read by
path, never copied), else the embedded default's 2D poses (geo.data.load('embedded')).

Reports, per device:
* stacks/s: (N, 15, 64, 64) skeleton-map stacks per second, and channel maps/s (x 15);
* CPU: render eager and compile=True (float32 output) vs the cv2 loop;
* CUDA (when torch.cuda.is_available()): bf16 output, batches of 65536 and more,
  compile=True (and eager), timed with torch.cuda.synchronize; whether the target of
  >= 2 million stacks/s is met; and that the GPU maps equal the CPU ones;
* agreement with cv2: per-channel IoU at 64 x 64 / width 2 and at 256 x 256 / width 8.

Writes ``<name>.json`` (with its ``meta``) and ``<name>.md`` (geo.results) into
benchmarks/results/ (``--out`` to change). Usage::

    python benchmarks/render.py                 # CPU (+ CUDA if present), ~1 min on 2 cores
    python benchmarks/render.py --name bench_render_cuda --out DIR
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # runs from a bare checkout too

from geo import results  # noqa: E402
from geo.render import render, render_cv2  # noqa: E402

SHARED_H36M = REPO.parent / "shared" / "data" / "h36m"
TARGET_STACKS_PER_S = 2_000_000
N_CHANNELS = 15


def load_poses(data: str | None):
    """All 2D poses (M, 16, 2) px of the dataset, and a description of the source."""
    import geo.data

    if data is None:
        data = str(SHARED_H36M) if (SHARED_H36M / "detections_sh.npz").is_file() else "embedded"
    ds = geo.data.load(data)
    arrays = [a for subj in ds.sequences.values() for seq in subj.values() for a in seq.poses_2d.values()]
    x = np.concatenate(arrays).astype(np.float32)
    kind = "stacked-hourglass detections" if ds.name == "h36m" else "embedded default 2D poses"
    return x, {"data": data, "source": f"{ds.name}: {kind}", "n_poses": len(x)}


def take(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n poses drawn from x (with repetition only when x has fewer than n)."""
    return x[rng.choice(len(x), n, replace=n > len(x))]


def timeit(fn, repeats: int, sync=None) -> float:
    """Median seconds per call over ``repeats`` calls (after the caller's warm-up)."""
    ts = []
    for _ in range(repeats):
        if sync:
            sync()
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def row(method, device, batch, dtype, seconds, **extra):
    sps = batch / seconds
    return {"method": method, "device": device, "batch": batch, "dtype": dtype,
            "stacks_per_s": round(sps, 1), "channel_maps_per_s": round(sps * N_CHANNELS, 1),
            "ms_per_batch": round(1000 * seconds, 3), **extra}


def bench_cpu(x, rng, n_render: int, n_cv2: int, repeats: int):
    rows = []
    xb = torch.as_tensor(take(x, n_render, rng))
    render(xb[:256])  # warm-up (row tables, allocator)
    rows.append(row("geo.render (eager)", "cpu", n_render, "float32", timeit(lambda: render(xb), repeats)))
    # the same maps as uint8, the cv2 loop's output type (4x less memory to write)
    rows.append(row("geo.render (eager, uint8)", "cpu", n_render, "uint8",
                    timeit(lambda: render(xb, dtype=torch.uint8), repeats)))
    t = time.perf_counter()
    render(xb[:256], compile=True)
    compile_s = time.perf_counter() - t
    render(xb, compile=True)  # a second shape: dynamic-shape recompiles, if any, happen here
    rows.append(row("geo.render (compile=True)", "cpu", n_render, "float32",
                    timeit(lambda: render(xb, compile=True), repeats), compile_s=round(compile_s, 2)))
    xc = take(x, n_cv2, rng)
    render_cv2(xc[:16])
    rows.append(row("cv2.line loop (render_cv2)", "cpu", n_cv2, "uint8", timeit(lambda: render_cv2(xc), 1)))
    return rows


def bench_cuda(x, rng, batches, repeats: int):
    dev = torch.device("cuda")
    rows, checks = [], {}
    for n in batches:
        xb = torch.as_tensor(take(x, n, rng)).to(dev)
        for compile_ in (False, True):
            t = time.perf_counter()
            render(xb, dtype=torch.bfloat16, compile=compile_)  # warm-up / compile
            torch.cuda.synchronize()
            warm_s = time.perf_counter() - t
            render(xb, dtype=torch.bfloat16, compile=compile_)
            s = timeit(lambda: render(xb, dtype=torch.bfloat16, compile=compile_), repeats, torch.cuda.synchronize)
            rows.append(row(f"geo.render ({'compile=True' if compile_ else 'eager'})", "cuda", n, "bfloat16", s,
                            first_call_s=round(warm_s, 2)))
        torch.cuda.empty_cache()
    # the GPU draws the same maps as the CPU
    xs = take(x, 4096, rng)
    g = render(torch.as_tensor(xs).to(dev), dtype=torch.bool, compile=True).cpu()
    c = render(xs, dtype=torch.bool)
    checks["gpu_vs_cpu_mismatch_fraction"] = float((g != c).float().mean())
    checks["gpu"] = torch.cuda.get_device_name(0)
    return rows, checks


def iou_vs_cv2(x, rng, n: int, size: int, width: float, chunk: int = 50):
    """Per-channel IoU (intersection and union summed over n poses) of render vs render_cv2."""
    xs = take(x, n, rng)
    inter, union = np.zeros(N_CHANNELS), np.zeros(N_CHANNELS)
    for s in range(0, n, chunk):
        a = render(xs[s:s + chunk], size=size, width=width, dtype=torch.bool).numpy()
        b = render_cv2(xs[s:s + chunk], size=size, width=width).astype(bool)
        inter += (a & b).sum((0, 2, 3))
        union += (a | b).sum((0, 2, 3))
    iou = inter / np.maximum(union, 1)
    return {"size": size, "width": width, "n_poses": n, "per_channel": np.round(iou, 4).tolist(),
            "min": round(float(iou.min()), 4), "mean": round(float(iou.mean()), 4)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="'embedded' or a Human3.6M path (default: ../shared/data/h36m "
                                                 "when present, else embedded)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--name", default="bench_render")
    ap.add_argument("--cpu-batch", type=int, default=4096)
    ap.add_argument("--cv2-batch", type=int, default=1024)
    ap.add_argument("--cuda-batches", default="65536,262144")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-cpu", action="store_true", help="skip the CPU timings (IoU still runs)")
    args = ap.parse_args(argv)

    x, src = load_poses(args.data)
    prov = results.Provenance(data=src["data"], profile="bench", seeds=[args.seed], benchmark="render")
    rng = np.random.default_rng(args.seed)
    rows = []
    if not args.no_cpu:
        rows += bench_cpu(x, rng, args.cpu_batch, args.cv2_batch, args.repeats)
        for r in rows:
            print(r, flush=True)
    cuda = None
    if torch.cuda.is_available():
        cuda_rows, checks = bench_cuda(x, rng, [int(b) for b in args.cuda_batches.split(",")], max(args.repeats, 10))
        for r in cuda_rows:
            print(r, flush=True)
        best = max(cuda_rows, key=lambda r: r["stacks_per_s"])
        cuda = {**checks, "target_stacks_per_s": TARGET_STACKS_PER_S,
                "best_stacks_per_s": best["stacks_per_s"], "best": best,
                "target_met": bool(best["stacks_per_s"] >= TARGET_STACKS_PER_S)}
        rows += cuda_rows
        print({k: v for k, v in cuda.items() if k != "best"}, flush=True)
    iou = {"64_w2": iou_vs_cv2(x, rng, 2000, 64, 2.0), "256_w8": iou_vs_cv2(x, rng, 300, 256, 8.0)}
    for k, v in iou.items():
        print("IoU vs cv2", k, "min", v["min"], "mean", v["mean"], flush=True)
    cpu = {r["method"]: r for r in rows if r["device"] == "cpu"}
    speedup = None
    if cpu:
        base = cpu["cv2.line loop (render_cv2)"]["stacks_per_s"]
        speedup = {m: round(r["stacks_per_s"] / base, 2) for m, r in cpu.items()}
        if cuda:
            speedup["cuda best"] = round(cuda["best_stacks_per_s"] / base, 1)
    data = {"poses": src, "stack_shape": [N_CHANNELS, 64, 64], "rows": rows, "cuda": cuda,
            "speedup_vs_cv2_cpu": speedup, "iou_vs_cv2": iou,
            "torch_threads": torch.get_num_threads()}
    paths = results.save_table(data, args.name, prov, rows=rows, out_dir=args.out)
    print("wrote", *map(str, paths))
    return data


if __name__ == "__main__":
    main()

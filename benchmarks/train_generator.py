"""Benchmark of one DG+AUG training step (two generators + L_rc, half virtual pairs,
maps rendered on the device): pairs/s, step time, peak memory, and model-FLOP
utilisation (FLOPs of one step counted with torch.utils.flop_counter, divided by the
device's peak dense bf16 rate). Writes benchmarks/results/bench_train_generator.json.

    python benchmarks/train_generator.py [--data embedded|PATH] [--batch N] [--steps N]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("GEO_FIGURES", str(Path(__file__).resolve().parent / "results"))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from geo.data import load  # noqa: E402
from geo.pairs import PairSource  # noqa: E402
from geo.results import Provenance, save_table  # noqa: E402
from geo.train import build, config_for, step_losses  # noqa: E402

# Peak dense bf16 tensor-core rates (FLOP/s), from the vendors' data sheets.
PEAK_BF16 = {"H100 80GB HBM3": 989e12, "H100": 989e12, "H200": 989e12, "A100": 312e12}


def peak_for(name: str):
    for k, v in PEAK_BF16.items():
        if k in name:
            return v
    return None


def run(data: str, batch: int, steps: int, width: int, compile_: bool):
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = dev.type == "cuda"
    ds = load(data)
    src = PairSource(ds, ds.train_subjects, device=dev)
    cfg = config_for("DG+AUG", "full" if cuda else "quick", batch=batch, generator=dict(width=width))
    models = build(cfg, dev)
    params = [p for m in models.values() for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    fwd = torch.compile(step_losses) if compile_ else step_losses

    def one(count=None):
        b = src.sample(batch, aug=cfg.augment, dtype=torch.bfloat16 if cuda else torch.float32)
        if cuda:
            b.maps_i = b.maps_i.contiguous(memory_format=torch.channels_last)
            b.maps_j = b.maps_j.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss = fwd(models, b, cfg)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as fc:   # model FLOPs of one step (fwd + bwd)
        one()
    flops = fc.get_total_flops()
    for _ in range(3):
        one()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(steps):
        one()
    if cuda:
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / steps
    # Rendering share: the sampling alone.
    t = time.perf_counter()
    for _ in range(steps):
        src.sample(batch, aug=cfg.augment, dtype=torch.bfloat16 if cuda else torch.float32)
    if cuda:
        torch.cuda.synchronize()
    dt_pairs = (time.perf_counter() - t) / steps
    name = torch.cuda.get_device_name(0) if cuda else "cpu"
    peak = peak_for(name) if cuda else None
    return {"device": name, "batch": batch, "width": width, "compile": compile_, "steps_timed": steps,
            "step_s": dt, "pairs_per_s": batch / dt, "sampling_render_s": dt_pairs,
            "sampling_share": dt_pairs / dt, "flops_per_step": flops, "achieved_flops": flops / dt,
            "peak_bf16_flops": peak, "mfu": (flops / dt / peak) if peak else None,
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="embedded")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--compile", action="store_true")
    a = ap.parse_args()
    cuda = torch.cuda.is_available()
    prov = Provenance(data=a.data, profile="benchmark", seeds=[0])
    res = []
    if cuda:
        for b in ([a.batch] if a.batch else [256, 1024]):
            res.append(run(a.data, b, a.steps or 20, 32, a.compile))
            print(res[-1], flush=True)
    else:
        res.append(run(a.data, a.batch or 32, a.steps or 5, 8, False))
        print(res[-1], flush=True)
    save_table({"results": res, "target": "MFU >= 30% in bf16 on one H100"}, "bench_train_generator", prov,
               rows=[{k: r[k] for k in ("device", "batch", "width", "pairs_per_s", "step_s", "mfu", "sampling_share")} for r in res])


if __name__ == "__main__":
    main()

"""Benchmark of generator training, one speed lever per row.

Rows (DG+AUG: two generators + L_rc, half virtual pairs, maps rendered on the device;
width 32 on CUDA, 8 on CPU): the baseline (eager, batch 512, Adam foreach, channels_last),
larger batches, fused Adam, channels_last off, the share of the step spent sampling and
rendering pairs, torch.compile (compile time reported apart), CUDA graphs through
torch.compile(mode="reduce-overhead") (its error recorded if it fails), and the
throughput of every trained variant at the chosen setting (what
``geo.train.steps_for_budget`` needs). Each row: step time, pairs/s, FLOPs per step
(torch.utils.flop_counter, fwd + bwd), MFU against the peak dense bf16 rate, peak memory.

``--budget-s`` bounds the whole run (default 90 s on CUDA, compile included): rows run
in order of importance, each with a few timed steps, and a row that would not fit is
recorded as skipped. Writes benchmarks/results/bench_train_generator_cuda.json on CUDA,
bench_train_generator.json on CPU.

    python benchmarks/train_generator.py [--data embedded|PATH] [--budget-s S] [--steps N]
    python benchmarks/train_generator.py --ddp [--data embedded|PATH] [--steps N]

``--ddp``: pairs/s of ``geo.train.train`` itself (DG+AUG, the same global batch) on 1 and
on 2 ranks (PyTorch DDP; gloo and one thread per rank on CPU, NCCL and one GPU per rank
on CUDA), each rank count in its own spawned process group, in one run: N warm-up steps,
then N timed steps (the second logged interval). On a machine with one GPU only the
1-rank row runs and the file says that multi-GPU scaling was not measurable there.
Writes bench_train_generator_ddp.json (CPU) or bench_train_generator_ddp_cuda.json.
"""
from __future__ import annotations

import argparse
import os
import time
import traceback
from pathlib import Path

os.environ.setdefault("GEO_FIGURES", str(Path(__file__).resolve().parent / "results"))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from geo.data import load  # noqa: E402
from geo.pairs import PairSource  # noqa: E402
from geo.results import Provenance, save_table  # noqa: E402
from geo.train import (TRAINED, build, config_for, make_optimizer, sample, steps_for_budget,  # noqa: E402
                       time_steps, train_step)

# Peak dense bf16 tensor-core rates (FLOP/s), from the vendors' data sheets (SXM parts).
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def peak_for(name: str):
    for k, v in PEAK_BF16.items():
        if k in name:
            return v
    return None


def flops_per_step(cfg, src) -> int:
    """Model FLOPs of one eager training step (forward + backward)."""
    models = build(cfg, src.device)
    opt = make_optimizer(cfg, models, src.device)
    b = sample(src, cfg)
    with FlopCounterMode(display=False) as fc:
        train_step(models, opt, b, cfg)
    return fc.get_total_flops()


def sync_check(cfg, src) -> str:
    """Two training steps (sampling included) under torch.cuda.set_sync_debug_mode("error"):
    "none", or the error of the first host sync."""
    from geo.train import lr_at

    models = build(cfg, src.device)
    opt = make_optimizer(cfg, models, src.device)
    train_step(models, opt, sample(src, cfg), cfg, lr_at(cfg, 0))   # first-call set-up may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for s in range(2):
            train_step(models, opt, sample(src, cfg), cfg, lr_at(cfg, s))
        return "none"
    except RuntimeError as e:
        return f"{str(e)[:300]} | {traceback.format_exc()[-1200:]}"
    finally:
        torch.cuda.set_sync_debug_mode(0)


def bench(data: str = "embedded", budget_s: float | None = None, steps: int | None = None, progress=True) -> dict:
    """Run the rows (module docstring); returns {"rows", "pairs_per_s", "chosen", ...}."""
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = dev.type == "cuda"
    budget_s = budget_s if budget_s is not None else (90.0 if cuda else 60.0)
    steps = steps or (8 if cuda else 2)
    width, b0 = (32, 512) if cuda else (8, 32)
    big = (1024, 2048) if cuda else (64, 128)
    t_start = time.perf_counter()
    ds = load(data)
    src = PairSource(ds, ds.train_subjects, device=dev)
    name = torch.cuda.get_device_name(0) if cuda else "cpu"
    peak = peak_for(name) if cuda else None
    base = dict(batch=b0, fused=False, channels_last=True, compile=False, generator=dict(width=width))
    flops_pair = {}
    rows = []

    def left():
        return budget_s - (time.perf_counter() - t_start)

    def row(label, variant="DG+AUG", need_s=5.0, fixed_batch=False, **over):
        kw = {**base, **over}
        r = {"row": label, "variant": variant, "batch": kw["batch"], "width": width, "fused": kw["fused"] and cuda,
             "channels_last": kw["channels_last"] and cuda, "compile": kw["compile"] if cuda else False,
             "device": name}
        if kw["compile"] and not cuda:
            r["skipped"] = "torch.compile rows run on CUDA only"
            rows.append(r)
            return r
        if left() < need_s:
            r["skipped"] = f"budget: {left():.0f} s left, row needs about {need_s:.0f} s"
            rows.append(r)
            return r
        cfg = config_for(variant, "full", **kw)
        try:
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            t = time_steps(cfg, src, steps=steps, warmup_steps=2, fixed_batch=fixed_batch)
            if variant not in flops_pair:
                flops_pair[variant] = flops_per_step(config_for(variant, "full", **{**kw, "compile": False}),
                                                     src) / kw["batch"]
            f = flops_pair[variant] * kw["batch"]
            r.update(step_s=t["step_s"], pairs_per_s=t["pairs_per_s"], warmup_s=t["warmup_s"],
                     flops_per_step=f, achieved_flops=f / t["step_s"], peak_bf16_flops=peak,
                     mfu=(f / t["step_s"] / peak) if peak else None,
                     peak_memory_gib=torch.cuda.max_memory_allocated() / 2**30 if cuda else None)
            if kw["compile"] and cuda:
                r["compile_s"] = t["warmup_s"]   # the two untimed steps: compile plus two steps
        except Exception as e:  # noqa: BLE001 - a lever that fails is a result, recorded in its row
            r["error"] = f"{type(e).__name__}: {str(e)[:500]}"
            r["traceback"] = traceback.format_exc()[-1500:]
        finally:
            if cuda:
                torch.cuda.empty_cache()
        rows.append(r)
        if progress:
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items() if k != "traceback"},
                  flush=True)
        return r

    sync = sync_check(config_for("DG+AUG", "full", **{**base, "batch": 64}), src) if cuda else None
    row(f"baseline eager b{b0}")
    row(f"fused Adam b{b0}", fused=True)
    row(f"channels_last off b{b0}", channels_last=False)
    for b in big:
        row(f"batch {b}", batch=b, need_s=8.0)
    fixed = row(f"no sampling/render (one fixed batch) b{b0}", fixed_batch=True)
    ok = [r for r in rows if "pairs_per_s" in r and r["variant"] == "DG+AUG" and "fixed" not in r["row"]]
    share = None
    if "step_s" in fixed and ok:
        share = max(0.0, 1 - fixed["step_s"] / rows[0].get("step_s", float("nan")))
        fixed["sampling_render_share"] = share
    # the chosen setting: the fastest batch measured, fused if it helped, channels_last as measured
    best = max(ok, key=lambda r: r["pairs_per_s"]) if ok else rows[0]
    fused_r = next((r for r in rows if r["row"].startswith("fused")), {})
    cl_off = next((r for r in rows if r["row"].startswith("channels_last off")), {})
    chosen = dict(batch=best["batch"], fused=fused_r.get("pairs_per_s", 0) >= rows[0].get("pairs_per_s", 0),
                  channels_last=cl_off.get("pairs_per_s", 0) <= rows[0].get("pairs_per_s", 0), compile=False)
    # The compile levers before the per-variant rows: the GPU run of 2026-11-26 ran out of
    # budget before them (the per-variant rows are informational; the pipeline measures
    # each variant's throughput itself). A compile mode that beats eager by 10% is chosen.
    eager_pps = best.get("pairs_per_s", 0)
    for label, mode in (("torch.compile", True), ("CUDA graphs (reduce-overhead)", "reduce-overhead")):
        r = row(f"{label} b{chosen['batch']}", need_s=45.0, **{**chosen, "compile": mode})
        if r.get("pairs_per_s", 0) > 1.1 * max(eager_pps, 1e-9):
            eager_pps, chosen["compile"] = r["pairs_per_s"], mode
    pps = {}
    for v in TRAINED:
        r = row(f"variant {v} (chosen setting)", variant=v, need_s=6.0, **chosen)
        if "pairs_per_s" in r:
            pps[v] = r["pairs_per_s"]
    out = {"rows": rows, "pairs_per_s": pps, "host_syncs_in_step": sync, "chosen": {**chosen, "width": width}, "sampling_render_share": share,
           "budget_s": budget_s, "wall_s": time.perf_counter() - t_start, "steps_timed": steps}
    if len(pps) == len(TRAINED):
        out["schedule_6min"] = steps_for_budget(pps, 360, batch=chosen["batch"])
    return out


def _ddp_worker(rank: int, world: int, port: int, data: str, cfg, out: str):
    """One rank of a --ddp row, set up from the variables torchrun would set; rank 0
    writes the logged pairs/s of the timed interval to ``out``."""
    import json
    import tempfile

    from geo import distributed as D
    from geo.train import train

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dev = D.init_from_env()
    try:
        ds = load(data)
        src = PairSource(ds, ds.train_subjects, device=dev, seed=cfg.seed)
        with tempfile.TemporaryDirectory() as tmp:
            _, h = train(cfg, src, tmp, progress=False)
        if D.is_main():
            Path(out).write_text(json.dumps({"pairs_per_s": h["pairs_per_s"][-1],
                                             "warmup_pairs_per_s": h["pairs_per_s"][0], "loss": h["loss"][-1]}))
    finally:
        D.close()


def bench_ddp(data: str = "embedded", steps: int | None = None, progress=True) -> dict:
    """Pairs/s of geo.train.train on 1 and 2 ranks (module docstring)."""
    import json
    import socket
    import tempfile

    import torch.multiprocessing as mp

    from geo.train import config_for

    cuda = torch.cuda.is_available()
    steps = steps or (20 if cuda else 4)
    width, batch = (32, 512) if cuda else (8, 32)
    cfg = config_for("DG+AUG", "full", batch=batch, steps=2 * steps, log_every=steps, checkpoint_every=10 * steps,
                     eval_every=0, generator=dict(width=width))
    gpus = torch.cuda.device_count() if cuda else 0
    rows, t0 = [], time.perf_counter()
    for world in (1, 2):
        r = {"ranks": world, "global_batch": batch, "per_rank_batch": batch // world, "width": width,
             "backend": ("nccl" if cuda else "gloo") if world > 1 else None,
             "device": torch.cuda.get_device_name(0) if cuda else "cpu", "threads_per_rank": 1,
             "cpu_cores": os.cpu_count(), "load_avg_1min_before": os.getloadavg()[0]}   # shared cores: how busy
        if cuda and world > gpus:
            r["skipped"] = (f"this machine has {gpus} GPU(s): {world} ranks need {world}; "
                            f"multi-GPU scaling not measurable here")
            rows.append(r)
            continue
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "rank0.json"
            t = time.perf_counter()
            mp.spawn(_ddp_worker, args=(world, port, data, cfg, str(out)), nprocs=world)
            r.update(json.loads(out.read_text()), wall_s=time.perf_counter() - t)
        rows.append(r)
        if progress:
            print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
    pps = {r["ranks"]: r["pairs_per_s"] for r in rows if "pairs_per_s" in r}
    return {"rows": rows, "steps_timed": steps, "warmup_steps": steps, "variant": "DG+AUG",
            "speedup_2_vs_1": pps[2] / pps[1] if len(pps) == 2 else None,
            "note": (None if len(pps) == 2 else "multi-GPU scaling was not measurable: one GPU on this machine"),
            "wall_s": time.perf_counter() - t0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="embedded")
    ap.add_argument("--budget-s", type=float, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--ddp", action="store_true", help="pairs/s on 1 and 2 ranks (PyTorch DDP) instead of the levers")
    a = ap.parse_args()
    cuda = torch.cuda.is_available()
    prov = Provenance(data=a.data, profile="benchmark", seeds=[0])
    if a.ddp:
        res = bench_ddp(a.data, a.steps)
        print("pairs/s by ranks:", {r["ranks"]: r.get("pairs_per_s", r.get("skipped")) for r in res["rows"]},
              "speed-up 2 vs 1:", res["speedup_2_vs_1"], flush=True)
        cols = ("ranks", "global_batch", "per_rank_batch", "backend", "threads_per_rank", "pairs_per_s", "skipped")
        save_table(res, "bench_train_generator_ddp_cuda" if cuda else "bench_train_generator_ddp", prov,
                   rows=[{k: r.get(k, "") for k in cols} for r in res["rows"]])
        return
    res = bench(a.data, a.budget_s, a.steps)
    print("pairs/s per variant:", res["pairs_per_s"], "chosen:", res["chosen"], flush=True)
    cols = ("row", "batch", "pairs_per_s", "step_s", "mfu", "compile_s", "sampling_render_share", "error", "skipped")
    save_table({**res, "target": "MFU >= 30% in bf16 on one H100"},
               "bench_train_generator_cuda" if cuda else "bench_train_generator", prov,
               rows=[{k: r.get(k, "") for k in cols} for r in res["rows"]])


if __name__ == "__main__":
    main()

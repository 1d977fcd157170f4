"""Precision: which number format and memory layout the convolutional work runs in.

The generators, the encoder that gives G, and the synthesis evaluation run under bf16
autocast with channels_last tensors wherever the hardware has bf16 units: on CUDA, and on
CPUs with AVX512-BF16 or AMX-BF16 (Intel Xeon since Sapphire Rapids, AMD Zen 4), where
oneDNN's kernels use them. On a 2-core Xeon with AMX the width-32 generator step runs
about 3x and the encoder about 3.4x faster than in float32
(``benchmarks/results/bench_precision.json``). Elsewhere the CPU computes in float32.
Master weights, optimiser state, losses and metrics stay float32 in every case.

A user forces the CPU's choice with ``GEO_CPU_DTYPE=float32`` or ``GEO_CPU_DTYPE=bfloat16``
(read at every call, so a test or a notebook can set it for one block of work).
"""
from __future__ import annotations

import contextlib
import functools
import os

import torch

ENV = "GEO_CPU_DTYPE"
CPU_DTYPES = ("float32", "bfloat16")


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when this CPU has bf16 matrix or vector units (AMX-BF16 or AVX512-BF16)."""
    cpu = getattr(torch, "cpu", None)
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        f = getattr(cpu, name, None)
        try:
            if f is not None and f():
                return True
        except Exception:  # noqa: BLE001 - a private probe that fails means "not known to have it"
            pass
    try:   # older torch builds without the probes: the kernel's flags
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
        return " amx_bf16" in flags or " avx512_bf16" in flags
    except OSError:
        return False


def cpu_dtype() -> torch.dtype:
    """The CPU's compute dtype: ``GEO_CPU_DTYPE`` when set, else bf16 where the CPU has
    bf16 units (:func:`cpu_has_bf16`), else float32."""
    want = os.environ.get(ENV, "").strip().lower()
    if want:
        if want not in CPU_DTYPES:
            raise ValueError(f"{ENV}={want!r}: expected one of {CPU_DTYPES} (or unset: decided by the CPU's units)")
        return torch.bfloat16 if want == "bfloat16" else torch.float32
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


def bf16(device) -> bool:
    """Whether convolutional work on ``device`` runs under bf16 autocast."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return True
    return dev.type == "cpu" and cpu_dtype() == torch.bfloat16


def autocast(device):
    """bf16 autocast on ``device`` when :func:`bf16` says so, else a no-op context."""
    dev = torch.device(device)
    if not bf16(dev):
        return contextlib.nullcontext()
    return torch.autocast(dev.type, dtype=torch.bfloat16)


def map_dtype(device) -> torch.dtype:
    """The dtype skeleton maps are drawn in for the network: bf16 under autocast (exact:
    maps are 0/1), else float32."""
    return torch.bfloat16 if bf16(device) else torch.float32


def channels_last(device) -> bool:
    """Whether maps and convolution weights use the channels_last layout on ``device``:
    on CUDA and wherever bf16 runs (oneDNN's and cuDNN's fast bf16 kernels are NHWC). A
    float32 CPU keeps the default layout: NHWC gains less there, and its float32 kernels
    sum in an order that depends on the thread count, which would cost the CPU path its
    bit-for-bit agreement between one process and DDP ranks."""
    dev = torch.device(device)
    return dev.type == "cuda" or bf16(dev)


def to_layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` (a 4-D map batch) in the layout :func:`channels_last` asks for on its device."""
    if x.dim() == 4 and channels_last(x.device):
        return x.contiguous(memory_format=torch.channels_last)
    return x


def describe(device) -> str:
    """One line for logs and sidecars: e.g. ``cpu bf16 channels_last``."""
    dev = torch.device(device)
    return f"{dev.type} {'bf16' if bf16(dev) else 'float32'}{' channels_last' if channels_last(dev) else ''}"

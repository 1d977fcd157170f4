"""Which torch device work runs on: one place for "CUDA when there is one".

:func:`default` is what the library picks when a caller does not say (training,
experiments, loading weights); :func:`resolve` reads a user's ``--device`` / ``device=``
and refuses, by name, a device this machine does not have rather than falling back to the
CPU in silence.
"""
from __future__ import annotations

import torch


def has_cuda() -> bool:
    """Whether this torch sees a GPU: the one question every "CUDA when there is one" asks."""
    return torch.cuda.is_available()


def default() -> str:
    """``"cuda"`` when this torch sees a GPU, else ``"cpu"``."""
    return "cuda" if has_cuda() else "cpu"


def resolve(device="auto", arg: str = "device") -> torch.device:
    """The torch device that ``device`` names: ``"auto"`` (CUDA when this torch sees a
    GPU, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (or a torch.device).
    ValueError naming ``arg`` when CUDA is asked for and there is none, or for any other
    name: lifting on the CPU instead would be silent, and minutes slower on a long video."""
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device(default())
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not has_cuda():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "torch sees no GPU"
            raise ValueError(f"{arg} {device}: CUDA is not available ({why}; torch {torch.__version__}); "
                             "expected 'cpu' or 'auto'")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{arg} {device}: there are {torch.cuda.device_count()} GPUs; expected cuda:0 to "
                             f"cuda:{torch.cuda.device_count() - 1}")
        return dev
    raise ValueError(f"{arg} {device!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'")

"""Trained generator weights, small enough to commit: bf16 files with sha256 sidecars.

A variant's set lives in one folder (default ``weights/`` at the repository root, or
``$GEO_WEIGHTS``), one file per part::

    DG_AUG.phi.pt   encoder phi of generator (phi, psi)     -- Figure 5's encoder
    DG_AUG.psi.pt   decoder psi
    DG_AUG.mu.pt    encoder mu of generator (mu, nu)         (DG variants only)
    DG_AUG.nu.pt    decoder nu
    DG_AUG.json     sidecar: sha256 and size of each file, the training config and its
                    identity hash, steps, held-out IoU, history, data, device, commit

Each ``.pt`` is a state dict with floating tensors in bf16 (``torch.save``), at most
:data:`MAX_BYTES` (16 MiB; a width-32 encoder is about 12 MB). A set is written as one
(:func:`geo.commit.commit`: every file complete under a temp name before any is renamed,
the sidecar last), so a failed save leaves the previous set loadable. The sidecar is
checked before use: the files it lists must be plain names in its folder
(:func:`geo.safety.confined`) of at most :data:`MAX_BYTES`. :func:`load` checks every file's sha256 against the
sidecar before reading it; :func:`load` returns float32 generators in eval mode
(``load(v)["phi_psi"].encoder`` is phi), :func:`load_parts` single parts. A mismatch
raises :class:`WeightsError` naming the file.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import asdict
from pathlib import Path

import torch

from geo.models import Decoder, Encoder, Generator
from geo.commit import commit, sha256
from geo.data.identity import data_identity
from geo.device import default as default_device
from geo.results import REPO, dumps, stamp
from geo.safety import UnsafeFile, confined, load_tensors
from geo.train import TrainConfig, build, identity_hash

PARTS = {"phi": ("phi_psi", "encoder"), "psi": ("phi_psi", "decoder"),
         "mu": ("mu_nu", "encoder"), "nu": ("mu_nu", "decoder")}
MAX_BYTES = 16 << 20


class WeightsError(RuntimeError):
    """Missing, oversized or tampered weight files. The message names the file."""


def weights_dir(dir=None) -> Path:
    return Path(dir) if dir is not None else Path(os.environ.get("GEO_WEIGHTS", REPO / "weights"))


def profile_dir(profile: str, dir=None) -> Path:
    """Where the weights of a training profile live: ``weights/cpu/`` for the CPU's
    ``cpu`` profile (width 16), ``weights/`` for the others."""
    return weights_dir(dir) / "cpu" if profile == "cpu" else weights_dir(dir)


def stem(variant: str) -> str:
    return variant.replace("+", "_")


def check_size(path, blob: bytes) -> None:
    """WeightsError naming ``path`` when ``blob`` is over :data:`MAX_BYTES` (what one file
    of a GPU run's returned files may be)."""
    if len(blob) > MAX_BYTES:
        raise WeightsError(f"{path}: {len(blob) / 2**20:.1f} MiB > {MAX_BYTES / 2**20:.0f} MiB; not written")


def save(models: dict, cfg: TrainConfig, variant: str | None = None, dir=None, *, steps: int, parts=None,
         data: str | None = None, data_id: str | None = None, history: dict | None = None,
         heldout_iou: float | None = None, **extra) -> list[Path]:
    """Write ``models`` ({"phi_psi": Generator, ["mu_nu": Generator]}, as train() returns
    them) of ``cfg.variant`` in bf16, plus the sidecar. ``parts``: the parts to write
    (default: all the models have, e.g. ("phi",) for the encoder alone). ``data_id``:
    the data identity that goes into the identity hash (default: computed from
    ``data`` by ``geo.data.identity.data_identity``). Returns the paths written."""
    if variant is not None and variant != cfg.variant:
        raise ValueError(f"variant {variant!r} but the config is of {cfg.variant!r}")
    if data_id is None:
        data_id = data_identity(data) if data is not None else ""
    d = weights_dir(dir)
    name = stem(cfg.variant)
    blobs = {}
    for part, (gen, half) in PARTS.items():
        if gen not in models or (parts is not None and part not in parts):
            continue
        sd = {k: (v.detach().to("cpu", torch.bfloat16) if v.is_floating_point() else v.detach().cpu())
              for k, v in getattr(models[gen], half).state_dict().items()}
        buf = io.BytesIO()
        torch.save(sd, buf)
        fn = f"{name}.{part}.pt"
        check_size(d / fn, buf.getvalue())
        blobs[part] = (d / fn, buf.getvalue())
    meta = {"variant": cfg.variant, "dtype": "bfloat16", "config": asdict(cfg),
            "identity": identity_hash(cfg, data_id), "data": data, "data_identity": data_id, "steps": steps,
            "heldout_iou": heldout_iou, "history": history, **extra, **stamp()}
    dumps(meta)   # a meta that cannot be serialised stops the save before anything is written

    def sidecar(hashes: dict) -> str:
        files = {p.name: {**hashes[p.name], "part": part} for part, (p, _) in blobs.items()}
        return dumps({"variant": meta["variant"], "files": files, **meta})

    return commit({p: b for p, b in blobs.values()}, d / f"{name}.json", sidecar)


def read_meta(variant: str, dir=None) -> dict | None:
    """The sidecar of ``variant`` in ``dir``, or None when there is none; WeightsError
    naming it when it is not a sidecar (:func:`check_meta`)."""
    p = weights_dir(dir) / f"{stem(variant)}.json"
    if not p.exists():
        return None
    try:
        return check_meta(json.loads(p.read_text()), p)
    except ValueError as e:
        raise WeightsError(f"{p}: unreadable sidecar ({e})") from e


def check_meta(meta, p) -> dict:
    """``meta`` when it has the shape :func:`save` writes (a dict with a ``variant``, a
    ``config`` dict and ``files``: {plain name: {"sha256", "bytes" <= MAX_BYTES, "part"}});
    else WeightsError naming the sidecar ``p`` and what was expected."""
    def bad(what):
        raise WeightsError(f"{p}: {what}; expected a geo.weights sidecar "
                           '({"variant", "config", "files": {name: {"sha256", "bytes", "part"}}})')

    if not isinstance(meta, dict):
        bad(f"a JSON {type(meta).__name__}, not an object")
    if not isinstance(meta.get("files"), dict) or not meta["files"]:
        bad("no 'files' object")
    if not isinstance(meta.get("config"), dict) or not isinstance(meta.get("variant"), str):
        bad("no 'config' object or 'variant' name")
    if not isinstance(meta.get("steps", 0), int) or not isinstance(meta.get("identity", ""), (str, type(None))):
        bad(f"'steps' {meta.get('steps')!r} or 'identity' {meta.get('identity')!r} of the wrong type")
    for fn, f in meta["files"].items():
        try:
            confined(p.parent, fn, p)
        except UnsafeFile as e:
            raise WeightsError(str(e)) from e
        if "/" in fn:
            bad(f"file {fn!r} is not in the sidecar's own folder")
        if not (isinstance(f, dict) and isinstance(f.get("sha256"), str) and f.get("part") in PARTS
                and isinstance(f.get("bytes"), int) and 0 <= f["bytes"] <= MAX_BYTES):
            bad(f"entry {fn!r} is {f!r}, not {{'sha256', 'bytes' (at most {MAX_BYTES}), "
                f"'part' of {sorted(PARTS)}}}")
    return meta


def float32_state(state: dict) -> dict:
    """A state dict stored in bf16 (weights files are, to stay small) back in float32, the
    models' master precision; integer tensors as they are."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def read_checked(p: Path, want, sidecar) -> bytes:
    """The bytes of the weights file ``p``, read only when it is a file of at most
    :data:`MAX_BYTES` (never unbounded) and returned only when their sha256 is ``want``, the
    one ``sidecar`` records; WeightsError naming the file otherwise. Every weights file
    geo loads (generators, lifter regressors) is read through here."""
    try:
        size = p.stat().st_size
        if size > MAX_BYTES or not p.is_file():
            raise WeightsError(f"{p}: {size} bytes, not a weights file of at most {MAX_BYTES} bytes; not read")
        blob = p.read_bytes()
    except OSError as e:
        raise WeightsError(f"{p}: cannot read ({e})") from e
    if sha256(blob) != want:
        raise WeightsError(f"{p}: sha256 {sha256(blob)[:16]}... does not match {Path(sidecar).name}'s "
                           f"{str(want)[:16]}...; the file was changed or damaged, refusing to load it")
    return blob


def _read_verified(d: Path, fn: str, meta: dict) -> bytes:
    side = d / f"{stem(meta['variant'])}.json"
    if fn not in meta["files"]:
        raise WeightsError(f"{d / fn}: not listed in {side}")
    try:
        p = confined(d, fn, side)
    except UnsafeFile as e:
        raise WeightsError(str(e)) from e
    return read_checked(p, meta["files"][fn]["sha256"], side)


def _config(meta: dict, p) -> TrainConfig:
    """The TrainConfig of a sidecar; WeightsError naming it when the fields do not fit."""
    try:
        return TrainConfig.from_dict(meta["config"])
    except (TypeError, ValueError, KeyError) as e:
        raise WeightsError(f"{p}: 'config' is not a geo.train.TrainConfig ({type(e).__name__}: {e})") from e


def load(variant: str, dir=None, device="cpu", parts="all") -> dict:
    """The generators of a saved set as train() returns them, {"phi_psi": Generator,
    ["mu_nu": Generator]} (float32, eval mode, on ``device``), built from ``parts`` (a
    tuple of "phi", "psi", "mu", "nu", or "all": every part saved); a part not loaded
    is a stand-in that raises when used. Every file of the set is sha256-checked."""
    return load_generators(variant, dir, device, parts)[0]


def load_parts(variant: str, dir=None, device="cpu", parts=("phi",)) -> dict:
    """{part: module} of ``variant`` (float32, eval mode, on ``device``); ``parts``: a
    tuple of "phi", "psi", "mu", "nu", or "all" (every part of the set). Every file of
    the set is checked against its sha256 first."""
    d = weights_dir(dir)
    meta = read_meta(variant, d)
    if meta is None:
        raise WeightsError(f"{d / (stem(variant) + '.json')}: no weights for {variant} in {d}")
    have = {f["part"]: fn for fn, f in meta["files"].items()}
    parts = tuple(have) if parts == "all" else tuple(parts)
    blobs = {fn: _read_verified(d, fn, meta) for fn in meta["files"]}   # all files, not only those asked
    cfg = _config(meta, d / f"{stem(variant)}.json")
    out = {}
    for part in parts:
        if part not in have:
            raise WeightsError(f"{d}: {variant} has no part {part!r} (it has {sorted(have)})")
        try:
            m = (Encoder if PARTS[part][1] == "encoder" else Decoder)(cfg.generator)
        except (TypeError, ValueError) as e:
            raise WeightsError(f"{d / (stem(variant) + '.json')}: its config cannot build a {part} "
                               f"({type(e).__name__}: {e})") from e
        try:
            sd = load_tensors(blobs[have[part]], d / have[part])
            m.load_state_dict(float32_state(sd))
        except (ValueError, RuntimeError, AttributeError) as e:   # code, another width, or not a state dict
            raise WeightsError(f"{d / have[part]}: not the {part} state dict of the sidecar's config "
                               f"({type(e).__name__}: {str(e).splitlines()[0]})") from e
        out[part] = m.to(device).eval()
    return out


def load_generators(variant: str, dir=None, device="cpu", parts="all"):
    """(models, meta): :func:`load`'s generators and the sidecar."""
    parts = load_parts(variant, dir, device, parts)
    meta = read_meta(variant, dir)
    cfg = _config(meta, weights_dir(dir) / f"{stem(variant)}.json")
    models = {}
    for gen, (enc, dec) in (("phi_psi", ("phi", "psi")), ("mu_nu", ("mu", "nu"))):
        if enc in parts:
            g = Generator(cfg.generator)
            g.encoder = parts[enc]
            g.decoder = parts[dec] if dec in parts else _Missing(f"{weights_dir(dir)}: the {variant} set has no "
                                                                f"{dec!r} file (only {sorted(parts)} were saved)")
            models[gen] = g.to(device).eval()
    return models, meta


class _Missing(torch.nn.Module):
    """Stands in for a part that was not saved; using it raises."""

    def __init__(self, why: str):
        super().__init__()
        self.why = why

    def forward(self, *a, **k):
        raise WeightsError(self.why)


def _matching_meta(cfg: TrainConfig, data_id: str, d: Path, otherwise: str) -> dict | None:
    """The sidecar of ``cfg.variant``'s set in ``d`` if it has ``cfg``'s identity (every
    config field but the step count) on data ``data_id``; else None, the reason printed."""
    meta = read_meta(cfg.variant, d)
    if meta is None:
        return None
    want = identity_hash(cfg, data_id)
    if meta.get("identity") != want:
        print(f"{d}: weights for {cfg.variant} were trained with another config or data "
              f"(identity {meta.get('identity')}, asked {want}); {otherwise}")
        return None
    return meta


def find(cfg: TrainConfig, data_id: str, dir=None, device=None):
    """(models, history, folder) of a saved set with ``cfg``'s identity on data
    ``data_id`` and at least ``cfg.steps`` steps, or None (the reason printed)."""
    d = weights_dir(dir)
    meta = _matching_meta(cfg, data_id, d, "not used")
    if meta is None:
        return None
    if meta.get("steps", 0) < cfg.steps:
        print(f"{d}: weights for {cfg.variant} have {meta.get('steps')} steps < {cfg.steps} asked; not used")
        return None
    if device is None:
        device = default_device()
    models, meta = load_generators(cfg.variant, d, device)
    return models, meta.get("history") or {}, d


GENERATOR_PARTS = {"phi_psi": ("phi", "psi"), "mu_nu": ("mu", "nu")}


def initial(cfg: TrainConfig, data_id: str, dir=None) -> dict | None:
    """Where to continue training ``cfg`` from saved weights (``geo.train.train(init=)``):
    {"models": {generator: state dict (float32)}, "step", "history", "source"} when the set
    in ``dir`` has ``cfg``'s identity (every config field but the step count) on data
    ``data_id``, every part of every generator the variant trains, and fewer steps than
    ``cfg.steps``; else None, the reason printed. Hashes are checked on load."""
    d = weights_dir(dir)
    meta = _matching_meta(cfg, data_id, d, "training starts from scratch")
    if meta is None:
        return None
    have = {f["part"] for f in meta["files"].values()}
    need = [p for g in build(cfg, "cpu") for p in GENERATOR_PARTS[g]]
    if not set(need) <= have:
        print(f"{d}: weights for {cfg.variant} lack parts {sorted(set(need) - have)} to continue training from; "
              f"training starts from scratch")
        return None
    if meta.get("steps", 0) >= cfg.steps:
        return None
    models, meta = load_generators(cfg.variant, d, "cpu")
    return {"models": {k: m.state_dict() for k, m in models.items()}, "step": int(meta["steps"]),
            "history": meta.get("history") or {},
            "source": f"{d / (stem(cfg.variant) + '.json')} ({meta['steps']} steps, commit {meta.get('commit')})"}


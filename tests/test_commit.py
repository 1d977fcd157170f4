"""Crash-consistent multi-file writes (geo.commit): a result, a weight set and a regressor
are written as one set whose sidecar holds every file's sha256, a failure before the
renames leaves the previous set as it was, and what a killed writer left is swept."""
import copy
import hashlib
import json
import os
import subprocess
import sys

import pytest
import torch

from geo import commit as C
from geo import results


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _prov():
    return results.Provenance(data="embedded", profile="quick", seeds=[0])


def _fig(y):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [y, 0])
    return fig


def test_figure_sidecar_holds_the_image_hash(tmp_path):
    results.save_figure(_fig(1), "f", _prov(), out_dir=tmp_path)
    meta = json.loads((tmp_path / "f.json").read_text())["meta"]
    assert meta["sha256"]["f.png"] == hashlib.sha256((tmp_path / "f.png").read_bytes()).hexdigest()
    results.save_table({"x": 1}, "t", _prov(), rows=[{"a": 1}], out_dir=tmp_path)
    meta = json.loads((tmp_path / "t.json").read_text())["meta"]
    assert meta["sha256"]["t.md"] == hashlib.sha256((tmp_path / "t.md").read_bytes()).hexdigest()


def test_failed_image_save_leaves_the_old_figure_and_sidecar(tmp_path, monkeypatch):
    results.save_figure(_fig(1), "f", _prov(), out_dir=tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = os.replace

    def fail_on_png(src, dst):
        if str(dst).endswith(".png"):
            raise OSError("disk full")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_png)
    with pytest.raises(OSError, match="disk full"):
        results.save_figure(_fig(2), "f", _prov(), out_dir=tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before   # no new sidecar, no temp left


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from geo.data import load
    from geo.pairs import PairSource
    from geo.train import config_for, train

    ds = load("embedded")
    cfg = config_for("SG", "quick", steps=2, batch=4, generator=dict(width=4, points=8))
    models, _ = train(cfg, PairSource(ds, ds.train_subjects), tmp_path_factory.mktemp("run"), progress=False)
    return cfg, models


def test_failed_weight_save_keeps_the_previous_set(trained, tmp_path, monkeypatch):
    from geo import weights as W

    cfg, models = trained
    W.save(models, cfg, dir=tmp_path, steps=2)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    newer = copy.deepcopy(models)   # other weights: each of their files differs from the saved set's
    with torch.no_grad():
        for p in newer["phi_psi"].parameters():
            p.add_(1.0)
    calls, real = [], torch.save

    def fail_second(obj, f, *a, **k):   # the second part cannot be serialised (or the disk is full)
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", fail_second)
    with pytest.raises(OSError, match="disk full"):
        W.save(newer, cfg, dir=tmp_path, steps=3)
    monkeypatch.setattr(torch, "save", real)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert set(W.load_parts("SG", tmp_path, parts="all")) == {"phi", "psi"}


def test_stale_temps_of_a_killed_writer_are_swept(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    stale = tmp_path / f".f.png.{dead}-ab12.tmp"
    mine = tmp_path / f".f.png.{live}-cd34.tmp"
    stale_dir = tmp_path / f".out.{dead}-ef56.tmp"
    stale.write_bytes(b"half a png")
    mine.write_bytes(b"being written")
    (stale_dir / "data").mkdir(parents=True)
    results.save_figure(_fig(1), "f", _prov(), out_dir=tmp_path)
    assert not stale.exists() and not stale_dir.exists() and mine.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, "f.json", "f.png"])


def test_regressor_without_its_sidecar_is_rebuilt(tmp_path, monkeypatch):
    """A kill between the regressor's two files used to make every later lift fail."""
    import numpy as np

    from geo import lift as L
    from geo import regress

    monkeypatch.setenv("GEO_RUNS", str(tmp_path / "runs"))
    rng = np.random.default_rng(0)
    d = {"x2d": np.zeros((32, 16, 2), np.float32), "g": rng.normal(size=(32, 64, 3)).astype(np.float32),
         "y": rng.normal(size=(32, 16, 3)).astype(np.float32)}
    out = regress.fit_many([regress.FitConfig("fc", False, True, steps=2, hidden=8, profile="quick")], d, d,
                           [np.arange(32)]).fitted
    fitted = out[0]
    trained_ = []
    monkeypatch.setattr(L, "train", lambda *a, **k: trained_.append(1) or (fitted, {"note": "rebuilt"}))
    L.lifter(None, "embedded", "X", None, "enc", committed_dir=tmp_path / "none")
    (cache,) = (tmp_path / "runs").rglob("*.pt")
    cache.with_suffix(".json").unlink()          # as a kill between the two renames would leave it
    lf = L.lifter(None, "embedded", "X", None, "enc", committed_dir=tmp_path / "none")
    assert len(trained_) == 2 and lf.meta["note"] == "rebuilt" and cache.with_suffix(".json").exists()


def test_commit_refuses_non_bytes_before_writing(tmp_path):
    with pytest.raises(TypeError, match="b.bin"):
        C.commit({tmp_path / "a.bin": b"x", tmp_path / "b.bin": 3})
    assert not list(tmp_path.iterdir())


def test_file_sha256_streams_what_sha256_hashes(tmp_path):
    from geo.commit import file_sha256, sha256

    blob = bytes(range(256)) * 5000                      # > 1 MiB: more than one block
    (tmp_path / "f.bin").write_bytes(blob)
    assert file_sha256(tmp_path / "f.bin") == sha256(blob) == hashlib.sha256(blob).hexdigest()

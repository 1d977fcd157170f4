"""Committed generator weights: bf16 files, sha256-checked on load, tampering refused."""
import json

import pytest
import torch

from geo import weights as W
from geo.data import load
from geo.pairs import PairSource
from geo.train import config_for, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    ds = load("embedded")
    cfg = config_for("DG+AUG", "quick", steps=2, batch=4, generator=dict(width=4, points=8))
    models, hist = train(cfg, PairSource(ds, ds.train_subjects), tmp_path_factory.mktemp("run"), progress=False)
    return ds, cfg, models, hist


def test_save_and_load_round_trip(trained, tmp_path):
    ds, cfg, models, hist = trained
    paths = W.save(models, cfg, dir=tmp_path, steps=2, data="embedded", data_id="embedded", history=hist,
                   heldout_iou=0.25)
    names = sorted(p.name for p in paths)
    assert names == ["DG_AUG.json", "DG_AUG.mu.pt", "DG_AUG.nu.pt", "DG_AUG.phi.pt", "DG_AUG.psi.pt"]
    meta = json.loads((tmp_path / "DG_AUG.json").read_text())
    assert meta["steps"] == 2 and meta["heldout_iou"] == 0.25 and meta["config"]["generator"]["width"] == 4
    assert all(f["bytes"] <= W.MAX_BYTES and len(f["sha256"]) == 64 for f in meta["files"].values())
    assert "commit" in meta and "device" in meta
    phi = W.load_parts("DG+AUG", tmp_path)["phi"]
    assert set(W.load_parts("DG+AUG", tmp_path, parts="all")) == {"phi", "psi", "mu", "nu"}
    assert W.load("DG+AUG", tmp_path)["phi_psi"].encoder.state_dict().keys() == phi.state_dict().keys()
    ref = models["phi_psi"].encoder
    for (k, a), (k2, b) in zip(ref.state_dict().items(), phi.state_dict().items()):
        assert k == k2 and b.dtype == a.dtype
        if a.is_floating_point():   # stored in bf16
            assert torch.equal(b, a.to(torch.bfloat16).float()), k
    x = PairSource(ds, ds.test_subjects, seed=1).sample(3).maps_i
    with torch.no_grad():
        assert torch.allclose(phi(x), ref.eval()(x), atol=0.05, rtol=0.05)
    gens, _ = W.load_generators("DG+AUG", tmp_path)
    assert set(gens) == {"phi_psi", "mu_nu"}


def test_tampered_or_missing_file_is_refused(trained, tmp_path):
    _, cfg, models, _ = trained
    W.save(models, cfg, dir=tmp_path, steps=2)
    p = tmp_path / "DG_AUG.nu.pt"
    blob = bytearray(p.read_bytes())
    blob[-10] ^= 0xFF
    p.write_bytes(bytes(blob))
    with pytest.raises(W.WeightsError, match="DG_AUG.nu.pt") as e:
        W.load_parts("DG+AUG", tmp_path, parts=("phi",))   # every file is checked, not only those asked for
    assert "sha256" in str(e.value)
    p.unlink()
    with pytest.raises(W.WeightsError, match="DG_AUG.nu.pt"):
        W.load("DG+AUG", tmp_path)
    with pytest.raises(W.WeightsError, match="no weights for SG"):
        W.load("SG", tmp_path)


def test_oversized_file_is_not_written(trained, tmp_path, monkeypatch):
    _, cfg, models, _ = trained
    monkeypatch.setattr(W, "MAX_BYTES", 1000)
    with pytest.raises(W.WeightsError, match="MiB"):
        W.save(models, cfg, dir=tmp_path, steps=2)
    assert not list(tmp_path.glob("*.json"))


def test_find_matches_identity_and_steps(trained, tmp_path):
    _, cfg, models, hist = trained
    W.save(models, cfg, dir=tmp_path, steps=2, data_id="embedded", history=hist)
    got = W.find(cfg, "embedded", tmp_path, device="cpu")
    assert got is not None and set(got[0]) == {"phi_psi", "mu_nu"} and got[1]["step"] == hist["step"]
    assert W.find(cfg, "other-data", tmp_path, device="cpu") is None
    assert W.find(config_for("DG+AUG", "quick", steps=2, batch=8, generator=dict(width=4, points=8)),
                  "embedded", tmp_path, device="cpu") is None
    assert W.find(config_for("DG+AUG", "quick", steps=50, batch=4, generator=dict(width=4, points=8)),
                  "embedded", tmp_path, device="cpu") is None


def test_encoder_only_set(trained, tmp_path):
    _, cfg, models, _ = trained
    W.save(models, cfg, "DG+AUG", tmp_path, parts=("phi",), steps=2, data="embedded")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DG_AUG.json", "DG_AUG.phi.pt"]
    gens, meta = W.load_generators("DG+AUG", tmp_path)
    assert meta["data_identity"] == "embedded"
    x = torch.zeros(2, 15, 64, 64)
    assert gens["phi_psi"].encoder(x).shape == (2, 8, 3)
    with pytest.raises(W.WeightsError, match="psi"):
        gens["phi_psi"](x, None)
    with pytest.raises(ValueError, match="variant"):
        W.save(models, cfg, "SG", tmp_path, steps=2)

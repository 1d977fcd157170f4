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


def test_training_continues_from_saved_weights(trained, tmp_path, monkeypatch):
    """A later GPU run adds steps to the committed weights instead of starting over: a run
    folder without a checkpoint starts from weights of the same identity and data,
    continues their step count and history, and warm-restarts the schedule; other configs
    or data start from scratch."""
    from geo import experiments as E
    from geo.train import lr_at

    ds, cfg, models, hist = trained
    wdir = tmp_path / "w"
    W.save(models, cfg, dir=wdir, steps=2, data_id="embedded", history=hist)
    monkeypatch.setenv("GEO_WEIGHTS", str(wdir))
    monkeypatch.setenv("GEO_RUNS", str(tmp_path / "runs"))
    init = W.initial(config_for("DG+AUG", "quick", steps=5, batch=4, generator=dict(width=4, points=8)), "embedded")
    assert init is not None and init["step"] == 2 and set(init["models"]) == {"phi_psi", "mu_nu"}
    saved = W.load("DG+AUG", wdir)
    for g in ("phi_psi", "mu_nu"):
        for k, v in saved[g].state_dict().items():
            assert torch.equal(init["models"][g][k], v), (g, k)
    assert W.initial(config_for("DG+AUG", "quick", steps=5, batch=8, generator=dict(width=4, points=8)),
                     "embedded") is None                                  # another config
    assert W.initial(config_for("DG+AUG", "quick", steps=5, batch=4, generator=dict(width=4, points=8)),
                     "other-data") is None                                # other data
    assert W.initial(config_for("DG+AUG", "quick", steps=2, batch=4, generator=dict(width=4, points=8)),
                     "embedded") is None                                  # nothing to add
    # the parameters a continued run starts from are the saved ones (a learning rate of ~0)
    still = config_for("DG+AUG", "quick", steps=3, batch=4, lr=1e-12, generator=dict(width=4, points=8))
    got, h = train(still, PairSource(ds, ds.train_subjects), tmp_path / "still", progress=False, init=init)
    for g in ("phi_psi", "mu_nu"):
        for (k, a), b in zip(got[g].named_parameters(), saved[g].parameters()):
            assert torch.allclose(a, b, atol=1e-6), (g, k)
    assert h["lr_start"] == 2 and h["step"][-1] == 3
    # through the experiments: steps is the total, the history continues the saved one
    m, h, run = E.generator(ds, "embedded", "DG+AUG", "quick", 0, progress=False, heldout=False,
                            continue_weights=True, steps=5, batch=4, generator=dict(width=4, points=8))
    assert h["continued_from"] and "DG_AUG.json" in h["continued_from"]
    assert h["step"][:len(hist["step"])] == hist["step"] and h["step"][-1] == 5
    # resuming that run's checkpoint keeps the restarted schedule
    sched = config_for("DG+AUG", "quick", steps=20, warmup=3, lr_min=1e-5)
    assert lr_at(sched, 10, 10) == lr_at(sched, 0) < lr_at(sched, 10)        # warm-up again from the start
    assert lr_at(sched, 20, 10) == pytest.approx(lr_at(sched, 20)) == pytest.approx(1e-5)  # decays to the same end
    assert lr_at(sched, 13, 10) == pytest.approx(sched.lr)
    m2, h2, run2 = E.generator(ds, "embedded", "DG+AUG", "quick", 0, progress=False, heldout=False,
                               continue_weights=True, steps=7, batch=4, generator=dict(width=4, points=8))
    assert run2 == run and h2["lr_start"] == 2 and h2["step"][-1] == 7


def test_quick_profile_on_h36m_uses_the_committed_generators_and_says_so():
    """The quick profile on Human3.6M draws on the committed sets (weights/, then
    weights/cpu/): only without overrides, at seed 0, for variants that have a set; the
    record a sidecar keeps names their files' sha256; titles say which is which."""
    from types import SimpleNamespace

    import geo.experiments as E

    h36m, embedded = SimpleNamespace(name="h36m"), SimpleNamespace(name="embedded")
    meta = W.read_meta("DG+AUG")
    got = E.committed_generator(h36m, "DG+AUG", "quick")
    assert got is not None
    models, hist, folder = got
    assert folder == W.weights_dir() and hist["step"][-1] == meta["steps"] and hist["committed"]
    rec = E.generator_record("DG+AUG", models, folder)
    assert rec["committed"] and rec["files_sha256"] == {k: v["sha256"] for k, v in meta["files"].items()}
    for args in ((embedded, "DG+AUG", "quick"), (h36m, "DG+AUG", "full"), (h36m, "DG+AUG", "quick", 1),
                 (h36m, "DG+AUG", "quick", 0, {"steps": 5}), (h36m, "I_SG", "quick")):
        assert E.committed_generator(*args) is None, args
    if W.read_meta("SG") is None and W.read_meta("SG", W.profile_dir("cpu")) is None:
        assert E.committed_generator(h36m, "SG", "quick") is None
    # a trained run's record: not committed, another encoder hash
    ds = load("embedded")
    m2, _, run = E.generator(ds, "embedded", "DG+AUG", "quick", 0, progress=False, heldout=False, steps=2, batch=4,
                             generator=dict(width=4, points=8))
    rec2 = E.generator_record("DG+AUG", m2, run)
    assert not rec2["committed"] and rec2["encoder_state_sha256"] != rec["encoder_state_sha256"]
    assert E.generator_record("DG+AUG", m2, run)["encoder_state_sha256"] == rec2["encoder_state_sha256"]
    assert E.profile_note("full", {"DG+AUG": rec}) == ""
    assert "committed generators" in E.profile_note("quick", {"DG+AUG": rec})
    assert "smoke-test" in E.profile_note("quick", {"DG+AUG": rec2})
    mixed = E.profile_note("quick", {"DG+AUG": rec, "AE": rec2})
    assert "committed DG+AUG" in mixed and "smoke-test AE" in mixed
    # a cpu-profile figure says how small its generators are and how many pairs trained them
    assert rec["pairs"] == meta["steps"] * meta["config"]["batch"]
    cpu = E.profile_note("cpu", {"DG+AUG": rec})
    assert f"width {meta['config']['generator']['width']}" in cpu and f"{rec['pairs']:,} training pairs" in cpu
    assert E.profile_note("cpu", {"DG+AUG": rec2}) == " (cpu profile)"
    w = meta["config"]["generator"]["width"]
    matched = E.profile_note("cpu", {"AE": rec, "DG+AUG": rec})          # the same pairs: said once, "each"
    assert matched.count("width") == 1 and "AE, DG+AUG" in matched and f"{rec['pairs']:,} training pairs each" in matched
    other = E.profile_note("cpu", {"AE": {**rec, "pairs": 64}, "DG+AUG": rec})
    assert other.count(f"width {w}") == 2 and "AE width" in other and "each" not in other and "64 training pairs" in other

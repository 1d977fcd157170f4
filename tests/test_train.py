"""Training: resume gives identical weights; the variants run; I_SG says why it can't."""
import numpy as np
import pytest
import torch

from geo.data import load
from geo.pairs import PairSource
from geo.train import NeedsImages, config_for, load_checkpoint, train


@pytest.fixture(scope="module")
def ds():
    return load("embedded")


def tiny(variant, **kw):
    kw = {"batch": 4, "checkpoint_every": 5, "generator": dict(width=4, points=8), **kw}
    return config_for(variant, "quick", **kw)


def weights(models):
    return {f"{k}.{n}": p.detach().clone() for k, m in models.items() for n, p in m.state_dict().items()}


def test_resume_is_exact(ds, tmp_path):
    cfg = tiny("DG+AUG", steps=20)
    straight, _ = train(cfg, PairSource(ds, ds.train_subjects, seed=0), tmp_path / "a", progress=False)
    # 10 steps, then the process "dies" (a fresh sampler and models), then 10 more.
    train(cfg, PairSource(ds, ds.train_subjects, seed=0), tmp_path / "b", progress=False, stop_after=10)
    assert load_checkpoint(tmp_path / "b")[2]["step"] == 10
    resumed, hist = train(cfg, PairSource(ds, ds.train_subjects, seed=99), tmp_path / "b", progress=False)
    wa, wb = weights(straight), weights(resumed)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert hist["step"][-1] == 20
    assert not list((tmp_path / "b").glob("*.tmp"))


def test_variants_and_pairs(ds, tmp_path):
    src = PairSource(ds, ds.train_subjects, seed=1)
    b = src.sample(6, aug=1.0)
    # virtual views: the relative rotation maps camera-frame directions consistently
    assert torch.allclose(torch.linalg.det(b.R_ij), torch.ones(6), atol=1e-4)
    assert b.maps_i.shape == (6, 15, 64, 64) and b.maps_i.sum() > 0
    for v in ("AE", "SG", "SG+AUG"):
        models, hist = train(tiny(v, steps=3), src, tmp_path / v, progress=False)
        assert ("mu_nu" in models) is False and len(hist["step"]) >= 1
    with pytest.raises(NeedsImages, match="video frames"):
        train(tiny("I_SG", steps=1), src, tmp_path / "isg", progress=False)
    with pytest.raises(ValueError, match="unknown variant"):
        config_for("XX")


# --------------------------------------------------------------------------- stale checkpoints
def test_changed_config_or_data_is_refused(ds, tmp_path):
    from geo.train import StaleCheckpoint

    src = lambda: PairSource(ds, ds.train_subjects, seed=0)  # noqa: E731
    train(tiny("SG", steps=3), src(), tmp_path, progress=False)
    for over, field in ((dict(generator=dict(width=6, points=8)), "generator.width"), (dict(lr=1e-4), "lr"),
                        (dict(batch=5), "batch"), (dict(seed=1), "seed")):
        with pytest.raises(StaleCheckpoint, match=field) as e:
            train(tiny("SG", steps=3, **over), src(), tmp_path, progress=False)
        assert str(tmp_path) in str(e.value)
    with pytest.raises(StaleCheckpoint, match="variant"):
        train(tiny("SG+AUG", steps=3), src(), tmp_path, progress=False)
    with pytest.raises(StaleCheckpoint, match="data"):   # other subjects: other frames
        train(tiny("SG", steps=3), PairSource(ds, ds.test_subjects, seed=0), tmp_path, progress=False)
    # steps, logging and speed knobs are not the identity: the finished run is returned
    models, hist = train(tiny("SG", steps=3, log_every=1, compile=True), src(), tmp_path, progress=False)
    assert load_checkpoint(tmp_path)[2]["step"] == 3


def test_more_steps_continue_the_run(ds, tmp_path):
    cfg = tiny("DG+AUG", steps=8)
    straight, _ = train(cfg, PairSource(ds, ds.train_subjects, seed=0), tmp_path / "a", progress=False)
    train(tiny("DG+AUG", steps=4), PairSource(ds, ds.train_subjects, seed=0), tmp_path / "b", progress=False)
    assert load_checkpoint(tmp_path / "b")[2]["finished"]
    more, hist = train(cfg, PairSource(ds, ds.train_subjects, seed=0), tmp_path / "b", progress=False)
    assert load_checkpoint(tmp_path / "b")[2]["step"] == 8 and hist["step"][-1] == 8
    wa, wb = weights(straight), weights(more)
    for k in wa:   # constant lr: 4 + 4 steps are the 8 straight ones
        assert torch.equal(wa[k], wb[k]), k


def test_corrupt_checkpoint_and_stale_temp_files(ds, tmp_path):
    from geo.train import CheckpointError

    (tmp_path / ".last.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="last.pt") as e:
        train(tiny("SG", steps=2), PairSource(ds, ds.train_subjects), tmp_path, progress=False)
    assert str(tmp_path / "last.pt") in str(e.value)
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(CheckpointError, match="last.pt"):
        load_checkpoint(tmp_path)


def test_run_dir_and_data_tag_are_keyed_by_identity(tmp_path, monkeypatch):
    from geo import experiments as E

    monkeypatch.setenv("GEO_RUNS", str(tmp_path / "runs"))
    a, b = tmp_path / "a" / ("x" * 50), tmp_path / "b" / ("x" * 50)   # same 40-character tail
    for d, content in ((a, b"one"), (b, b"two")):
        d.mkdir(parents=True)
        (d / "poses.npz").write_bytes(content)
    assert E.data_tag(str(a)) != E.data_tag(str(b))
    assert E.data_identity(str(a)) != E.data_identity(str(b))
    base = E.run_dir("embedded", "DG+AUG", "quick", 0)
    assert base == E.run_dir("embedded", "DG+AUG", "quick", 0, steps=999, log_every=3, compile=True)
    for over in (dict(generator=dict(width=16)), dict(lr=1e-4), dict(warmup=10)):
        assert E.run_dir("embedded", "DG+AUG", "quick", 0, **over) != base
    assert E.run_dir("embedded", "DG+AUG", "quick", 1) != base
    assert E.run_dir(str(a), "DG+AUG", "quick", 0) != E.run_dir(str(b), "DG+AUG", "quick", 0)
    # other virtual cameras draw other pairs: a changed torus default gets its own folder
    import geo.cameras as C

    monkeypatch.setattr(E, "Torus", lambda: C.Torus(dist_max=9000.0))
    assert E.run_dir("embedded", "DG+AUG", "quick", 0) != base
    assert base.name.startswith("DG_AUG-s0-") and base.parent.name == "quick"


# --------------------------------------------------------------------------- learning
@pytest.mark.parametrize("variant", ["AE", "SG", "SG+AUG", "DG+AUG"])
def test_each_variant_overfits_one_batch(ds, variant):
    from geo.train import build, make_optimizer, sample, train_step

    cfg = config_for(variant, "quick", batch=4, lr=5e-3, generator=dict(width=8, points=16))
    models = build(cfg, "cpu")
    opt = make_optimizer(cfg, models, "cpu")
    b = sample(PairSource(ds, ds.train_subjects, seed=3), cfg)
    loss = [float(train_step(models, opt, b, cfg)["loss"].detach()) for _ in range(60)]
    assert sum(loss[-5:]) / 5 < 0.85 * loss[0], loss[::10]


def test_heldout_iou_is_logged_and_leaves_training_alone(ds, tmp_path):
    cfg = tiny("SG+AUG", steps=10)
    plain, _ = train(cfg, PairSource(ds, ds.train_subjects, seed=0), tmp_path / "a", progress=False)
    ho = PairSource(ds, ds.test_subjects, seed=5)
    evald, hist = train(cfg, PairSource(ds, ds.train_subjects, seed=0), tmp_path / "b", progress=False,
                        heldout=ho, eval_every=5)
    assert hist["iou_step"] == [0, 5, 10]
    assert all(0.0 <= v <= 1.0 for v in hist["iou"])
    wa, wb = weights(plain), weights(evald)
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def test_lr_schedule():
    from geo.train import lr_at

    cfg = tiny("SG", steps=100, lr=1e-3, warmup=10, lr_min=1e-5)
    assert lr_at(cfg, 0) == pytest.approx(1e-4) and lr_at(cfg, 9) == pytest.approx(1e-3)
    assert lr_at(cfg, 10) == pytest.approx(1e-3) and lr_at(cfg, 100) == pytest.approx(1e-5)
    lrs = [lr_at(cfg, s) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert lr_at(tiny("SG", steps=100), 50) == tiny("SG").lr   # no warmup, no lr_min: constant


def test_steps_for_budget():
    from geo.train import DEFAULT_SHARES, steps_for_budget

    pps = {"AE": 40000.0, "SG": 30000.0, "SG+AUG": 29000.0, "DG+AUG": 14000.0}
    steps = steps_for_budget(pps, 360, batch=512)
    assert set(steps) == set(DEFAULT_SHARES)
    secs = {v: steps[v] * 512 / pps[v] for v in steps}
    assert sum(secs.values()) <= 360
    assert max(secs, key=secs.get) == "DG+AUG" and secs["DG+AUG"] == pytest.approx(DEFAULT_SHARES["DG+AUG"] * 360, rel=0.01)
    with_overhead = steps_for_budget(pps, 360, batch=512, overhead_s=20)
    assert all(with_overhead[v] < steps[v] for v in steps)
    with pytest.raises(ValueError, match="sum"):
        steps_for_budget(pps, 360, {"SG": 0.7, "DG+AUG": 0.7})
    with pytest.raises(ValueError, match="no measured"):
        steps_for_budget({"SG": 1.0}, 360, {"SG": 0.5, "AE": 0.5})


# --------------------------------------------------------------------------- how a run starts
def _saved(models, step, source="saved weights"):
    """Saved weights as geo.weights.initial hands them to train(init=)."""
    return {"models": {k: {n: t.clone() for n, t in m.state_dict().items()} for k, m in models.items()},
            "step": step, "history": {}, "source": source}


def test_scratch_refuses_a_folder_with_a_checkpoint(ds, tmp_path):
    src = lambda: PairSource(ds, ds.train_subjects, seed=0)  # noqa: E731
    models, hist = train(tiny("SG", steps=2), src(), tmp_path, progress=False, init_from="scratch")
    assert load_checkpoint(tmp_path)[2]["step"] == 2 and hist["step"][-1] == 2
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(ValueError, match="already there") as e:
        train(tiny("SG", steps=4), src(), tmp_path, progress=False, init_from="scratch")
    assert str(tmp_path / "last.pt") in str(e.value)
    assert (tmp_path / "last.pt").read_bytes() == before            # refused before any work
    with pytest.raises(ValueError, match="init="):
        train(tiny("SG", steps=2), src(), tmp_path / "new", progress=False, init_from="scratch",
              init=_saved(models, 1))
    assert not (tmp_path / "new" / "last.pt").exists()


def test_resume_requires_a_checkpoint_and_continues_it_exactly(ds, tmp_path):
    cfg = tiny("DG+AUG", steps=6)
    with pytest.raises(ValueError, match="holds no checkpoint") as e:
        train(cfg, PairSource(ds, ds.train_subjects, seed=0), tmp_path / "b", progress=False, init_from="resume")
    assert str(tmp_path / "b") in str(e.value) and not (tmp_path / "b" / "last.pt").exists()
    straight, _ = train(cfg, PairSource(ds, ds.train_subjects, seed=0), tmp_path / "a", progress=False)
    train(cfg, PairSource(ds, ds.train_subjects, seed=0), tmp_path / "b", progress=False, stop_after=3,
          init_from="scratch")
    resumed, hist = train(cfg, PairSource(ds, ds.train_subjects, seed=5), tmp_path / "b", progress=False,
                          init_from="resume")
    assert hist["step"][-1] == 6 and load_checkpoint(tmp_path / "b")[2]["step"] == 6
    wa, wb = weights(straight), weights(resumed)
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    with pytest.raises(ValueError, match="init="):
        train(cfg, PairSource(ds, ds.train_subjects), tmp_path / "b", progress=False, init_from="resume",
              init=_saved(resumed, 1))


def test_weights_require_init_and_a_folder_without_a_checkpoint(ds, tmp_path):
    from geo.train import CheckpointError

    src = lambda: PairSource(ds, ds.train_subjects, seed=0)  # noqa: E731
    trained, _ = train(tiny("SG", steps=3), src(), tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="no saved weights"):
        train(tiny("SG", steps=5), src(), tmp_path / "w", progress=False, init_from="weights")
    with pytest.raises(ValueError, match="already there") as e:     # the run has started: resume it
        train(tiny("SG", steps=5), src(), tmp_path / "a", progress=False, init_from="weights",
              init=_saved(trained, 3))
    assert str(tmp_path / "a" / "last.pt") in str(e.value)
    # weights with the steps asked for are the run: loaded, not trained, nothing written
    same, hist = train(tiny("SG", steps=3), src(), tmp_path / "w", progress=False, init_from="weights",
                       init=_saved(trained, 3, "a set"))
    wa, wb = weights(trained), weights(same)
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert hist["continued_from"] == "a set" and not (tmp_path / "w" / "last.pt").exists()
    # fewer steps: the count continues, with the schedule restarted from there
    more, hist = train(tiny("SG", steps=5, warmup=2, log_every=1), src(), tmp_path / "w", progress=False,
                       init_from="weights", init=_saved(trained, 3, "a set"))
    assert hist["lr_start"] == 3 and hist["step"] == [4, 5] and load_checkpoint(tmp_path / "w")[2]["step"] == 5
    lr = tiny("SG").lr
    assert hist["lr"] == [pytest.approx(lr / 2), pytest.approx(lr)]   # steps 3, 4 warm up again
    with pytest.raises(CheckpointError, match="no 'mu_nu' generator"):   # SG weights cannot start DG
        train(tiny("DG", steps=5), src(), tmp_path / "dg", progress=False, init_from="weights",
              init=_saved(trained, 3, "the SG set"))


def test_auto_resumes_before_it_starts_from_weights(ds, tmp_path):
    src = lambda: PairSource(ds, ds.train_subjects, seed=0)  # noqa: E731
    trained, _ = train(tiny("SG", steps=2), src(), tmp_path / "a", progress=False)
    _, hist = train(tiny("SG", steps=4), src(), tmp_path / "a", progress=False, init=_saved(trained, 1))
    assert "continued_from" not in hist and hist["step"][-1] == 4   # the checkpoint wins over init
    _, hist = train(tiny("SG", steps=4), src(), tmp_path / "b", progress=False, init=_saved(trained, 2, "a set"))
    assert hist["continued_from"] == "a set" and load_checkpoint(tmp_path / "b")[2]["step"] == 4
    with pytest.raises(ValueError, match="init_from 'fresh'"):
        train(tiny("SG", steps=1), src(), tmp_path / "c", progress=False, init_from="fresh")


def test_plateau_judges_the_last_window_of_the_curve():
    from geo.train import plateau

    steps = np.arange(0, 10001, 250)
    rising = 0.3 + 0.02 * steps / 1000                                  # +0.04 IoU per 2,000 steps
    r = plateau(steps, rising)
    assert not r["flat"] and np.isclose(r["gain"], 0.04) and np.isclose(r["gain_per_1k"], 0.02)
    assert r["evaluations"] == 9 and r["residual_sd"] < 1e-9
    early_rise = np.where(steps < 6000, 0.3 + 0.05 * steps / 1000, 0.6)  # rose, then flat for 4,000 steps
    noisy = early_rise + np.random.default_rng(0).normal(0, 0.005, len(steps))
    f = plateau(steps, noisy)
    assert f["flat"] and abs(f["gain"]) < 0.01 and 0.002 < f["residual_sd"] < 0.01
    assert not plateau(steps, early_rise, window=8000)["flat"]          # a window over the rise is not flat
    assert not plateau(steps[:5], early_rise[:5])["flat"]               # shorter than one window: never flat
    with pytest.raises(ValueError, match="1-D"):
        plateau(steps, noisy[:-1])

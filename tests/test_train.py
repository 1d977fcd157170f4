"""Training: resume gives identical weights; the variants run; I_SG says why it can't."""
import pytest
import torch

from geo.data import load
from geo.pairs import PairSource
from geo.train import NeedsImages, config_for, load_checkpoint, train


@pytest.fixture(scope="module")
def ds():
    return load("embedded")


def tiny(variant, **kw):
    return config_for(variant, "quick", batch=4, checkpoint_every=5, generator=dict(width=4, points=8), **kw)


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

"""The 3D regressors (geo.regress, geo.models.BatchedRegressor) and the splits that
Figures 5/6 train and test on."""
import numpy as np
import pytest
import torch

from geo import experiments as E
from geo import regress
from geo.models import BatchedLinear, BatchedRegressor, RegressorConfig


def synthetic(n=400, nt=100, seed=0, g=False):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(32, 48))
    x = rng.normal(size=(n + nt, 16, 2)).astype(np.float32) * 100 + 500
    y = (np.tanh((x.reshape(-1, 32) - 500) / 100) @ A * 50).reshape(-1, 16, 3).astype(np.float32)
    tr, te = {"x2d": x[:n], "y": y[:n]}, {"x2d": x[n:], "y": y[n:]}
    if g:
        tr["g"] = rng.normal(size=(n, 8, 3)).astype(np.float32)
        te["g"] = rng.normal(size=(nt, 8, 3)).astype(np.float32)
    return tr, te


@pytest.mark.parametrize("kind", ["fc", "martinez"])
def test_batched_equals_single(kind):
    tr, te = synthetic(g=kind == "martinez")
    rng = np.random.default_rng(1)
    labs = [np.sort(rng.choice(400, 120, replace=False)) for _ in range(3)]   # own labelled rows per fit
    cfgs = [regress.FitConfig(kind, True, kind == "martinez", steps=25, batch=32, seed=s, hidden=64) for s in (0, 1, 2)]
    info = []
    batched = regress.fit_many(cfgs, tr, te, labs, info=info)
    assert [i["group_size"] for i in info] == [3, 3, 3]       # one batched model
    singles = [regress.fit_predict(c, tr, te, lab) for c, lab in zip(cfgs, labs)]
    for b, s in zip(batched, singles):
        assert b.shape == (100, 16, 3)
        np.testing.assert_allclose(b, s, rtol=1e-4, atol=1e-2)   # mm
    assert np.abs(batched[0] - batched[1]).max() > 1.0          # fits differ: seeds and subsets are used


def test_regression2_output_depends_on_g():
    torch.manual_seed(0)
    m = BatchedRegressor(RegressorConfig("martinez", in_2d=32, in_g=24, hidden=64), [0, 1]).eval()
    x, g = torch.randn(2, 5, 32), torch.randn(2, 5, 24)
    a, b = m(x, g), m(x, g + torch.randn_like(g))
    assert (a - b).abs().max() > 1e-3
    # and through a fit: the test G alone changes the predictions
    tr, te = synthetic(g=True)
    cfg = regress.FitConfig("martinez", True, True, steps=10, batch=32, hidden=64)
    p1 = regress.fit_predict(cfg, tr, te, np.arange(400))
    te2 = {**te, "g": te["g"][::-1].copy()}
    p2 = regress.fit_predict(cfg, tr, te2, np.arange(400))
    assert np.abs(p1 - p2).max() > 0.1


def test_max_norm_holds():
    tr, te = synthetic()
    m = BatchedRegressor(RegressorConfig("martinez", in_2d=32, hidden=64), [0, 1])
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    x, y = torch.randn(2, 64, 32), torch.randn(2, 64, 48)
    for _ in range(20):
        opt.zero_grad()
        (m(x) - y).pow(2).mean().backward()
        opt.step()
    lins = [mod for mod in m.modules() if isinstance(mod, BatchedLinear)]
    assert len(lins) == 6                                       # embed, 2 x 2 residual, head
    raw = max(float(lin.weight.detach().flatten(1).norm(dim=1).max()) for lin in lins)
    assert raw > 1.5                                            # the clip is doing something
    for lin in lins:
        assert float(lin.effective_weight().detach().flatten(1).norm(dim=1).max()) <= 1 + 1e-5
    assert BatchedRegressor(RegressorConfig("fc", in_2d=32), [0]).head.max_norm == 0   # FC: no max-norm


def test_schedule_epochs_by_k():
    n_all = 293_116                                             # SH frames of S1 S5 S6 S7 S8 with 3D
    for kind in ("fc", "martinez"):
        e = [regress.schedule(kind, k, "full").epochs for k in (50, 500, 5000, n_all)]
        assert e[0] > e[1] > e[2] >= e[3] >= 5, (kind, e)        # many passes at small k, several at all
        s = [regress.schedule(kind, k, "full").steps for k in (500, n_all)]
        assert s[1] > s[0]
        sc = regress.schedule(kind, n_all, "full")
        assert sc.lr_final < sc.lr                                 # decays


def test_evaluate_averages_per_action():
    y = np.zeros((3, 16, 3), np.float32)
    pred = y.copy()
    pred[0, :, 0] = 17.0
    pred[1, :, 0] = 17.0
    pred[2, :, 0] = 68.0                                        # per frame 16/17 of the shift
    ev = regress.evaluate(pred, y, ["Walking 1", "Walking", "Eating 2"])
    assert ev["mpjpe"] == pytest.approx((16.0 + 64.0) / 2)      # per action, then over actions
    assert ev["mpjpe"] != pytest.approx((16 + 16 + 64) / 3)     # not the frame mean
    assert ev["mpjpe_per_action"] == pytest.approx({"Eating": 64.0, "Walking": 16.0})


def test_label_subsets_distinct_nested():
    n = 1000
    subs = regress.label_subsets(n, [10, 100, 500, 1000], [0, 1])
    for (k, seed), lab in subs.items():
        assert len(lab) == len(set(lab.tolist())) == k
        assert lab.min() >= 0 and lab.max() < n
    for seed in (0, 1):
        for a, b in ((10, 100), (100, 500), (500, 1000)):
            assert set(subs[(a, seed)]) <= set(subs[(b, seed)])
    assert set(subs[(100, 0)]) != set(subs[(100, 1)])


def test_targets_root_relative_camera_frame(h36m_pack, h36m_dir):
    import h5py

    ds = h36m_pack
    sp = regress.make_split(ds, ["S9"], "sh")
    i = 12345
    s, a, cid, f = sp.subjects[i], sp.actions[i], sp.cameras[i], sp.frames[i]
    X = ds.sequences[s][a].poses_3d[f].astype(np.float64)              # (17, 3) world mm
    with h5py.File(h36m_dir / "cameras.h5", "r") as h:
        for c in range(1, 5):
            g = h[f"subject{s[1:]}/camera{c}"]
            if "".join(chr(int(v)) for v in np.asarray(g["Name"][()]).ravel()) == cid:
                R, T = np.asarray(g["R"][()]), np.asarray(g["T"][()]).ravel()
    Xc = (R.T @ (X - T).T).T                                         # X_cam = R_h5^T (X_world - T)
    np.testing.assert_allclose(sp.y[i], Xc[1:] - Xc[:1], atol=1e-2)
    np.testing.assert_allclose(sp.x2d[i], ds.sequences[s][a].poses_2d[cid][f])
    assert set(sp.subjects) == {"S9"}


def test_gt2d_regressor_beats_mean_pose(h36m_pack):
    tr = regress.subsample(regress.make_split(h36m_pack, ["S1", "S5"], "gt"), 4000)
    te = regress.subsample(regress.make_split(h36m_pack, ["S9"], "gt"), 1500)
    cfg = regress.FitConfig("martinez", True, False, steps=400, batch=128, lr=2e-3, hidden=256)
    pred = regress.fit_predict(cfg, {"x2d": tr.x2d, "y": tr.y}, {"x2d": te.x2d, "y": te.y}, np.arange(len(tr)))
    ours = regress.evaluate(pred, te.y, te.actions)["mpjpe"]
    mean = regress.evaluate(np.broadcast_to(tr.y.mean(0), te.y.shape).copy(), te.y, te.actions)["mpjpe"]
    print(f"GT-2D fit {ours:.1f} mm vs mean pose {mean:.1f} mm")
    assert ours < 0.6 * mean, (ours, mean)                     # at least 40% below the mean pose


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_fig5_fig6_splits_keep_test_subjects_out(h36m_pack, profile, monkeypatch):
    """Every split fig5/fig6 build trains on S1 S5 S6 S7 S8 rows only and tests on S9 S11 rows
    only; labelled rows lie within the training rows."""
    train_subj, test_subj = {"S1", "S5", "S6", "S7", "S8"}, {"S9", "S11"}
    made, seen = {}, []
    real_splits = E._splits

    def splits(ds, input2d, prof="full"):
        tr, te = real_splits(ds, input2d, prof)
        assert set(tr.subjects) == train_subj and set(te.subjects) == test_subj
        return tr, te

    def inputs(tr, te, encoder):
        d_tr = {"x2d": tr.x2d, "y": tr.y, "g": np.zeros((len(tr), 4, 3), np.float32)}
        d_te = {"x2d": te.x2d, "y": te.y, "g": np.zeros((len(te), 4, 3), np.float32)}
        made[id(d_tr)], made[id(d_te)] = ("train", tr), ("test", te)
        return d_tr, d_te

    def fit_many(cfgs, train, test, labelled, device="cpu", progress=False, info=None):
        n = len(cfgs)
        trains = train if isinstance(train, list) else [train] * n
        tests = test if isinstance(test, list) else [test] * n
        for t, u, lab in zip(trains, tests, labelled):
            assert made[id(t)][0] == "train" and made[id(u)][0] == "test"
            assert set(made[id(t)][1].subjects) <= train_subj and set(made[id(u)][1].subjects) <= test_subj
            assert 0 <= lab.min() and lab.max() < len(t["y"])
            seen.append(len(lab))
        if info is not None:
            info.extend({"epochs": 1.0, "steps": 1} for _ in cfgs)
        return [np.zeros_like(u["y"]) for u in tests]

    monkeypatch.setattr(E, "_splits", splits)
    monkeypatch.setattr(E, "_inputs", inputs)
    monkeypatch.setattr(regress, "fit_many", fit_many)
    monkeypatch.setattr(regress, "evaluate", lambda pred, y, actions: {"mpjpe": 1.0, "p_mpjpe": 1.0})
    r5 = E.fig5(h36m_pack, encoder=object(), profile=profile, progress=False)
    ks = sorted({r["k"] for r in r5["rows"]})
    assert 500 in ks and ks[-1] == r5["rows"][0]["train_rows"]            # k = 500 and all frames
    assert {r["seed"] for r in r5["rows"]} == set(E.EXPERIMENTS[profile]["seeds"])
    r6 = E.fig6(h36m_pack, {"AE": object(), "DG+AUG": object()}, profile=profile, progress=False)
    assert "skipped" in r6["Regression#2"]["BL+SG"] and "mpjpe_mean" in r6["Regression#2"]["BL+DG+AUG"]
    assert seen
    if profile == "quick":
        assert r5["rows"][0]["train_rows"] <= 20_000 and r5["rows"][0]["test_rows"] <= 8_000
        assert "every" in r5["rows"][0]["train_frames"] and "every" in r6["Regression#1"]["BL"]["train_frames"]


def test_weight_decay_default_off_and_fits_group_apart():
    assert regress.FitConfig().weight_decay == 0.0   # every figure's fits: no weight decay
    tr, te = synthetic()
    lab = np.arange(120)
    cfgs = [regress.FitConfig("fc", True, False, steps=30, batch=32, seed=0, hidden=64, weight_decay=wd)
            for wd in (0.0, 0.5)]
    info = []
    both = regress.fit_many(cfgs, tr, te, [lab, lab], info=info)
    assert [i["group_size"] for i in info] == [1, 1]           # one optimiser per weight decay
    alone = [regress.fit_predict(c, tr, te, lab) for c in cfgs]
    for b, s in zip(both, alone):
        np.testing.assert_allclose(b, s, rtol=1e-4, atol=1e-2)
    assert np.abs(both[0] - both[1]).max() > 1e-3               # the decay is applied

"""The 3D regressors (geo.regress, geo.models.BatchedRegressor) and the splits that
Figures 5/6 train and test on."""
import numpy as np
import pytest
import torch

from geo import experiments as E
from geo import precision, regress
from geo.cameras import Camera, look_at
from geo.data import Dataset, Sequence
from geo.models import BatchedLinear, BatchedRegressor, RegressorConfig
from geo.profiles import EXPERIMENTS
from geo.render import render


def fit_one(cfg, train, test, labelled, device="cpu"):
    """One fit: :func:`geo.regress.fit_many` with one config, its test predictions (N, 16, 3) mm."""
    return regress.fit_many([cfg], train, test, [labelled], device)[0]


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
    batched = regress.fit_many(cfgs, tr, te, labs)
    info = batched.info
    assert [i["group_size"] for i in info] == [3, 3, 3]       # one batched model
    singles = [fit_one(c, tr, te, lab) for c, lab in zip(cfgs, labs)]
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
    p1 = fit_one(cfg, tr, te, np.arange(400))
    te2 = {**te, "g": te["g"][::-1].copy()}
    p2 = fit_one(cfg, tr, te2, np.arange(400))
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
    pred = fit_one(cfg, {"x2d": tr.x2d, "y": tr.y}, {"x2d": te.x2d, "y": te.y}, np.arange(len(tr)))
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
    real_splits = E.splits

    def splits(ds, input2d, prof="full"):
        tr, te = real_splits(ds, input2d, prof)
        assert set(tr.subjects) == train_subj and set(te.subjects) == test_subj
        return tr, te

    def inputs(tr, te, encoder):
        d_tr = {"x2d": tr.x2d, "y": tr.y, "g": np.zeros((len(tr), 4, 3), np.float32)}
        d_te = {"x2d": te.x2d, "y": te.y, "g": np.zeros((len(te), 4, 3), np.float32)}
        made[id(d_tr)], made[id(d_te)] = ("train", tr), ("test", te)
        return d_tr, d_te

    def fit_many(cfgs, train, test, labelled, device="cpu", progress=False):
        n = len(cfgs)
        trains = train if isinstance(train, list) else [train] * n
        tests = test if isinstance(test, list) else [test] * n
        for t, u, lab in zip(trains, tests, labelled):
            assert made[id(t)][0] == "train" and made[id(u)][0] == "test"
            assert set(made[id(t)][1].subjects) <= train_subj and set(made[id(u)][1].subjects) <= test_subj
            assert 0 <= lab.min() and lab.max() < len(t["y"])
            seen.append(len(lab))
        return regress.FitResult([np.zeros_like(u["y"]) for u in tests], [{"epochs": 1.0, "steps": 1} for _ in cfgs],
                                 [None] * n)

    monkeypatch.setattr(E, "splits", splits)
    monkeypatch.setattr(E, "_inputs", inputs)
    monkeypatch.setattr(regress, "fit_many", fit_many)
    monkeypatch.setattr(regress, "evaluate", lambda pred, y, actions: {"mpjpe": 1.0, "p_mpjpe": 1.0})
    r5 = E.fig5(h36m_pack, encoder=object(), profile=profile, progress=False)
    ks = sorted({r["k"] for r in r5["rows"]})
    assert 500 in ks and ks[-1] == r5["rows"][0]["train_rows"]            # k = 500 and all frames
    assert {r["seed"] for r in r5["rows"]} == set(EXPERIMENTS[profile]["seeds"])
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
    both = regress.fit_many(cfgs, tr, te, [lab, lab])
    info = both.info
    assert [i["group_size"] for i in info] == [1, 1]           # one optimiser per weight decay
    alone = [fit_one(c, tr, te, lab) for c in cfgs]
    for b, s in zip(both, alone):
        np.testing.assert_allclose(b, s, rtol=1e-4, atol=1e-2)
    assert np.abs(both[0] - both[1]).max() > 1e-3               # the decay is applied


# Hand-computed schedules, the split helpers on a small synthetic Dataset, encode with a
# toy encoder, and fit_many's grouping -- all fast (no H36M pack, a few tiny fits).

def test_schedule_by_hand():
    # batch = min(256, k); steps = max(min_steps, ceil(epochs * (k // batch))); epochs = steps * batch / k
    s = regress.schedule("fc", 50, "full")
    assert (s.batch, s.steps, s.epochs, s.lr, s.lr_final) == (50, 4000, 4000.0, 1e-3, 1e-4)
    s = regress.schedule("fc", 5000, "full")
    assert (s.batch, s.steps) == (256, 4000) and s.epochs == pytest.approx(204.8)
    s = regress.schedule("martinez", 293_116, "full")
    assert (s.batch, s.steps) == (256, 40 * (293_116 // 256)) and s.epochs == pytest.approx(45760 * 256 / 293_116)
    s = regress.schedule("martinez", 1000, "quick")          # 2 epochs of 3 batches < 300 min_steps
    assert (s.batch, s.steps) == (256, 300) and s.epochs == pytest.approx(76.8)
    s = regress.schedule("fc", 100_000, "quick")             # 4 epochs of 390 batches
    assert s.steps == 4 * (100_000 // 256)
    assert regress.schedule("fc", 2).batch == 2
    assert regress.schedule("fc", 5000) == regress.schedule("fc", 5000, "full")
    # the cpu profile trains smaller generators and evaluates them with the paper's regressors
    assert all(regress.schedule(kd, k, "cpu") == regress.schedule(kd, k, "full")
               for kd in ("fc", "martinez") for k in (50, 5000, 293_116))
    with pytest.raises(ValueError, match=r"profile 'slow'.*\['cpu', 'full', 'quick'\]"):
        regress.schedule("fc", 100, "slow")
    with pytest.raises(ValueError, match=r"kind 'cnn'.*\['fc', 'martinez'\]"):
        regress.schedule("cnn", 100)
    with pytest.raises(ValueError, match=r"k = 1\b.*\bat least 2\b"):
        regress.schedule("fc", 1)


def test_fit_config_overrides_by_hand():
    k = 1000
    base = regress.schedule("fc", k)                        # batch 256, 4000 steps
    s = regress.FitConfig().schedule(k)
    assert (s.batch, s.steps, s.lr, s.lr_final) == (base.batch, base.steps, base.lr, base.lr_final)
    # another batch: the same number of rows seen (steps scaled by 256 / 100)
    s = regress.FitConfig(batch=100).schedule(k)
    assert (s.batch, s.steps) == (100, round(4000 * 256 / 100)) and s.epochs == pytest.approx(10240 * 100 / k)
    s = regress.FitConfig(batch=5000).schedule(k)           # never more than k
    assert s.batch == k
    # epochs: steps = ceil(epochs * (k // batch))
    s = regress.FitConfig(epochs=2.5, batch=300).schedule(k)
    assert (s.batch, s.steps) == (300, 8) and s.epochs == pytest.approx(8 * 300 / k)
    assert regress.FitConfig(epochs=0.01, batch=300).schedule(k).steps == 1
    # fixed steps win over epochs
    assert regress.FitConfig(steps=7, epochs=3).schedule(k).steps == 7
    # lr: the final lr keeps the schedule's ratio, unless given
    s = regress.FitConfig(lr=2e-3).schedule(k)
    assert (s.lr, s.lr_final) == (2e-3, pytest.approx(2e-4))
    assert regress.FitConfig(lr=2e-3, lr_final=1e-5).schedule(k).lr_final == 1e-5
    assert regress.FitConfig(kind="martinez", profile="quick").schedule(k) == regress.schedule("martinez", k, "quick")


def test_log_ks_by_hand():
    assert regress.log_ks(5000) == [50, 108, 232, 500, 1077, 2321, 5000]     # 50 * 10^(i/3)
    assert regress.log_ks(300) == [50, 122, 300]                              # below 500: n, not 500
    assert regress.log_ks(60) == [50, 60]                                     # at least the two ends
    # int(log10(2000 / 100) * 2) + 1 = 3 points: 100, 447, 2000; and 500
    assert regress.log_ks(2000, start=100, per_decade=2) == [100, 447, 500, 2000]


def test_label_subsets_by_hand():
    subs = regress.label_subsets(30, [5, 10, 40], [0, 3])
    assert set(subs) == {(5, 0), (10, 0), (30, 0), (5, 3), (10, 3), (30, 3)}   # k clipped to n
    for (k, seed), lab in subs.items():
        assert lab.dtype.kind == "i" and np.all(np.diff(lab) > 0)          # sorted, distinct
    perm = np.random.default_rng(1003).permutation(30)                     # seed 3 -> rng 1000 + 3
    np.testing.assert_array_equal(subs[(10, 3)], np.sort(perm[:10]))
    np.testing.assert_array_equal(subs[(30, 0)], np.arange(30))


def _camera(cid, azim):
    centre = np.array([4000.0 * np.cos(azim), 4000.0 * np.sin(azim), 1500.0])
    return Camera(cid, R=look_at(centre, np.array([0.0, 0.0, 900.0])), T=centre,
                  f=np.array([1145.0, 1144.0]), c=np.array([512.0, 515.0]))


def _dataset():
    rng = np.random.default_rng(0)
    p3 = lambda n: (rng.normal(0, 250, (n, 17, 3)) + [0.0, 0.0, 900.0]).astype(np.float32)  # noqa: E731
    p2 = lambda n: rng.uniform(100, 900, (n, 16, 2)).astype(np.float32)                      # noqa: E731
    s1 = {"Walking 1": Sequence(p3(6), {"a": p2(11), "b": p2(6)}),      # 2D 5 frames longer (< 15 at 50 Hz): 6 rows
          "Eating": Sequence(None, {"a": p2(4), "b": p2(4)}),           # no 3D: no rows
          "Sitting": Sequence(p3(3), {"b": p2(3)})}                     # no detections from a (the first camera)
    s5 = {"Posing": Sequence(p3(4), {"a": p2(4), "b": p2(3)})}         # b: 2D one frame shorter: 3 rows
    cams = {"a": _camera("a", 0.3), "b": _camera("b", 2.1)}
    return Dataset("synthetic", "synthetic", {"S1": s1, "S5": s5}, {"S1": cams, "S5": cams}, fps=50.0)


def test_make_split_by_hand():
    ds = _dataset()
    sp = regress.make_split(ds, ["S1", "S5"])
    #          Walking 1: a 6, b 6 | Sitting: b 3 | Posing: a 4, b 3
    assert len(sp) == 22 and sp.x2d.shape == (22, 16, 2) and sp.y.shape == (22, 16, 3)
    assert sp.actions == ["Walking 1"] * 12 + ["Sitting"] * 3 + ["Posing"] * 7
    assert sp.cameras == ["a"] * 6 + ["b"] * 6 + ["b"] * 3 + ["a"] * 4 + ["b"] * 3
    assert sp.y.dtype == np.float32 and sp.x2d.dtype == np.float32
    assert sp.subjects == ["S1"] * 15 + ["S5"] * 7
    np.testing.assert_array_equal(sp.frames, np.r_[np.arange(6), np.arange(6), np.arange(3), np.arange(4), np.arange(3)])
    np.testing.assert_array_equal(sp.x2d[:6], ds.sequences["S1"]["Walking 1"].poses_2d["a"][:6])
    # targets: the 16 non-root joints, root-relative, in the camera frame
    X = ds.sequences["S1"]["Walking 1"].poses_3d[2].astype(np.float64)
    cam = ds.cameras["S1"]["b"]
    xc = (X - cam.T) @ cam.R.T
    np.testing.assert_allclose(sp.y[6 + 2], xc[1:] - xc[0], atol=1e-3)
    # ground-truth 2D: every camera, every frame with 3D
    gt = regress.make_split(ds, ["S1"], input2d="gt")
    assert len(gt) == 6 + 6 + 3 + 3 and gt.cameras.count("b") == 9 and gt.x2d.dtype == np.float32
    only_b = regress.make_split(ds, ["S1"], cameras=["b"])
    assert only_b.cameras == ["b"] * 9 and regress.make_split(ds, ["S1"], input2d="sh") .cameras == sp.cameras[:15]
    with pytest.raises(ValueError, match=r"no frames\b.*\['S1'\].*cameras \['z'\]"):
        regress.make_split(ds, ["S1"], cameras=["z"])
    # detections 20 frames longer than the 3D: more than 0.3 s at 50 Hz
    late = Dataset("synthetic", "synthetic", {"S1": {"W": Sequence(ds.sequences["S1"]["Sitting"].poses_3d,
                                                                    {"b": np.zeros((23, 16, 2), np.float32)})}},
                   {"S1": ds.cameras["S1"]}, fps=50.0)
    with pytest.raises(ValueError, match=r"synthetic\[S1/W/b\].*\b23 frames\b.*synthetic\[S1/W\].*\b3\b"):
        regress.make_split(late, ["S1"])
    with pytest.raises(ValueError, match=r"no frames\b.*\['S1'\]"):
        regress.make_split(Dataset("x", "x", {"S1": {"E": ds.sequences["S1"]["Eating"]}}, {"S1": ds.cameras["S1"]}),
                           ["S1"])


def test_split_take_and_subsample():
    ds = _dataset()
    sp = regress.make_split(ds, ["S1", "S5"])
    t = sp.take([21, 0, 7])
    np.testing.assert_array_equal(t.x2d, sp.x2d[[21, 0, 7]])
    np.testing.assert_array_equal(t.y, sp.y[[21, 0, 7]])
    assert t.actions == ["Posing", "Walking 1", "Walking 1"] and t.cameras == ["b", "a", "b"]
    assert t.subjects == ["S5", "S1", "S1"] and t.frames.tolist() == [2, 0, 1] and t.note == sp.note
    assert sp.take([1], note="one").note == "one"
    no_frames = regress.Split(sp.x2d, sp.y, sp.actions, sp.cameras, sp.subjects)
    assert no_frames.take([1, 2]).frames is None
    assert regress.subsample(sp, None) is sp and regress.subsample(sp, 22) is sp and regress.subsample(sp, 99) is sp
    sub = regress.subsample(sp, 5)                  # rows 0, 5.25, 10.5, 15.75, 21 rounded (half to even)
    assert sub.frames.tolist() == sp.frames[[0, 5, 10, 16, 21]].tolist()
    np.testing.assert_array_equal(sub.y, sp.y[[0, 5, 10, 16, 21]])
    assert sub.note == "every 4.40-th row: 5 of 22 rows"


class _Toy(torch.nn.Module):
    """G = per-channel sums of the maps, as (N, 5, 3); records its calls."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def forward(self, maps):
        self.batches.append((len(maps), maps.dtype, self.training))
        return maps.sum((2, 3)).view(len(maps), 5, 3)


def test_encode_renders_then_encodes_in_batches(monkeypatch):
    monkeypatch.setenv(precision.ENV, "float32")    # exact sums below; bf16 maps: the test after this one
    x = np.random.default_rng(0).uniform(100, 900, (10, 16, 2)).astype(np.float32)
    enc = _Toy().train()
    g = regress.encode(enc, x, batch=4)
    assert [b[0] for b in enc.batches] == [4, 4, 2] and not any(b[2] for b in enc.batches)   # eval mode
    assert all(b[1] == torch.float32 for b in enc.batches)
    assert isinstance(g, np.ndarray) and g.dtype == np.float32 and g.shape == (10, 5, 3)
    np.testing.assert_array_equal(g, render(x).sum((2, 3)).view(10, 5, 3).numpy())
    enc2 = _Toy()
    np.testing.assert_array_equal(regress.encode(enc2, x), g)      # default CPU batch: one batch of 10
    assert [b[0] for b in enc2.batches] == [10]


def test_encode_gives_bf16_channels_last_maps_where_bf16_runs(monkeypatch):
    monkeypatch.setenv(precision.ENV, "bfloat16")
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, maps):
            seen.append((maps.dtype, maps.is_contiguous(memory_format=torch.channels_last), torch.is_autocast_enabled("cpu")))
            return maps.float().sum((2, 3)).view(len(maps), 5, 3)

    x = np.random.default_rng(0).uniform(100, 900, (3, 16, 2)).astype(np.float32)
    g = regress.encode(Probe(), x)
    assert seen == [(torch.bfloat16, True, True)] and g.dtype == np.float32
    np.testing.assert_array_equal(g, render(x).sum((2, 3)).view(3, 5, 3).numpy())   # 0/1 maps are exact in bf16


def _synthetic(n=200, nt=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + nt, 16, 2)).astype(np.float32) * 100 + 500
    y = (np.tanh((x.reshape(-1, 32) - 500) / 100) @ rng.normal(size=(32, 48)) * 50).reshape(-1, 16, 3).astype(np.float32)
    return {"x2d": x[:n], "y": y[:n]}, {"x2d": x[n:], "y": y[n:]}


def test_fit_many_groups_and_checks():
    tr, te = _synthetic()
    labs = [np.arange(100), np.arange(100, 200), np.arange(60)]
    cfgs = [regress.FitConfig(steps=3, batch=20, hidden=16, seed=s) for s in (0, 1, 2)]
    preds = regress.fit_many(cfgs, tr, te, labs)
    info = preds.info
    assert [p.shape for p in preds] == [(40, 16, 3)] * 3
    assert [i["group_size"] for i in info] == [2, 2, 1]                 # k = 60 trains apart
    assert [i["steps"] for i in info] == [3, 3, 3] and [i["batch"] for i in info] == [20, 20, 20]
    assert all(0 <= i["group_wall_s"] < 60 for i in info) and info[0]["lr"] == 1e-3 and info[0]["lr_final"] == 1e-4
    assert set(info[0]) == {"epochs", "steps", "batch", "lr", "lr_final", "group_size", "group_wall_s", "dtype"}
    assert info[0]["dtype"] == "float32"                                # regress.BF16_KINDS is empty
    # fits whose inputs differ in width train apart, each on its own training dict
    tr4 = {**tr, "g": np.zeros((200, 4, 3), np.float32)}
    tr8 = {**tr, "g": np.zeros((200, 8, 3), np.float32)}
    te4, te8 = {**te, "g": np.zeros((40, 4, 3), np.float32)}, {**te, "g": np.zeros((40, 8, 3), np.float32)}
    info2 = regress.fit_many([regress.FitConfig(use_g=True, steps=2, batch=20, hidden=8)] * 2, [tr4, tr8], [te4, te8],
                             [np.arange(60)] * 2).info
    assert [i["group_size"] for i in info2] == [1, 1]
    assert info[2]["epochs"] == pytest.approx(3 * 20 / 60)
    with pytest.raises(ValueError, match="3 configs but 3 train, 3 test, 2 labelled sets"):
        regress.fit_many(cfgs, tr, te, labs[:2])
    with pytest.raises(ValueError, match="^a fit needs 2D joints, G, or both as input$"):
        regress.fit_many([regress.FitConfig(use_2d=False, steps=1)], tr, te, [np.arange(10)])
    # test sets of one group may differ in size (SH and GT rows): each fit predicts its own,
    # as it would alone
    te2 = {k: v[:30] for k, v in te.items()}
    both = regress.fit_many(cfgs[:2], [tr, tr], [te, te2], labs[:2])
    assert [len(p) for p in both] == [40, 30]
    alone = [regress.fit_many([c], tr, t, [lab])[0] for c, t, lab in zip(cfgs[:2], (te, te2), labs[:2])]
    for b_, a_ in zip(both, alone):
        np.testing.assert_allclose(b_, a_, rtol=1e-4, atol=1e-3)


def test_stack_sources_by_identity():
    a = {"y": np.zeros((3, 16, 3), np.float32)}
    b = {"y": np.ones((2, 16, 3), np.float32)}
    c = {"y": np.full((4, 16, 3), 2.0, np.float32)}
    stacked, offs = regress._stack_sources([a, b, a, c, b], "y")
    assert stacked.shape == (9, 48) and offs == [0, 3, 0, 5, 3]
    assert not stacked[:3].any() and (stacked[3:5] == 1).all() and (stacked[5:] == 2).all()


def test_fit_many_progress_line(capsys):
    tr, te = _synthetic(n=60, nt=5)
    tr["g"], te["g"] = np.ones((60, 2, 3), np.float32), np.ones((5, 2, 3), np.float32)
    regress.fit_many([regress.FitConfig(use_g=True, steps=2, batch=20, hidden=8)], tr, te, [np.arange(40)], progress=True)
    out = capsys.readouterr().out
    assert out.startswith("  fits [0]: fc on x2d+g, k=40: 2 steps, 1.0 epochs, batch 20, ") and out.rstrip().endswith(" s")
    regress.fit_many([regress.FitConfig(steps=2, batch=20, hidden=8)], tr, te, [np.arange(40)])
    assert capsys.readouterr().out == ""                  # quiet by default


def _linear(n=600, nt=200, seed=0):
    """Targets linear in the 2D input: a small FC net learns them in a few hundred steps."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + nt, 16, 2)).astype(np.float32) * 100 + 500
    A = rng.normal(size=(32, 48)) / 32
    y = ((x.reshape(-1, 32) - 500) @ A * 20 + 300).reshape(-1, 16, 3).astype(np.float32)
    return {"x2d": x[:n], "y": y[:n]}, {"x2d": x[n:], "y": y[n:]}


def test_fit_learns_from_its_labelled_rows_only():
    tr, te = _linear(n=601)
    lab = np.arange(0, 601, 2)                   # even rows labelled; odd rows carry wrong targets
    bad = {"x2d": tr["x2d"], "y": tr["y"].copy()}
    bad["y"][1::2] += 3000.0
    cfg = regress.FitConfig(steps=300, batch=50, hidden=64, lr=1e-2, dropout=0.0)
    fits = regress.fit_many([cfg], bad, te, [lab])
    pred, fitted = fits[0], fits.fitted
    err = np.linalg.norm(pred - te["y"], axis=-1).mean()
    spread = np.linalg.norm(te["y"] - te["y"].mean(0), axis=-1).mean()
    # learnt (~0.35 of the spread): not the wrong rows (~3000 mm off), nor the mean pose (1.0)
    assert err < 0.6 * spread, (err, spread)
    f = fitted[0]
    # normalisation: inputs over all training rows, targets over the labelled rows only
    x = bad["x2d"].reshape(601, -1)
    np.testing.assert_allclose(f.x_stats["x2d"][0], x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(f.x_stats["x2d"][1], x.std(0) + 1e-6, rtol=1e-4)
    yl = bad["y"][lab].reshape(len(lab), -1)
    np.testing.assert_allclose(f.y_stats[0], yl.mean(0), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(f.y_stats[1], yl.std(0) + 1e-6, rtol=1e-4)
    assert set(f.x_stats) == {"x2d"} and f.config is cfg
    assert f.y_stats[0].dtype == f.y_stats[1].dtype == np.float32
    assert f.regressor.cfg.hidden == 64 and f.regressor.cfg.dropout == 0.0 and f.regressor.cfg.kind == "fc"
    np.testing.assert_allclose(f.predict(x2d=te["x2d"]), pred, rtol=1e-5, atol=1e-2)


def test_batched_fits_predict_their_own_test_sets_in_chunks():
    tr, te = _linear(n=200, nt=16500)                                  # > one 16384-row chunk
    te2 = {k: v[::-1].copy() for k, v in te.items()}
    tr2 = {"x2d": tr["x2d"][::-1].copy(), "y": 2 * tr["y"][::-1]}    # each fit its own training dict too
    cfgs = [regress.FitConfig(steps=5, batch=50, hidden=16, seed=s) for s in (0, 1)]
    labs = [np.arange(100), np.arange(100, 200)]
    batched = regress.fit_many(cfgs, [tr, tr2], [te, te2], labs)
    single = [fit_one(c, t_, t, lab) for c, t_, t, lab in zip(cfgs, [tr, tr2], [te, te2], labs)]
    for b, s_ in zip(batched, single):
        assert b.shape == (16500, 16, 3)
        np.testing.assert_allclose(b, s_, rtol=1e-4, atol=1e-2)
    # the tail beyond the first chunk is predicted like the head: a fit predicts row by row
    head = fit_one(cfgs[0], tr, {k: v[16000:] for k, v in te.items()}, np.arange(100))
    np.testing.assert_allclose(batched[0][16000:], head, rtol=1e-4, atol=1e-2)


def test_lr_and_its_decay_reach_the_optimiser():
    tr, te = _linear(n=100, nt=20)
    lab = np.arange(100)
    one = lambda **kw: fit_one(regress.FitConfig(batch=50, hidden=16, dropout=0.0, **kw), tr, te, lab)  # noqa: E731
    p_big, p_small = one(steps=1, lr=0.5), one(steps=1, lr=1e-3)
    assert np.abs(p_big - p_small).max() > 1.0                  # the first step uses the lr asked for
    # decay to ~0 after the first step: two steps are one step
    np.testing.assert_allclose(one(steps=2, lr=0.5, lr_final=1e-14), p_big, atol=1e-2)


def test_g_only_and_martinez_fits():
    tr, te = _linear(n=120, nt=10)
    rng = np.random.default_rng(1)
    tr["g"], te["g"] = rng.normal(size=(120, 4, 3)).astype(np.float32), rng.normal(size=(10, 4, 3)).astype(np.float32)
    cfg = regress.FitConfig(use_2d=False, use_g=True, steps=3, batch=40, hidden=8)
    fits = regress.fit_many([cfg], tr, te, [np.arange(120)])
    p, fitted = fits[0], fits.fitted
    assert set(fitted[0].x_stats) == {"g"} and fitted[0].regressor.cfg.in_2d == 0
    te_shuffled = {**te, "x2d": te["x2d"][::-1].copy()}
    np.testing.assert_array_equal(fit_one(cfg, tr, te_shuffled, np.arange(120)), p)   # 2D unused
    fitted = regress.fit_many([regress.FitConfig("martinez", True, True, steps=2, batch=40, hidden=8)], tr, te,
                              [np.arange(120)]).fitted
    assert fitted[0].regressor.cfg.kind == "martinez"


def test_evaluate_keys_and_protocol2():
    y = np.random.default_rng(0).normal(0, 200, (4, 16, 3)).astype(np.float32)
    ev = regress.evaluate(2.0 * y, y, ["A", "A", "B", "B"])
    assert set(ev) == {"mpjpe", "p_mpjpe", "mpjpe_per_action", "p_mpjpe_per_action"}
    assert ev["p_mpjpe"] == pytest.approx(0.0, abs=1e-3) and ev["mpjpe"] > 50     # a scale is undone by Procrustes
    assert set(ev["p_mpjpe_per_action"]) == {"A", "B"}


def test_protocol3_cameras():
    cams = {c: _camera(c, i) for i, c in enumerate("wxyz")}
    subs = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
    ds = Dataset("synthetic", "synthetic", {s: {} for s in subs}, {s: dict(cams) for s in subs})
    assert regress.protocol3_cameras(ds) == (("w", "x", "y"), "z")
    ds.cameras["S9"] = {c: cams[c] for c in "wxzy"}
    with pytest.raises(ValueError, match=r"synthetic\b.*\bS9\b.*\['w', 'x', 'z', 'y'\].*\bS1\b.*\['w', 'x', 'y', 'z'\]"):
        regress.protocol3_cameras(ds)
    ds.cameras["S9"] = dict(cams)
    ds.cameras["S1"] = {c: cams[c] for c in "wxzy"}         # the first training subject is the reference
    with pytest.raises(ValueError, match=r"synthetic\b.*\bS5\b.*\['w', 'x', 'y', 'z'\].*\bS1\b.*\['w', 'x', 'z', 'y'\]"):
        regress.protocol3_cameras(ds)
    three = Dataset("synthetic", "synthetic", {s: {} for s in subs}, {s: {c: cams[c] for c in "wxy"} for s in subs})
    with pytest.raises(ValueError, match=r"synthetic\b.*\b3 cameras \['w', 'x', 'y'\].*Protocol #3.*\bfour\b"):
        regress.protocol3_cameras(three)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fits_on_cuda_match_the_cpu():
    tr, te = _linear(n=200, nt=50)
    cfgs = [regress.FitConfig(steps=20, batch=50, hidden=32, seed=s, dropout=0.0) for s in (0, 1)]
    labs = [np.arange(100), np.arange(100, 200)]
    cpu = regress.fit_many(cfgs, tr, te, labs)
    gpu = regress.fit_many(cfgs, tr, te, labs, device="cuda")
    assert fit_one(cfgs[0], tr, te, labs[0], device="cuda").shape == (50, 16, 3)
    for c, g in zip(cpu, gpu):                  # TF32 matmuls on CUDA: close, not equal
        np.testing.assert_allclose(g, c, rtol=0.05, atol=5.0)


def test_training_steps_follow_the_schedule(monkeypatch):
    """Every step: a batch of ``batch`` labelled rows per fit, at lr * gamma^t with
    gamma^steps = lr_final / lr (spies on Adam and the model)."""
    from geo.models import BatchedRegressor

    lrs, shapes = [], []

    class SpyAdam(torch.optim.Adam):
        def step(self, *a, **k):
            lrs.append(self.param_groups[0]["lr"])
            return super().step(*a, **k)

    forward = BatchedRegressor.forward

    def spy_forward(self, x2d=None, g=None, noise=None):
        if self.training:
            shapes.append(tuple(x2d.shape))
        return forward(self, x2d, g, noise)

    monkeypatch.setattr(torch.optim, "Adam", SpyAdam)
    monkeypatch.setattr(BatchedRegressor, "forward", spy_forward)
    tr, te = _linear(n=100, nt=5)
    cfg = regress.FitConfig(steps=4, batch=30, lr=1e-2, lr_final=1e-4, hidden=8)
    regress.fit_many([cfg, cfg], tr, te, [np.arange(100)] * 2)
    g = (1e-4 / 1e-2) ** (1 / 4)
    np.testing.assert_allclose(lrs, [1e-2 * g ** t for t in range(4)], rtol=1e-9)
    assert shapes == [(2, 30, 32)] * 4
    # one full batch per epoch (k = batch): every step sees all k rows, finite results
    shapes.clear()
    p = fit_one(regress.FitConfig(steps=3, batch=50, hidden=8), tr, te, np.arange(50))
    assert shapes == [(1, 50, 32)] * 3 and np.isfinite(p).all()


def test_fig6_with_k_trains_each_seed_on_figure5s_subset(monkeypatch):
    """``k``: each seed's labelled rows are the rows Figure 5 draws at that k and seed
    (label_subsets), only the rows some seed labels are encoded, and each rung says k."""
    from geo.data import load

    ds = load("embedded")
    k, calls = 40, {}
    full_tr, _ = E.splits(ds, "sh", "quick")

    def inputs(tr, te, encoder):
        calls.setdefault("encoded_rows", set()).add(len(tr))
        return {"x2d": tr.x2d, "y": tr.y, "g": tr.x2d[:, :4, :1].repeat(3, 2)}, {"x2d": te.x2d, "y": te.y,
                                                                                 "g": te.x2d[:, :4, :1].repeat(3, 2)}

    def fit_many(cfgs, train, test, labelled, device="cpu", progress=False):
        trains = train if isinstance(train, list) else [train] * len(cfgs)
        for c, t, lab in zip(cfgs, trains, labelled):
            want = regress.label_subsets(len(full_tr), [k], [c.seed])[(k, c.seed)]
            np.testing.assert_array_equal(t["y"][lab], full_tr.y[want])      # the same labelled rows
        tests = test if isinstance(test, list) else [test] * len(cfgs)
        return regress.FitResult([np.zeros_like(u["y"]) for u in tests], [{"epochs": 1.0, "steps": 1} for _ in cfgs],
                                 [None] * len(cfgs))

    monkeypatch.setattr(E, "_inputs", inputs)
    monkeypatch.setattr(regress, "fit_many", fit_many)
    r6 = E.fig6(ds, {"DG+AUG": object()}, profile="quick", progress=False, k=k)
    seeds = EXPERIMENTS["quick"]["fig6_seeds"]
    assert calls["encoded_rows"] <= set(range(k, k * len(seeds) + 1))          # the labelled rows only
    assert r6["Regression#1"]["BL+DG+AUG"]["labelled_rows"] == k == r6["Regression#2"]["BL"]["labelled_rows"]
    assert r6["Regression#1"]["BL"]["train_rows"] == len(full_tr) and str(k) in r6["Regression#1"]["BL"]["train_frames"]
    with pytest.raises(ValueError, match="k = 1"):
        E.fig6(ds, {"DG+AUG": object()}, profile="quick", progress=False, k=1)


def test_bf16_is_chosen_per_kind_and_said(monkeypatch):
    """A fit trains under bf16 where asked (``bf16=True``) and the device has bf16 units,
    or, by default, where its kind is in BF16_KINDS on a CPU; fit info names the dtype."""
    tr, te = synthetic(n=60, nt=5)
    cfg = regress.FitConfig(steps=2, batch=20, hidden=8)
    has = precision.bf16(torch.device("cpu"))
    dtype = lambda **kw: regress.fit_many([cfg], tr, te, [np.arange(40)], **kw).info[0]["dtype"]  # noqa: E731
    assert dtype() == "float32" and dtype(bf16=False) == "float32"          # BF16_KINDS is empty
    assert dtype(bf16=True) == ("bf16" if has else "float32")
    monkeypatch.setattr(regress, "BF16_KINDS", ("fc",))
    assert regress.use_bf16("fc", "cpu") is has and not regress.use_bf16("martinez", "cpu")
    assert not regress.use_bf16("fc", torch.device("meta"))                 # a CPU rule: not another device
    assert dtype() == ("bf16" if has else "float32") and dtype(bf16=False) == "float32"
    monkeypatch.setattr(regress.precision, "bf16", lambda dev: False)       # a CPU without bf16 units
    assert dtype(bf16=True) == "float32" and not regress.use_bf16("fc", "cpu")


def test_a_long_fit_shows_a_bar_when_asked(capsys, monkeypatch):
    """A fit of BAR_FROM_STEPS steps or more shows a step bar with its total when
    ``progress`` is on, and nothing otherwise; shorter fits print their summary line only."""
    monkeypatch.setattr(regress, "BAR_FROM_STEPS", 30)    # the rule, at a size a test affords
    tr, te = synthetic(n=40, nt=5)
    cfg = regress.FitConfig(steps=30, batch=20, hidden=4)
    regress.fit_many([cfg], tr, te, [np.arange(20)])
    assert capsys.readouterr().err == ""
    regress.fit_many([cfg], tr, te, [np.arange(20)], progress=True)
    err = capsys.readouterr().err
    assert "fit fc x1 k=20" in err and "30/30" in err and ("step/s" in err or "s/step" in err), err
    regress.fit_many([regress.FitConfig(steps=29, batch=20, hidden=4)], tr, te, [np.arange(20)], progress=True)
    assert "fit fc" not in capsys.readouterr().err


def test_fig6_rungs_alone_equal_the_whole_ladder(monkeypatch):
    """A rung computed alone (``rungs``, e.g. one generator trained further) gives the numbers
    it has in the whole ladder, and only the rungs asked for are fitted and returned."""
    from geo.data import load

    ds = load("embedded")

    def inputs(tr, te, encoder):   # a stand-in G per encoder: each variant's G is other joints
        j = 0 if encoder is None else encoder
        return ({"x2d": tr.x2d, "y": tr.y, "g": tr.x2d[:, j:j + 4, :1].repeat(3, 2)},
                {"x2d": te.x2d, "y": te.y, "g": te.x2d[:, j:j + 4, :1].repeat(3, 2)})

    monkeypatch.setattr(E, "_inputs", inputs)
    encoders = {"AE": 2, "SG": 6, "DG+AUG": 10}
    whole = E.fig6(ds, encoders, profile="quick", progress=False, k=60)
    alone = E.fig6(ds, encoders, profile="quick", progress=False, k=60, rungs=["BL+SG"])
    for reg in ("Regression#1", "Regression#2"):
        assert list(alone[reg]) == ["BL+SG"]
        assert alone[reg]["BL+SG"]["mpjpe_mean"] == pytest.approx(whole[reg]["BL+SG"]["mpjpe_mean"], rel=1e-4)
        assert alone[reg]["BL+SG"]["mpjpe_mean"] != pytest.approx(whole[reg]["BL+DG+AUG"]["mpjpe_mean"], rel=1e-4)
    for bad in (["BL+XY"], [], ["BL+SG", "SG"]):
        with pytest.raises(ValueError, match="rungs"):
            E.fig6(ds, encoders, profile="quick", progress=False, k=60, rungs=bad)

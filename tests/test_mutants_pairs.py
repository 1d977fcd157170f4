"""geo.pairs: cases that the mutants left alive by tests/test_pairs.py get wrong
(benchmarks/mutation.py; each survivor is listed in benchmarks/results/mutation_survivors.md).

A small synthetic Dataset (made here, no files) with the awkward cases the real pack
does not have: detections a few frames longer than the 3D, a sequence missing a camera
in the middle of the list, a sequence without 3D, a recording at 50 Hz."""
import numpy as np
import pytest
import torch

from geo.cameras import Camera, Torus, look_at
from geo.data import Dataset, DataError, Sequence
from geo.pairs import PairSource, collect_frames
from geo.skeleton import SH16_TO_H36M17

FPS = 50.0          # max lag: 0.3 s = 15 frames


def _camera(cid, azim):
    centre = np.array([4000.0 * np.cos(azim), 4000.0 * np.sin(azim), 1500.0])
    R = look_at(centre, np.array([0.0, 0.0, 900.0]))
    return Camera(cid, R=R, T=centre, f=np.array([1145.0, 1144.0]), c=np.array([512.0, 515.0]))


def _dataset(seed=0, third_camera=False):
    rng = np.random.default_rng(seed)
    p3 = lambda n: (rng.normal(0, 250, (n, 17, 3)) + [0.0, 0.0, 900.0]).astype(np.float32)  # noqa: E731
    p2 = lambda n: rng.uniform(100, 900, (n, 16, 2)).astype(np.float32)                      # noqa: E731
    seqs = {
        # 2D longer than 3D by 5 and 1 frames (< 15 at 50 Hz): the 10 frames with 3D
        "Walking 1": Sequence(p3(10), {"b": p2(15), "a": p2(11)}),
        # camera b missing: skipped, and the sequences after it still count
        "Phoning": Sequence(p3(8), {"a": p2(8)}),
        # no 3D: skipped unless need_3d=False (then 5 frames, 3D zeros)
        "Eating": Sequence(None, {"a": p2(5), "b": p2(6)}),
        "Sitting": Sequence(p3(7), {"a": p2(9), "b": p2(7)}),
    }
    cams = {"a": _camera("a", 0.2), "b": _camera("b", 2.0)}
    if third_camera:
        cams["c"] = _camera("c", 4.0)
        for seq in seqs.values():
            seq.poses_2d["c"] = p2(max(len(v) for v in seq.poses_2d.values()))
    return Dataset("synthetic", "synthetic", {"S1": seqs}, {"S1": cams}, fps=FPS)


def test_collect_frames_by_hand():
    ds = _dataset()
    seqs, cams = ds.sequences["S1"], ds.cameras["S1"]
    p3, p2, R, T, keys = collect_frames(ds, ["S1"])
    assert keys == [("S1", "Walking 1")] * 10 + [("S1", "Sitting")] * 7
    assert p3.shape == (17, 17, 3) and p2.shape == (17, 2, 16, 2) and R.shape == (17, 2, 3, 3) and T.shape == (17, 2, 3)
    assert p3.dtype == p2.dtype == R.dtype == T.dtype == np.float32
    np.testing.assert_array_equal(p3, np.concatenate([seqs["Walking 1"].poses_3d, seqs["Sitting"].poses_3d]))
    for k, c in enumerate(("a", "b")):                 # cameras in sorted order
        np.testing.assert_array_equal(p2[:, k], np.concatenate([seqs["Walking 1"].poses_2d[c][:10],
                                                                seqs["Sitting"].poses_2d[c][:7]]))
        np.testing.assert_allclose(R[:, k], np.broadcast_to(cams[c].R, (17, 3, 3)), rtol=1e-6)
        np.testing.assert_allclose(T[:, k], np.broadcast_to(cams[c].T, (17, 3)), rtol=1e-6)


def test_collect_frames_without_3d():
    ds = _dataset()
    p3, p2, R, T, keys = collect_frames(ds, ["S1"], need_3d=False)
    assert keys == [("S1", "Walking 1")] * 10 + [("S1", "Eating")] * 5 + [("S1", "Sitting")] * 7
    assert p3.shape == (22, 17, 3) and p3.dtype == np.float32
    assert not p3[10:15].any() and p3[:10].any()       # zeros for the frames without 3D
    np.testing.assert_array_equal(p2[10:15, 1], ds.sequences["S1"]["Eating"].poses_2d["b"][:5])


def test_collect_frames_errors_name_what_is_wrong():
    ds = _dataset()
    with pytest.raises(DataError, match=r"synthetic: unknown subject 'S2'; expected one of \['S1'\]"):
        collect_frames(ds, ["S2"])
    only_2d = Dataset("synthetic", "synthetic", {"S1": {"Eating": ds.sequences["S1"]["Eating"]}}, ds.cameras)
    with pytest.raises(DataError, match=r"^synthetic: no frames with 3D and all cameras' 2D for subjects \['S1'\]$"):
        collect_frames(only_2d, ["S1"])
    # detections 20 frames longer than the 3D: more than 0.3 s at 50 Hz
    ds.sequences["S1"]["Sitting"] = Sequence(ds.sequences["S1"]["Sitting"].poses_3d,
                                             {"a": np.zeros((27, 16, 2), np.float32), "b": np.zeros((7, 16, 2), np.float32)})
    with pytest.raises(DataError, match=r"synthetic\[S1/Sitting/a\] 2D detections has 27 frames but "
                                        r"synthetic\[S1/Sitting\] 3D poses has 7.*15 frames \(0.3 s at 50 Hz\)"):
        collect_frames(ds, ["S1"])


def _torus_through_the_root():
    """No jitter, no shift, no roll: every virtual optical axis passes through the root."""
    return Torus(target_height=0.0, target_jitter=0.0, roll_std=0.0)


def test_virtual_views_look_at_the_root_and_use_the_source_generator():
    ds = _dataset()
    src = PairSource(ds, ["S1"], torus=_torus_through_the_root(), seed=3)
    b = src.sample(32, aug=1.0)
    assert b.virtual.all()
    pelvis = SH16_TO_H36M17.index(0)
    c = torch.tensor(src.torus.c)
    # the root (H36M joint 0 = SH16 "Hip") projects to the principal point in both views
    assert (b.x_i[:, pelvis] - c).abs().max() < 1e-2 and (b.x_j[:, pelvis] - c).abs().max() < 1e-2
    # other joints do not
    assert (b.x_i[:, SH16_TO_H36M17.index(1)] - c).abs().max() > 5
    # the draws come from the source's own generator: two sources with one seed agree,
    # whatever the global RNG does in between
    ds3 = _dataset(third_camera=True)          # three cameras: view j is a draw too
    torch.manual_seed(1)
    b1 = PairSource(ds3, ["S1"], seed=9).sample(32, aug=0.5)
    torch.manual_seed(2)
    b2 = PairSource(ds3, ["S1"], seed=9).sample(32, aug=0.5)
    assert len(set((b1.cj - b1.ci).remainder(3).tolist())) == 2
    for f in ("x_i", "x_j", "R_ij", "idx", "ci", "cj", "virtual"):
        assert torch.equal(getattr(b1, f), getattr(b2, f)), f


def test_fingerprint_identifies_the_data_subjects_and_torus():
    ds = _dataset()
    fp = PairSource(ds, ["S1"]).fingerprint
    assert isinstance(fp, str) and len(fp) == 32 and int(fp, 16) >= 0     # 128-bit hex digest
    # not the sampler's state: seed and an explicit default torus change nothing
    assert PairSource(ds, ["S1"], seed=5).fingerprint == fp
    assert PairSource(ds, ["S1"], torus=Torus()).fingerprint == fp
    assert PairSource(ds, ["S1"], torus=Torus(dist_min=2000.0)).fingerprint != fp
    # every array it is drawn from counts: 3D poses, detections, camera rotations
    for change in ("p3", "p2", "R"):
        d = _dataset()
        seq = d.sequences["S1"]["Sitting"]
        if change == "p3":
            seq.poses_3d[3, 4, 1] += 1.0
        elif change == "p2":
            seq.poses_2d["b"][2, 5, 0] += 1.0
        else:
            d.cameras["S1"]["a"].R = look_at(d.cameras["S1"]["a"].T, np.array([0.0, 10.0, 900.0]))
        assert PairSource(d, ["S1"]).fingerprint != fp, change
    # the subjects as given
    two = Dataset("synthetic", "synthetic", {"S1": ds.sequences["S1"], "S5": ds.sequences["S1"]},
                  {"S1": ds.cameras["S1"], "S5": ds.cameras["S1"]}, fps=FPS)
    assert PairSource(two, ["S1"]).fingerprint == fp
    assert PairSource(two, ["S1", "S5"]).fingerprint != PairSource(two, ["S5", "S1"]).fingerprint


def test_default_seed_and_every_frame_drawn():
    ds = _dataset()
    assert PairSource(ds, ["S1"]).render_compile is False       # train() turns it on, on CUDA only
    a, b = PairSource(ds, ["S1"]).sample(256, aug=0.5), PairSource(ds, ["S1"], seed=0).sample(256, aug=0.5)
    assert torch.equal(a.x_i, b.x_i) and torch.equal(a.R_ij, b.R_ij)
    assert set(a.idx.tolist()) == set(range(17))           # frames of both usable sequences
    assert set(a.ci.tolist()) == set(a.cj.tolist()) == {0, 1}
    assert a.maps_i.device.type == a.R_ij.device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_source_lives_on_the_device():
    src = PairSource(_dataset(), ["S1"], device="cuda")
    assert src.p3.is_cuda and src.p2.is_cuda and src.R.is_cuda and src.device.type == "cuda"
    b = src.sample(8, aug=0.5)
    assert b.maps_i.is_cuda and b.R_ij.is_cuda and b.x_j.is_cuda


def test_sample_defaults_and_types(monkeypatch):
    ds = _dataset()
    src = PairSource(ds, ["S1"], seed=2)
    b = src.sample(64)                                     # default: real pairs only
    assert b.virtual.dtype == torch.bool and not b.virtual.any()
    assert (b.ci != b.cj).all()
    assert b.maps_i.dtype == torch.float32 and b.maps_i.shape == (64, 15, 64, 64)
    # the source's render_compile setting reaches the renderer
    import geo.pairs as P
    seen = []
    real = P.render

    def spy(x, **kw):
        seen.append(kw)
        return real(x, **{**kw, "compile": False})

    monkeypatch.setattr(P, "render", spy)
    src.render_compile = True
    src.sample(4, dtype=torch.bfloat16)
    assert seen == [{"width": P.LINE_WIDTH, "dtype": torch.bfloat16, "compile": True}]   # the default line width
    src.sample(4, width=6.0)
    assert seen[-1]["width"] == 6.0

"""Training pairs where training uses them (Sec. 3.1): R_ij maps view i's camera-frame,
root-relative 3D pose to view j's, for real Human3.6M cameras and virtual torus cameras;
the second generator gets R_ij^T (j -> i); x_i / x_j are the 2D poses of those views.

Everything is checked against the dataset itself (cameras.h5 rotations, the 3D poses, the
stacked-hourglass detections), not against the sampler's own copies."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from geo.cameras import Camera, Torus, look_at
from geo.data import Dataset, DataError, Sequence
from geo.pairs import PairSource, collect_frames
from geo.skeleton import SH16_TO_H36M17

SUBJECTS = ["S9", "S11"]
B = 64


@pytest.fixture(scope="module")
def ds(h36m_pack):
    return h36m_pack.subset(SUBJECTS)


@pytest.fixture(scope="module")
def frames(ds):
    """Frame index of PairSource -> (subject, action, frame within the sequence)."""
    *_, keys = collect_frames(ds, SUBJECTS)
    first = {}
    for n, k in enumerate(keys):
        first.setdefault(k, n)
    return [(s, a, n - first[(s, a)]) for n, (s, a) in enumerate(keys)]


def _root_relative_in(cam, X):
    """World pose (17, 3) -> root-relative pose in ``cam``'s frame, float64."""
    xc = cam.world_to_camera(np.asarray(X, np.float64))
    return xc - xc[0]


def _real_views(ds, frames, b, k):
    """Sample k of batch ``b`` straight from the dataset: the 3D pose (world), the two
    cameras, the two detections."""
    s, a, f = frames[int(b.idx[k])]
    cids = sorted(ds.cameras[s])
    ci, cj = cids[int(b.ci[k])], cids[int(b.cj[k])]
    seq = ds.sequences[s][a]
    return (seq.poses_3d[f], ds.cameras[s][ci], ds.cameras[s][cj],
            seq.poses_2d[ci][f], seq.poses_2d[cj][f])


def test_real_cameras_rotation_maps_view_i_to_view_j(ds, frames):
    src = PairSource(ds, SUBJECTS, seed=3)
    b = src.sample(B, aug=0.0)
    assert not b.virtual.any() and (b.ci != b.cj).all()
    assert len(set(b.ci.tolist())) > 1 and len(set(b.cj.tolist())) > 1
    R = b.R_ij.double().numpy()
    worst_ij = worst_ji = 0.0
    for k in range(B):
        X, cam_i, cam_j, d_i, d_j = _real_views(ds, frames, b, k)
        np.testing.assert_allclose(src.p3[b.idx[k]].numpy(), X, atol=1e-3)
        P_i, P_j = _root_relative_in(cam_i, X), _root_relative_in(cam_j, X)
        worst_ij = max(worst_ij, np.abs(P_i @ R[k].T - P_j).max())      # R_ij p_i = p_j
        worst_ji = max(worst_ji, np.abs(P_j @ R[k] - P_i).max())        # R_ij^T p_j = p_i
        # x_i, x_j: the detections of those very cameras for that frame
        np.testing.assert_array_equal(b.x_i[k].numpy(), np.asarray(d_i, np.float32))
        np.testing.assert_array_equal(b.x_j[k].numpy(), np.asarray(d_j, np.float32))
    # poses span ~1 m; float32 rotations: well under a millimetre
    assert worst_ij < 0.1 and worst_ji < 0.1, (worst_ij, worst_ji)
    # and the maps are those of x_i, x_j
    from geo.render import render
    assert torch.equal(b.maps_i, render(b.x_i)) and torch.equal(b.maps_j, render(b.x_j))


def _fit_translation(x, P, f, c):
    """Given pixels x (16, 2) and a root-relative camera-frame pose P (16, 3), the
    camera-frame root position t that best explains x = pinhole(P + t); returns the
    reprojection error (px) of that fit. Zero when x is the projection of P in a
    camera whose rotation is the one P was expressed with."""
    u = (x - c) / f                                           # normalised image coordinates
    A = np.zeros((32, 3))
    rhs = np.zeros(32)
    for d in range(2):                                        # u (P_z + t_z) = P_d + t_d
        A[d::2, d] = 1.0
        A[d::2, 2] = -u[:, d]
        rhs[d::2] = u[:, d] * P[:, 2] - P[:, d]
    t = np.linalg.lstsq(A, rhs, rcond=None)[0]
    Q = P + t
    return np.abs(Q[:, :2] / Q[:, 2:] * f + c - x).max()


def test_virtual_cameras_rotation_and_projection(ds, frames):
    src = PairSource(ds, SUBJECTS, seed=5)
    b = src.sample(B, aug=1.0)
    assert b.virtual.all()
    f, c = np.array(src.torus.f), np.array(src.torus.c)
    R = b.R_ij.double().numpy()
    worst_ij = worst_ji = worst_px = 0.0
    for k in range(B):
        X = frames[int(b.idx[k])]
        X = ds.sequences[X[0]][X[1]].poses_3d[X[2]].astype(np.float64)
        Xr = X - X[0]
        R_i, R_j = b.R_i[k].double().numpy(), b.R_j[k].double().numpy()
        for Rv in (R_i, R_j):
            np.testing.assert_allclose(Rv @ Rv.T, np.eye(3), atol=1e-5)
        P_i, P_j = Xr @ R_i.T, Xr @ R_j.T
        worst_ij = max(worst_ij, np.abs(P_i @ R[k].T - P_j).max())
        worst_ji = max(worst_ji, np.abs(P_j @ R[k] - P_i).max())
        # x_i / x_j are the projections of this 3D pose by cameras with rotations R_i / R_j
        sh = list(SH16_TO_H36M17)
        worst_px = max(worst_px, _fit_translation(b.x_i[k].double().numpy(), P_i[sh], f, c),
                       _fit_translation(b.x_j[k].double().numpy(), P_j[sh], f, c))
        # ... and not by the other one (the check can tell the views apart)
        assert _fit_translation(b.x_i[k].double().numpy(), P_j[sh], f, c) > 1.0
    assert worst_ij < 0.1 and worst_ji < 0.1, (worst_ij, worst_ji)
    assert worst_px < 0.05, worst_px


def test_mixed_batch_picks_per_sample(ds, frames):
    """aug=0.5: each sample is real or virtual; the real ones still use real cameras."""
    src = PairSource(ds, SUBJECTS, seed=7)
    b = src.sample(B, aug=0.5)
    assert 0 < int(b.virtual.sum()) < B
    R = b.R_ij.double().numpy()
    for k in torch.nonzero(~b.virtual).flatten().tolist():
        X, cam_i, cam_j, d_i, _ = _real_views(ds, frames, b, k)
        P_i, P_j = _root_relative_in(cam_i, X), _root_relative_in(cam_j, X)
        assert np.abs(P_i @ R[k].T - P_j).max() < 0.1
        np.testing.assert_array_equal(b.x_i[k].numpy(), np.asarray(d_i, np.float32))


def test_second_generator_gets_the_inverse_rotation(ds, frames):
    """geo.train.step_losses hands mu_nu the rotation j -> i (and phi_psi i -> j): spy
    on what each generator receives and check it on the real cameras."""
    from geo import train as T

    seen = {}

    def spy(name):
        def g(maps, R):
            seen[name] = (maps, R)
            G = torch.arange(maps.shape[0] * 12, dtype=torch.float32).view(-1, 4, 3) % 5
            return maps.clone(), G, G
        return g

    src = PairSource(ds, SUBJECTS, seed=11)
    b = src.sample(16, aug=0.0)
    cfg = SimpleNamespace(variant="DG+AUG", two_generators=True, lrc_weight=1.0, lrc_norm="rms")
    T.step_losses({"phi_psi": spy("phi_psi"), "mu_nu": spy("mu_nu")}, b, cfg)
    assert seen["phi_psi"][0] is b.maps_i and seen["mu_nu"][0] is b.maps_j
    for k in range(16):
        X, cam_i, cam_j, *_ = _real_views(ds, frames, b, k)
        P_i, P_j = _root_relative_in(cam_i, X), _root_relative_in(cam_j, X)
        R1 = seen["phi_psi"][1][k].double().numpy()
        R2 = seen["mu_nu"][1][k].double().numpy()
        assert np.abs(P_i @ R1.T - P_j).max() < 0.1        # phi_psi: i -> j
        assert np.abs(P_j @ R2.T - P_i).max() < 0.1        # mu_nu:   j -> i


def test_same_view_pairs(ds):
    """same_view (the AE variant): the target is the source, R_ij = I."""
    b = PairSource(ds, SUBJECTS, seed=13).sample(8, aug=0.5, same_view=True)
    assert torch.equal(b.x_i, b.x_j) and torch.equal(b.maps_i, b.maps_j) and torch.equal(b.ci, b.cj)
    assert torch.allclose(b.R_ij, torch.eye(3).expand(8, 3, 3), atol=1e-5)


def test_detector_joint_map_brings_virtual_joints_onto_the_detections(ds):
    """On real detections the fitted map moves SH "Spine" from H36M's mid-spine to where
    the detector puts it (the thorax) and the head top towards the detector's; virtual
    views drawn with it use those joints."""
    src = PairSource(ds, SUBJECTS, seed=0)
    assert src.joint_map_fit is None                     # fitted on first use only
    w = src.joint_map(frames=2000).cpu().numpy()
    fit = src.joint_map_fit
    spine, head = 7, 9
    assert fit["frames"] == min(2000, src.n) and len(fit["median_px_nominal"]) == len(fit["median_px_fitted"]) == 16
    assert fit["median_px_nominal"][spine] > 30 and fit["median_px_fitted"][spine] < 10
    assert fit["median_px_fitted"][head] < fit["median_px_nominal"][head]
    assert np.median(fit["median_px_nominal"]) < 15      # the other joints are near their detections already
    assert all(v == round(v, 2) for v in fit["median_px_nominal"] + fit["median_px_fitted"])   # px, 2 decimals
    assert np.allclose(w.sum(1), 1, atol=1e-5)
    nominal = src.sample(B, aug=1.0)
    src_b = PairSource(ds, SUBJECTS, seed=0)
    src_b._joint_map = src._joint_map
    fitted = src_b.sample(B, aug=1.0, joints="detector")
    # same frames and cameras; the Spine moves by tens of px, more than twice any other joint
    assert torch.equal(nominal.idx, fitted.idx)
    for a, b in ((nominal.x_i, fitted.x_i), (nominal.x_j, fitted.x_j)):   # both views of a virtual pair
        d = (a - b).norm(dim=-1).median(0).values
        assert d[spine] > 30 and d[spine] > 2 * torch.cat([d[:spine], d[spine + 1:]]).max()
    with pytest.raises(ValueError, match="joints 'x'"):
        src.sample(4, aug=1.0, joints="x")


def test_a_batch_torus_places_both_virtual_views(ds):
    """``sample(torus=...)`` draws both views of a virtual pair from that torus, not the
    source's: cameras 30 m away see the person about a fifth the size they do at 2.5-7.5 m."""
    src = PairSource(ds, SUBJECTS, seed=4)
    far = Torus(dist_min=30000.0, dist_max=30001.0, target_jitter=0.0)
    extent = lambda x: (x.amax(1) - x.amin(1)).amax(-1)   # noqa: E731 - px, per pose
    b = src.sample(B, aug=1.0, torus=far)
    near = src.sample(B, aug=1.0)
    assert b.virtual.all() and near.virtual.all()
    assert extent(b.x_i).max() < 120 and extent(b.x_j).max() < 120
    assert extent(near.x_i).median() > 200 and extent(near.x_j).median() > 200


# A small synthetic Dataset (made here, no files) with the awkward cases the real pack
# does not have: detections a few frames longer than the 3D, a sequence missing a camera
# in the middle of the list, a sequence without 3D, a recording at 50 Hz.

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
    with pytest.raises(DataError, match=r"^synthetic\b.*\bno frames\b.*\['S1'\]"):
        collect_frames(only_2d, ["S1"])
    # detections 20 frames longer than the 3D: more than 0.3 s at 50 Hz
    ds.sequences["S1"]["Sitting"] = Sequence(ds.sequences["S1"]["Sitting"].poses_3d,
                                             {"a": np.zeros((27, 16, 2), np.float32), "b": np.zeros((7, 16, 2), np.float32)})
    with pytest.raises(DataError, match=r"S1/Sitting/a\].*\b27 frames\b.*S1/Sitting\].*\b7\b.*\b15 frames\b.*\b0\.3 s\b.*\b50 Hz"):
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

"""Training pairs where training uses them (Sec. 3.1): R_ij maps view i's camera-frame,
root-relative 3D pose to view j's, for real Human3.6M cameras and virtual torus cameras;
the second generator gets R_ij^T (j -> i); x_i / x_j are the 2D poses of those views.

Everything is checked against the dataset itself (cameras.h5 rotations, the 3D poses, the
stacked-hourglass detections), not against the sampler's own copies."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

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
    w = src.joint_map(frames=2000).cpu().numpy()
    fit = src.joint_map_fit
    spine, head = 7, 9
    assert fit["median_px_nominal"][spine] > 30 and fit["median_px_fitted"][spine] < 10
    assert fit["median_px_fitted"][head] < fit["median_px_nominal"][head]
    assert np.allclose(w.sum(1), 1, atol=1e-5)
    nominal = src.sample(B, aug=1.0)
    src_b = PairSource(ds, SUBJECTS, seed=0)
    src_b._joint_map = src._joint_map
    fitted = src_b.sample(B, aug=1.0, joints="detector")
    # same frames and cameras; the Spine moves by tens of px, more than twice any other joint
    assert torch.equal(nominal.idx, fitted.idx)
    d = (nominal.x_i - fitted.x_i).norm(dim=-1).median(0).values
    assert d[spine] > 30 and d[spine] > 2 * torch.cat([d[:spine], d[spine + 1:]]).max()
    with pytest.raises(ValueError, match="joints 'x'"):
        src.sample(4, aug=1.0, joints="x")

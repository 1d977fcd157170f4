"""Cameras: projection against the real detections, transforms, distortion by hand,
relative rotations, the torus defaults and look_at."""
from dataclasses import asdict

import numpy as np
import pytest
import torch

from geo.cameras import (H36M_CAMERA_IDS, Camera, TORI, Torus, camera_angles, camera_to_world, fit_torus, look_at,
                         project, relative_rotation, world_to_camera)
from geo.skeleton import h36m17_to_sh16, root_relative

# Median px error of the projected 3D GT vs the SH detections, per camera, from the
# pack's README (16 joints, nominal mapping; cameras in H36M_CAMERA_IDS order).
README_MEDIAN_PX = {"S9": (11.0, 9.0, 10.6, 11.5), "S11": (10.2, 7.9, 9.1, 9.5)}


@pytest.mark.parametrize("subject", ["S9", "S11"])
def test_projection_matches_detections(h36m_pack, subject):
    seqs, cams = h36m_pack.sequences[subject], h36m_pack.cameras[subject]
    for cid, expected in zip(H36M_CAMERA_IDS, README_MEDIAN_PX[subject]):
        errs = []
        for seq in seqs.values():
            if seq.poses_3d is None or cid not in seq.poses_2d:
                continue
            x = h36m17_to_sh16(cams[cid].project(seq.poses_3d.astype(np.float64)))
            errs.append(np.linalg.norm(x - seq.poses_2d[cid], axis=-1).ravel())
        med = float(np.median(np.concatenate(errs)))
        assert abs(med - expected) <= 0.3, f"{subject} camera {cid}: median {med:.2f} px, README {expected}"


def test_projection_without_distortion_is_worse(h36m_pack):
    """The distortion terms matter: dropping them moves the projection away from SH."""
    seq = h36m_pack.sequences["S9"]["Walking 1"]
    cam = h36m_pack.cameras["S9"]["54138969"]
    x3 = seq.poses_3d.astype(np.float64)
    d = [np.median(np.linalg.norm(h36m17_to_sh16(cam.project(x3, distort=k)) - seq.poses_2d[cam.id], axis=-1))
         for k in (True, False)]
    assert d[0] < d[1]


def test_world_camera_round_trip(h36m_pack):
    x = h36m_pack.sequences["S11"]["Walking"].poses_3d[:50].astype(np.float64)
    for cam in h36m_pack.cameras["S11"].values():
        np.testing.assert_allclose(np.linalg.det(cam.R), 1.0, atol=1e-6)
        xc = cam.world_to_camera(x)
        assert np.all(xc[..., 2] > 1000)  # the subject is in front of every camera, metres away
        np.testing.assert_allclose(cam.camera_to_world(xc), x, atol=1e-6)
        # the camera centre maps to the origin
        np.testing.assert_allclose(cam.world_to_camera(cam.T), 0, atol=1e-6)
        # torch in, torch out, same numbers
        xt = torch.as_tensor(x)
        back = camera_to_world(world_to_camera(xt, cam.R, cam.T), cam.R, cam.T)
        assert isinstance(back, torch.Tensor)
        np.testing.assert_allclose(back.numpy(), x, atol=1e-6)


def test_distorted_projection_by_hand():
    # X_cam = (0.2, -0.1, 2.0): x = 0.1, y = -0.05, r2 = 0.0125
    # k = (0.1, 0.01, 0.001): radial = 1 + 0.00125 + 0.0000015625 + 0.000000001953125 = 1.001251564453125
    # p = (0.002, 0.003): t = p1 y + p2 x = -0.0001 + 0.0003 = 0.0002
    # u = 0.1 * 1.001451564453125 + 0.003 * 0.0125 = 0.1001826564453125
    # v = -0.05 * 1.001451564453125 + 0.002 * 0.0125 = -0.05004757822265625
    # f = (1000, 1100), c = (500, 400): pixel = (600.1826564453125, 344.947663955078125)
    f, c = np.array([1000.0, 1100.0]), np.array([500.0, 400.0])
    k, p = np.array([0.1, 0.01, 0.001]), np.array([0.002, 0.003])
    xc = np.array([0.2, -0.1, 2.0])
    np.testing.assert_allclose(project(xc, f, c, k, p), [600.1826564453125, 344.947663955078125], rtol=0, atol=1e-9)
    # without distortion: (500 + 1000 * 0.1, 400 - 1100 * 0.05)
    np.testing.assert_allclose(project(xc, f, c), [600.0, 345.0], atol=1e-12)
    # same through a Camera at the origin, and with torch
    cam = Camera("hand", R=np.eye(3), T=np.zeros(3), f=f, c=c, k=k, p=p)
    np.testing.assert_allclose(cam.project(xc), [600.1826564453125, 344.947663955078125], atol=1e-9)
    pt = project(torch.tensor(xc), f, c, k, p)
    assert isinstance(pt, torch.Tensor)
    np.testing.assert_allclose(pt.numpy(), [600.1826564453125, 344.947663955078125], atol=1e-9)


def _check_relative(x_world, Rs, Ts):
    """For all view pairs: R(i->j) @ root-relative camera-i pose == camera-j pose."""
    for i in range(len(Rs)):
        xi = root_relative(world_to_camera(x_world, Rs[i], Ts[i]))
        for j in range(len(Rs)):
            xj = root_relative(world_to_camera(x_world, Rs[j], Ts[j]))
            Rij = relative_rotation(Rs[i], Rs[j])
            np.testing.assert_allclose(xi @ Rij.T, xj, atol=1e-6)
            if i != j:
                assert np.abs(xi - xj).max() > 10  # different views really differ


def test_relative_rotation_real_cameras(h36m_pack):
    x = h36m_pack.sequences["S9"]["Walking 1"].poses_3d[::20].astype(np.float64)
    cams = list(h36m_pack.cameras["S9"].values())
    _check_relative(x, [c.R for c in cams], [c.T for c in cams])


def test_relative_rotation_torus_cameras():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 300, (5, 17, 3)) + np.array([100.0, -200.0, 900.0])
    root = np.repeat(x[:1, 0], 6, 0)
    R, T = Torus().sample(root, rng)
    assert R.shape == (6, 3, 3) and T.shape == (6, 3)
    _check_relative(x, list(R), list(T))
    # batched and torch versions agree with the loop
    Rb = relative_rotation(R[:3], R[3:])
    Rt = relative_rotation(torch.as_tensor(R[:3]), torch.as_tensor(R[3:]))
    np.testing.assert_allclose(Rb, Rt.numpy(), atol=1e-12)
    np.testing.assert_allclose(Rb[1], R[4] @ R[1].T, atol=1e-12)


@pytest.mark.parametrize("name, subjects, n_cams, n_seqs", [
    ("all", None, 28, 205),                                # the Torus defaults: every subject
    ("train", ["S1", "S5", "S6", "S7", "S8"], 20, 146),    # the training subjects only
])
def test_named_tori_match_refit(h36m_pack, name, subjects, n_cams, n_seqs):
    """Each of :data:`TORI` is the fit on its subjects' cameras and sequences' mean roots."""
    subjects = subjects or sorted(h36m_pack.cameras)
    cams = [c for s in subjects for c in h36m_pack.cameras[s].values()]
    assert len(cams) == n_cams
    targets = np.stack([seq.poses_3d[:, 0].mean(0) for s in subjects for seq in h36m_pack.sequences[s].values()
                        if seq.poses_3d is not None])
    assert len(targets) == n_seqs
    fit, default = asdict(fit_torus(cams, targets)), asdict(TORI[name])
    for name in ("elev_min", "elev_max", "roll_std"):  # angles: within 0.01 rad
        assert abs(fit[name] - default[name]) <= 0.01, (name, fit[name], default[name])
    for name in ("dist_min", "dist_max", "target_height", "target_jitter"):  # lengths: within 1%
        assert abs(fit[name] - default[name]) <= 0.01 * abs(fit[name]), (name, fit[name], default[name])
    for name in ("f", "c"):
        np.testing.assert_allclose(default[name], fit[name], rtol=0.01)


def test_torus_samples_lie_in_the_bands():
    t = Torus(target_jitter=0.0, roll_std=0.0)
    rng = np.random.default_rng(1)
    target = np.array([[300.0, -200.0, 900.0]] * 500)
    R, T = t.sample(target, rng)
    azim, elev, dist, roll = camera_angles(R, T, target)   # bands are measured from the root
    assert np.all((elev >= t.elev_min - 1e-9) & (elev <= t.elev_max + 1e-9))
    assert np.all((dist >= t.dist_min - 1e-6) & (dist <= t.dist_max + 1e-6))
    np.testing.assert_allclose(roll, 0, atol=1e-9)
    assert np.ptp(azim) > 5.5  # all the way round
    # the on-device sampler draws from the same torus
    import torch
    Rt, Tt = t.sample_torch(torch.as_tensor(target, dtype=torch.float64), torch.Generator().manual_seed(0))
    _, e2, d2, r2 = camera_angles(Rt.numpy(), Tt.numpy(), target)
    assert np.all((e2 >= t.elev_min - 1e-9) & (e2 <= t.elev_max + 1e-9))
    assert np.all((d2 >= t.dist_min - 1e-6) & (d2 <= t.dist_max + 1e-6))
    np.testing.assert_allclose(r2, 0, atol=1e-9)


def test_look_at_is_a_proper_rotation_and_centres_the_target():
    rng = np.random.default_rng(2)
    n = 200
    target = rng.normal(0, 500, (n, 3))
    centre = target + rng.normal(0, 3000, (n, 3))
    roll = rng.normal(0, 0.3, n)
    f, c = np.array([1145.0, 1144.0]), np.array([512.0, 515.0])
    for rl in (None, roll):
        R = look_at(centre, target, roll=rl)
        assert R.shape == (n, 3, 3)
        np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-9)
        np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), (n, 3, 3)), atol=1e-9)
        xc = np.einsum("nij,nj->ni", R, target - centre)
        assert np.all(xc[:, 2] > 0)  # in front
        np.testing.assert_allclose(project(xc, f, c), np.broadcast_to(c, (n, 2)), atol=1e-6)
    R0 = look_at(centre, target)
    np.testing.assert_allclose(R0[:, 0, 2], 0, atol=1e-9)     # no roll: camera x horizontal
    assert np.all(R0[:, 1, 2] < 0)                             # image y points down (world z up)
    # roll turns the image about the optical axis only
    np.testing.assert_allclose(look_at(centre, target, roll=roll)[:, 2], R0[:, 2], atol=1e-12)


def test_torus_samples_match_the_fit_from_the_root():
    """The bands of Torus() were fitted as (elevation, distance) of the camera centres seen
    from the subject's root, so sampled cameras should fall in them seen from the root."""
    t = Torus()
    rng = np.random.default_rng(3)
    root = np.array([[300.0, -200.0, 900.0]] * 2000)
    R, T = t.sample(root, rng)
    _, elev, dist, _ = camera_angles(R, T, root)
    assert np.all((elev >= t.elev_min - 1e-6) & (elev <= t.elev_max + 1e-6))
    assert np.all((dist >= t.dist_min - 1e-3) & (dist <= t.dist_max + 1e-3))

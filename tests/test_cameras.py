"""Cameras: projection against the real detections, transforms, distortion by hand,
relative rotations, the torus defaults and look_at."""
import math
from dataclasses import asdict

import numpy as np
import pytest
import torch

from geo.cameras import (H36M_CAMERA_IDS, Camera, TORI, Torus, camera_angles, camera_to_world, fit_torus, look_at,
                         project, random_rotation_pairs, relative_rotation, world_to_camera)
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


# The torus samplers (Torus.sample_torch, which training uses for every virtual pair,
# and Torus.sample): draws from the generator passed in, cameras that follow the
# documented distribution (azimuth all round, elevation and distance uniform in their
# bands and independent, optical axis through the root shifted by target_height plus
# jitter, roll ~ N(0, roll_std)); dtypes and batch shapes of the transforms, look_at
# and fit_torus by hand.

N = 20000


def _draw(t: Torus, seed=0, n=N, target=(300.0, -200.0, 900.0), sampler="torch"):
    """``n`` cameras round one target from ``Torus.sample_torch`` or (``sampler="numpy"``)
    ``Torus.sample``: R (n, 3, 3), centres (n, 3), targets (n, 3) as numpy."""
    tg = torch.tensor([target], dtype=torch.float64).expand(n, 3).contiguous()
    if sampler == "numpy":
        R, C = t.sample(tg.numpy(), np.random.default_rng(seed))
        return R, C, tg.numpy()
    R, C = t.sample_torch(tg, torch.Generator().manual_seed(seed))
    return R.numpy(), C.numpy(), tg.numpy()


def test_sample_torch_draws_from_the_generator_only():
    t = Torus()
    torch.manual_seed(123)
    R1, C1, _ = _draw(t, seed=5, n=64)
    torch.manual_seed(456)                     # the global RNG plays no part
    R2, C2, _ = _draw(t, seed=5, n=64)
    np.testing.assert_array_equal(R1, R2)
    np.testing.assert_array_equal(C1, C2)
    R3, C3, _ = _draw(t, seed=6, n=64)
    assert np.abs(C1 - C3).max() > 100 and np.abs(R1 - R3).max() > 0.1


@pytest.mark.parametrize("sampler", ["torch", "numpy"])
def test_samples_follow_the_documented_distribution(sampler):
    t = Torus()
    R, C, tg = _draw(t, sampler=sampler)
    azim, elev, dist, roll = camera_angles(R, C, tg)
    azim = np.mod(azim, 2 * np.pi)
    # azimuth ~ U[0, 2 pi): each quarter of the circle gets a quarter of the cameras
    quarters = np.bincount((azim // (np.pi / 2)).astype(int), minlength=4) / N
    np.testing.assert_allclose(quarters, 0.25, atol=0.02)
    # elevation and distance: uniform over their bands (mean and std of a uniform) ...
    for v, lo, hi in ((elev, t.elev_min, t.elev_max), (dist, t.dist_min, t.dist_max)):
        assert lo - 1e-9 <= v.min() and v.max() <= hi + 1e-6
        assert abs(v.mean() - (lo + hi) / 2) < 0.02 * (hi - lo)
        assert abs(v.std() - (hi - lo) / math.sqrt(12)) < 0.02 * (hi - lo)
    # ... and independent of each other and of the azimuth
    for u, w in ((elev, dist), (azim, elev), (azim, dist)):
        assert abs(np.corrcoef(u, w)[0, 1]) < 0.05
    # roll ~ N(0, roll_std): measured as the tilt of the camera x axis out of the
    # horizontal, which is the roll times cos(pitch) of a camera looking slightly down
    assert abs(roll.mean()) < 0.05 * t.roll_std
    assert 0.85 * t.roll_std < roll.std() < 1.02 * t.roll_std


@pytest.mark.parametrize("sampler", ["torch", "numpy"])
def test_optical_axis_passes_the_shifted_root(sampler):
    # no jitter: the optical axis (third row of R) points from the centre to root + target_height
    t = Torus(target_jitter=0.0)
    R, C, tg = _draw(t, n=500, sampler=sampler)
    look = tg + [0.0, 0.0, t.target_height]
    axis = (look - C) / np.linalg.norm(look - C, axis=-1, keepdims=True)
    np.testing.assert_allclose(R[:, 2], axis, atol=1e-9)
    # with jitter: the point of the axis nearest the shifted root is off by ~ N(0, jitter)
    # per world axis, i.e. its squared distance averages 2 jitter^2 (the component along
    # the axis does not move the axis)
    t = Torus()
    R, C, tg = _draw(t, sampler=sampler)
    look = tg + [0.0, 0.0, t.target_height]
    v = look - C
    perp = v - np.einsum("ni,ni->n", v, R[:, 2])[:, None] * R[:, 2]
    ms = (perp ** 2).sum(-1).mean()
    assert 0.9 * 2 * t.target_jitter ** 2 < ms < 1.1 * 2 * t.target_jitter ** 2


@pytest.mark.parametrize("to", ["numpy", "torch"])
def test_transforms_keep_float32(to):
    rng = np.random.default_rng(0)
    R = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    T = rng.normal(0, 1000, 3)
    x64 = rng.normal(0, 500, (5, 17, 3))
    x32 = x64.astype(np.float32) if to == "numpy" else torch.as_tensor(x64, dtype=torch.float32)
    for f in (world_to_camera, camera_to_world):
        y = f(x32, R, T)
        assert type(y) is type(x32)
        assert y.dtype == x32.dtype, f.__name__
        np.testing.assert_allclose(np.asarray(y), f(x64, R, T), rtol=1e-5, atol=1e-2)
    # projection of a batch, with and without distortion: float32 in, float32 out, and
    # the pixel pairs on the last axis
    xc64 = x64 + [0.0, 0.0, 4000.0]
    xc32 = xc64.astype(np.float32) if to == "numpy" else torch.as_tensor(xc64, dtype=torch.float32)
    f, c = np.array([1145.0, 1144.0]), np.array([512.0, 515.0])
    k, p = np.array([-0.2, 0.24, -0.0025]), np.array([-0.0009, -0.002])
    for args in ((f, c), (f, c, k, p)):
        y = project(xc32, *args)
        assert type(y) is type(xc32) and y.dtype == xc32.dtype and tuple(y.shape) == (5, 17, 2)
        np.testing.assert_allclose(np.asarray(y), project(xc64, *args), rtol=1e-5, atol=1e-2)


def test_random_rotation_pairs_are_torus_cameras_round_the_origin():
    t = Torus(roll_std=0.0, target_jitter=0.0)
    Ri, Rj = random_rotation_pairs(400, np.random.default_rng(0), t)
    assert Ri.shape == Rj.shape == (400, 3, 3)
    assert np.abs(Ri - Rj).max() > 0.5                     # two independent cameras
    for R in (Ri, Rj):
        np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-9)
        np.testing.assert_allclose(R[:, 0, 2], 0.0, atol=1e-9)     # no roll
        # cameras above the ground round a root at the origin look down at (0, 0, -450)
        assert np.all(R[:, 2, 2] < 0)
    # same seed, same pairs; the default torus is Torus()
    a = random_rotation_pairs(3, np.random.default_rng(1))
    b = random_rotation_pairs(3, np.random.default_rng(1), Torus())
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_transforms_of_integer_points_are_float():
    R = np.array([[0.6, -0.8, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 1.0]])
    T = np.array([10.5, -3.25, 100.0])
    xi = np.array([[1000, 200, 3000], [-50, 7, 2500]])
    for f in (world_to_camera, camera_to_world):
        y = f(xi, R, T)
        assert y.dtype == np.float64
        np.testing.assert_allclose(y, f(xi.astype(np.float64), R, T), rtol=1e-12)
    f, c = np.array([1145.5, 1144.25]), np.array([512.5, 515.75])
    np.testing.assert_allclose(project(xi, f, c), project(xi.astype(np.float64), f, c), rtol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sample_torch_and_transforms_stay_on_the_device():
    t = Torus()
    tg = torch.zeros((8, 3), device="cuda")
    R, C = t.sample_torch(tg, torch.Generator(device="cuda").manual_seed(0))
    assert R.device.type == C.device.type == "cuda"
    assert R.dtype == C.dtype == torch.float32
    # numpy or CUDA-tensor camera parameters with CUDA points: CUDA out
    x = torch.randn(5, 17, 3, device="cuda") * 300 + 4000
    for Rc, Tc in ((R[0].cpu().numpy(), C[0].cpu().numpy()), (R[0], C[0])):
        assert world_to_camera(x, Rc, Tc).is_cuda and camera_to_world(x, Rc, Tc).is_cuda
    assert project(x, np.array([1145.0, 1144.0]), np.array([512.0, 515.0]),
                   np.array([-0.2, 0.24, -0.0025]), np.array([-0.0009, -0.002])).is_cuda


def test_look_at_by_hand():
    # a level camera at the origin looking along +x (world z up): x right = -y world,
    # y down = -z world, z forward = +x world; integer input is fine
    level = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    R = look_at([0, 0, 0], [1000, 0, 0])
    assert R.dtype == np.float64
    np.testing.assert_allclose(R, level, atol=1e-12)
    # roll r: the rows turn about the optical axis, x' = cos r x - sin r y, y' = sin r x + cos r y
    r = 0.3
    Rz = np.array([[np.cos(r), -np.sin(r), 0.0], [np.sin(r), np.cos(r), 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(look_at(np.zeros(3), np.array([1000.0, 0, 0]), roll=r), Rz @ level, atol=1e-12)
    # another world up: y up
    np.testing.assert_allclose(look_at(np.zeros(3), np.array([1000.0, 0, 0]), up=(0.0, 1.0, 0.0)),
                               [[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]], atol=1e-12)
    # float32 in, float64 out (computed in float64)
    R32 = look_at(np.zeros(3, np.float32), np.array([1000.0, 10.0, 0.0], np.float32))
    assert R32.dtype == np.float64
    np.testing.assert_allclose(R32, look_at(np.zeros(3), np.array([1000.0, 10.0, 0.0])), atol=1e-15)


def test_look_at_any_batch_shape():
    rng = np.random.default_rng(4)
    centre = rng.normal(0, 3000, (2, 5, 3))
    target = rng.normal(0, 500, (2, 5, 3))
    roll = rng.normal(0, 0.3, (2, 5))
    flat = look_at(centre.reshape(10, 3), target.reshape(10, 3), roll=roll.reshape(10))
    R = look_at(centre, target, roll=roll)
    assert R.shape == (2, 5, 3, 3)
    np.testing.assert_allclose(R.reshape(10, 3, 3), flat, atol=1e-12)
    # one camera, unbatched
    np.testing.assert_allclose(look_at(centre[1, 2], target[1, 2], roll=roll[1, 2]), R[1, 2], atol=1e-12)
    np.testing.assert_allclose(look_at(centre[1, 2], target[1, 2]), look_at(centre, target)[1, 2], atol=1e-12)


def test_camera_angles_of_rounded_rotations():
    # a rotation whose x axis is vertical up to rounding (|R[0, 2]| a hair above 1): a
    # roll of -/+ pi / 2, not NaN
    R = np.zeros((2, 3, 3))
    R[:, 0, 2] = [1.0 + 4e-16, -1.0 - 4e-16]
    T = np.array([[1000.0, 0.0, 0.0], [0.0, 1000.0, 0.0]])
    _, _, _, roll = camera_angles(R, T, np.zeros(3))
    np.testing.assert_allclose(np.abs(roll), [np.pi / 2, np.pi / 2])
    assert roll[0] == -roll[1]


def _line_distance(p, a, u):
    """Distance of point p from the line through a with unit direction u."""
    return np.linalg.norm(np.cross(p - a, u))


def test_fit_torus_by_hand():
    """Three level cameras (each at the height it looks at) round two roots: every field
    of the fit from its definition."""
    heights = np.array([-300.0, -450.0, -520.0])
    ranges = np.array([3000.0, 4200.0, 5100.0])
    azim = np.array([0.3, 2.0, 4.1])
    rolls = np.array([0.02, -0.05, 0.04])
    fs = np.array([[1100.0, 1090.0], [1150.0, 1148.0], [1200.0, 1195.0]])
    cs = np.array([[500.0, 510.0], [512.0, 505.0], [520.0, 498.0]])
    cams = []
    for h, r, a, rl, f, c in zip(heights, ranges, azim, rolls, fs, cs):
        centre = np.array([r * np.cos(a), r * np.sin(a), h])
        R = look_at(centre, np.array([0.0, 0.0, h]), roll=rl)
        cams.append(Camera(f"c{len(cams)}", R=R, T=centre, f=f, c=c))
    targets = np.array([[0.0, 0.0, 0.0], [100.0, -50.0, 30.0]])
    d = np.stack([c.T for c in cams])[:, None] - targets[None]          # (3 cameras, 2 targets, 3)
    dist = np.linalg.norm(d, axis=-1)
    elev = np.arcsin(d[..., 2] / dist)
    height = heights[:, None] - targets[None, :, 2]                      # level axes: z = h
    off = np.array([[_line_distance(t, c.T, c.R[2]) for t in targets] for c in cams])
    for widen in (0.0, 0.25):
        t = fit_torus(cams, targets, widen=widen)
        for name, v in (("elev", elev), ("dist", dist)):
            w = v.max() - v.min()
            assert getattr(t, f"{name}_min") == pytest.approx(v.min() - widen * w, rel=1e-9), name
            assert getattr(t, f"{name}_max") == pytest.approx(v.max() + widen * w, rel=1e-9), name
        assert t.target_height == pytest.approx(np.median(height), rel=1e-9)
        assert t.target_jitter == pytest.approx(np.std(off), rel=1e-6)
        assert t.roll_std == pytest.approx(np.sqrt(np.mean(rolls ** 2)), rel=1e-6)
        np.testing.assert_allclose(t.f, fs.mean(0), rtol=1e-12)
        np.testing.assert_allclose(t.c, cs.mean(0), rtol=1e-12)

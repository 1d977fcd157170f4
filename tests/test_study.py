"""geo.study: crop normalisation as the renderer crops, grid snapping, ray-frame rotations."""
import numpy as np
import pytest
import torch

from geo import study
from geo.render import MAP_SIZE, render
from geo.skeleton import SH16_ROOT


def poses(n=32, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 16, 2)) * rng.uniform(20, 120, size=(n, 1, 1))
    return (base + rng.uniform(100, 900, size=(n, 1, 2))).astype(np.float32)


def test_crop_normalise_is_the_renderers_crop():
    x = poses()
    xm = study.crop_normalise(x)
    assert xm.min() >= 0 and xm.max() < MAP_SIZE
    # drawing the normalised joints gives the very maps the renderer draws from pixels
    a = render(torch.as_tensor(x))
    b = render(torch.as_tensor(xm), normalized=True)
    assert torch.equal(a, b)
    # the longer bounding-box side spans MAP_SIZE / MARGIN map pixels, centred
    ext = xm.max(1) - xm.min(1)
    np.testing.assert_allclose(ext.max(1), MAP_SIZE / 1.2, rtol=1e-5)
    np.testing.assert_allclose((xm.max(1) + xm.min(1)) / 2, MAP_SIZE / 2, atol=1e-4)


def test_crop_normalise_forgets_position_and_scale_crop_box_keeps_them():
    x = poses(4)
    moved = (x - 500) * 1.7 + np.array([300.0, 650.0], np.float32)
    np.testing.assert_allclose(study.crop_normalise(moved), study.crop_normalise(x), atol=1e-3)
    b, bm = study.crop_box(x), study.crop_box(moved)
    np.testing.assert_allclose(bm[:, 2], b[:, 2] * 1.7, rtol=1e-5)
    np.testing.assert_allclose(bm[:, :2], (b[:, :2] - 500) * 1.7 + [300, 650], atol=1e-3)
    lo, hi = x.min(1), x.max(1)
    np.testing.assert_allclose(b[:, 2], (hi - lo).max(1) * 1.2, rtol=1e-5)


def test_snap_lands_on_pixel_centres_of_the_grid():
    xm = study.crop_normalise(poses())
    s = study.snap_to_grid(xm)
    np.testing.assert_array_equal(s - 0.5, np.floor(s))         # j + 0.5
    assert np.abs(s - xm).max() <= 0.5 + 1e-6
    np.testing.assert_array_equal(np.floor(s), np.floor(xm))    # the pixel that holds the point
    assert study.snap_to_grid(np.array([[[-3.0, 70.0]]]))[0, 0].tolist() == [0.5, MAP_SIZE - 0.5]


def test_joints_fall_in_rendered_pixels():
    """The snapped joint is a pixel of a bone drawn by the renderer (its end point)."""
    x = poses(8)
    s = study.snap_to_grid(study.crop_normalise(x)).astype(int)
    maps = render(torch.as_tensor(x)).amax(1)                    # (N, 64, 64) union of bones
    on = maps[np.arange(8)[:, None], s[..., 1], s[..., 0]]
    assert bool(on.all())


def intrinsics(n, seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(1100, 1200, size=(n, 2)), rng.uniform(480, 520, size=(n, 2))


def test_ray_rotation_maps_the_root_ray_to_z():
    n = 50
    px = np.random.default_rng(2).uniform(0, 1000, size=(n, 2))
    f, c = intrinsics(n)
    R = study.ray_rotations(px, f, c)
    d = study.ray_directions(px, f, c)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", R, d), np.tile([0, 0, 1.0], (n, 1)), atol=1e-12)
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.tile(np.eye(3), (n, 1, 1)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    # the ray is the one through the pixel: a 3D point on it projects back onto the pixel
    p = d * 4321.0
    np.testing.assert_allclose(p[:, :2] / p[:, 2:] * f + c, px, atol=1e-9)


def test_ray_rotation_at_the_principal_point_is_identity():
    f, c = intrinsics(3)
    R = study.ray_rotations(c, f, c)
    np.testing.assert_allclose(R, np.tile(np.eye(3), (3, 1, 1)), atol=1e-15)
    assert study.ray_angles_deg(c, f, c) == pytest.approx([0, 0, 0])


def test_ray_frame_round_trip_is_exact_and_a_real_change():
    n = 20
    rng = np.random.default_rng(3)
    y = rng.normal(size=(n, 16, 3)) * 300
    px = rng.uniform(0, 1000, size=(n, 2))
    f, c = intrinsics(n)
    R = study.ray_rotations(px, f, c)
    yr = study.to_ray_frame(y, R)
    np.testing.assert_allclose(study.from_ray_frame(yr, R), y, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(yr, axis=-1), np.linalg.norm(y, axis=-1), rtol=1e-12)
    assert np.abs(yr - y).max() > 10    # off-axis rays do rotate the pose
    # a point on the root ray (the root, seen from the camera) lands on +z
    root = study.ray_directions(px, f, c)[:, None] * 5000.0
    np.testing.assert_allclose(study.to_ray_frame(root, R)[:, 0, :2], 0, atol=1e-9)


def test_root_pixels_is_the_sh16_hip():
    x = poses(3)
    np.testing.assert_array_equal(study.root_pixels(x), x[:, SH16_ROOT])
    with pytest.raises(ValueError, match="expected \\(N, J, 2\\)"):
        study.root_pixels(x[0])


def test_shape_errors_name_the_input():
    with pytest.raises(ValueError, match="rotations"):
        study.to_ray_frame(np.zeros((2, 16, 3)), np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="root_px"):
        study.ray_directions(np.zeros((2, 3)), np.ones(2), np.zeros(2))


def test_ridge_recovers_a_linear_map_and_shrinks_with_alpha():
    rng = np.random.default_rng(4)
    A = rng.normal(size=(12, 12))
    x = rng.normal(size=(300, 6, 2)) * [3.0, 0.1] + 7      # unequal scales: z-scoring matters
    y = (x.reshape(300, -1) @ A).reshape(300, 4, 3) + 5
    xt = rng.normal(size=(50, 6, 2))
    small, big = study.ridge_fit_predict(x, y, xt, [1e-9, 1e9])
    np.testing.assert_allclose(small, (xt.reshape(50, -1) @ A).reshape(50, 4, 3) + 5, atol=1e-5)
    np.testing.assert_allclose(big, np.broadcast_to(y.mean(0), big.shape), atol=1e-3)   # all shrunk: the mean
    with pytest.raises(ValueError, match="x_test"):
        study.ridge_fit_predict(x, y, xt[:, :3], [1.0])

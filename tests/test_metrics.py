"""Metrics on hand-computed cases."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from geo.metrics import action_name, auc, mpjpe, n_mpjpe, p_mpjpe, per_action, pck, procrustes_align


def _pose(n=3, j=17, seed=0):
    return np.random.default_rng(seed).normal(0, 250, (n, j, 3))


def _rotation(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def test_mpjpe_known_offset():
    gt = _pose()
    assert np.allclose(mpjpe(gt + [30.0, 40.0, 0.0], gt), 50.0)   # a 3-4-5 triangle
    # half the joints off by 10 mm, half exact: mean 5 mm
    pred = gt.copy()
    pred[:, :8, 2] += 10.0
    pred = pred[:, :16]
    np.testing.assert_allclose(mpjpe(pred, gt[:, :16]), 5.0)
    assert mpjpe(gt, gt).shape == (3,)
    with pytest.raises(ValueError):
        mpjpe(gt[:, :16], gt)


def test_p_mpjpe_similarity_invariant():
    gt = _pose()
    R = _rotation([1, 2, 3], 0.7)
    pred = 1.3 * gt @ R.T + [100.0, -50.0, 2000.0]
    assert mpjpe(pred, gt).min() > 100
    np.testing.assert_allclose(p_mpjpe(pred, gt), 0.0, atol=1e-8)
    np.testing.assert_allclose(procrustes_align(pred, gt), gt, atol=1e-8)


def test_p_mpjpe_no_reflection():
    gt = _pose()
    mirrored = gt * [-1.0, 1.0, 1.0]  # a reflection: no rotation maps it back
    err = p_mpjpe(mirrored, gt)
    assert np.all(err > 20), err
    aligned = procrustes_align(mirrored, gt)
    # the alignment is a proper similarity: mirrored -> aligned preserves handedness
    c = mirrored - mirrored.mean(1, keepdims=True)
    a = aligned - aligned.mean(1, keepdims=True)
    M = np.linalg.lstsq(c[0], a[0], rcond=None)[0]
    assert np.linalg.det(M) > 0


def test_n_mpjpe_scale_only():
    gt = _pose()
    np.testing.assert_allclose(n_mpjpe(0.8 * gt, gt), 0.0, atol=1e-9)
    # a rotation is not undone by scaling
    assert np.all(n_mpjpe(gt @ _rotation([0, 0, 1], 0.5).T, gt) > 10)
    # hand case: gt = 2 * pred along one axis; least-squares scale = 2
    pred = np.zeros((1, 2, 3))
    pred[0, :, 0] = [1.0, 3.0]
    np.testing.assert_allclose(n_mpjpe(pred, 2 * pred), 0.0, atol=1e-12)


def test_per_action_by_hand():
    errors = [10.0, 20.0, 30.0, 40.0, 90.0]
    actions = ["Walking 1", "Walking", "Walking 1", "Eating", "Eating 2"]
    avg, table = per_action(errors, actions)
    # Walking: (10 + 20 + 30) / 3 = 20; Eating: (40 + 90) / 2 = 65; mean over actions = 42.5
    assert table == {"Eating": 65.0, "Walking": 20.0}
    assert avg == pytest.approx(42.5)
    assert avg != pytest.approx(np.mean(errors))  # not the frame average (38)
    assert action_name("Walking 1") == action_name("Walking") == "Walking"
    assert action_name("WalkDog 1") == "WalkDog"


def test_pck_three_joints():
    gt = np.zeros((1, 3, 3))
    pred = np.zeros((1, 3, 3))
    pred[0, :, 0] = [100.0, 150.0, 200.0]  # 150 mm counts as within
    assert pck(pred, gt) == pytest.approx(200 / 3)
    assert pck(pred, gt, threshold=99.0) == 0.0


def test_auc_by_hand():
    # errors 0, 72 and 200 mm; thresholds 0, 5, ..., 150 (31 of them):
    # 0 mm is within all 31, 72 mm within 75..150 = 16, 200 mm within none
    # AUC = 100 * (31 + 16 + 0) / (3 * 31) = 50.5376...
    gt = np.zeros((1, 3, 3))
    pred = np.zeros((1, 3, 3))
    pred[0, 1, 1] = 72.0
    pred[0, 2, 2] = -200.0
    assert auc(pred, gt) == pytest.approx(100 * 47 / 93)
    assert auc(gt, gt) == pytest.approx(100.0)


# Input dtypes, shape checks, Protocol #2 against scipy's Kabsch, tiny and degenerate
# predictions, PCK of poses away from the origin and PCK / AUC by group, by hand.

def _far_pose(n=4, j=17, seed=0, offset=3000.0):
    """Poses far from the origin, as in world / camera frames (mm)."""
    return np.random.default_rng(seed).normal(0, 250, (n, j, 3)) + offset


def _reference_p_mpjpe(pred, gt):
    """Protocol #2 by another route: the best proper rotation from scipy (Kabsch), then
    the least-squares scale for it, then the best translation."""
    out = []
    for p, g in zip(pred, gt):
        p0, g0 = p - p.mean(0), g - g.mean(0)
        R, _ = Rotation.align_vectors(g0, p0)
        q = R.apply(p0)
        s = (q * g0).sum() / (q * q).sum()
        out.append(np.linalg.norm(s * q - g0, axis=-1).mean())
    return np.array(out)


def test_computed_in_float64_whatever_the_input_dtype():
    rng = np.random.default_rng(1)
    gt32 = (rng.normal(0, 250, (4, 17, 3)) + 4321.0).astype(np.float32)
    pred32 = (gt32 + rng.normal(0, 40, gt32.shape)).astype(np.float32)
    gt64, pred64 = gt32.astype(np.float64), pred32.astype(np.float64)
    for f in (mpjpe, p_mpjpe, n_mpjpe):
        ref = f(pred64, gt64)
        assert ref.dtype == np.float64
        # each argument alone in float32 gives the float64 result bit for bit
        for a, b in ((pred32, gt32), (pred32, gt64), (pred64, gt32)):
            r = f(a, b)
            assert r.dtype == np.float64, f.__name__
            np.testing.assert_array_equal(r, ref, err_msg=f.__name__)


def test_shape_check_names_the_shapes():
    a = np.zeros((2, 17, 2))   # equal shapes, but 2D points
    for f in (mpjpe, p_mpjpe, n_mpjpe, pck):
        with pytest.raises(ValueError, match=r"\(N, J, 3\).*\(2, 17, 2\) and \(2, 17, 2\)"):
            f(a, a)


@pytest.mark.parametrize("mirror", [False, True])
def test_p_mpjpe_equals_scipy_kabsch(mirror):
    gt = _far_pose(seed=2)
    pred = gt + np.random.default_rng(3).normal(0, 60, gt.shape)
    if mirror:   # a reflection: the best proper rotation needs the flipped last axis
        pred = pred * [1.0, -1.0, 1.0]
    pred = 0.9 * pred @ Rotation.from_rotvec([0.3, -0.5, 0.2]).as_matrix().T + [50.0, 20.0, -300.0]
    ref = _reference_p_mpjpe(pred, gt)
    np.testing.assert_allclose(p_mpjpe(pred, gt), ref, rtol=1e-9, atol=1e-9)


def test_procrustes_without_scale_is_the_best_rigid_motion():
    gt = _far_pose(seed=4)
    R = Rotation.from_rotvec([0.2, 0.7, -0.1]).as_matrix()
    pred = 0.5 * (gt - gt.mean(1, keepdims=True)) @ R.T + [10.0, 0.0, 0.0]
    rigid = procrustes_align(pred, gt, scale=False)
    # rotated back and centred on gt, but still half the size
    expect = 0.5 * (gt - gt.mean(1, keepdims=True)) + gt.mean(1, keepdims=True)
    np.testing.assert_allclose(rigid, expect, atol=1e-8)
    np.testing.assert_allclose(procrustes_align(pred, gt), gt, atol=1e-8)


def test_scale_alignment_of_tiny_and_degenerate_predictions():
    gt = _far_pose(seed=5)
    tiny = 1e-6 * gt     # sum of squares far below 1 mm^2: the scale is still recovered
    assert (tiny ** 2).sum((1, 2)).max() < 1e-2
    np.testing.assert_allclose(n_mpjpe(tiny, gt), 0.0, atol=1e-4)
    small = 1e-4 * (gt - gt.mean(1, keepdims=True))
    assert (small ** 2).sum((1, 2)).max() < 1.0
    np.testing.assert_allclose(p_mpjpe(small, gt), 0.0, atol=1e-4)
    # all joints at one point: scale 0, finite errors (no 0/0)
    flat = np.ones_like(gt)
    np.testing.assert_allclose(n_mpjpe(np.zeros_like(gt), gt), np.linalg.norm(gt, axis=-1).mean(-1))
    spread = np.linalg.norm(gt - gt.mean(1, keepdims=True), axis=-1).mean(-1)
    np.testing.assert_allclose(p_mpjpe(flat, gt), spread)


def test_pck_of_poses_away_from_the_origin():
    gt = _far_pose(n=1, j=4, seed=6)
    pred = gt.copy()
    pred[0, :, 0] += [0.0, 100.0, 150.0, 151.0]
    assert pck(pred, gt) == pytest.approx(75.0)
    assert pck(gt, gt) == 100.0


def test_pck_auc_by_group_by_hand():
    from geo.metrics import pck_auc_by_group

    gt = _far_pose(n=3, j=5, seed=7)
    pred = gt.copy()
    pred[1, :, 1] += 100.0     # row 1: every joint 100 mm off
    pred[2, :, 2] -= 200.0     # row 2: every joint 200 mm off
    scenes = {"GS": ("TS1", "TS2"), "noGS": ("TS3", "TS4"), "Outdoor": ("TS5", "TS6")}
    out = pck_auc_by_group(pred, gt, ["TS1", "TS2", "TS6"], scenes)
    assert set(out) == {"overall", "GS", "Outdoor"}           # no rows of noGS: left out
    assert out["overall"]["frames"] == 3 and out["GS"]["frames"] == 2 and out["Outdoor"]["frames"] == 1
    assert out["overall"]["pck"] == pytest.approx(200 / 3)
    assert out["GS"]["pck"] == pytest.approx(100.0) and out["Outdoor"]["pck"] == 0.0
    # AUC over 0, 5, ..., 150 mm: 0 mm within all 31, 100 mm within 100..150 (11), 200 mm within none
    assert out["GS"]["auc"] == pytest.approx(100 * (31 + 11) / 62)
    assert out["overall"]["auc"] == pytest.approx(100 * (31 + 11) / 93)
    assert out["Outdoor"]["auc"] == 0.0
    with pytest.raises(ValueError, match="groups has 2 entries for 3 poses"):
        pck_auc_by_group(pred, gt, ["TS1", "TS2"], scenes)

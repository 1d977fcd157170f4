"""Metrics on hand-computed cases."""
import numpy as np
import pytest

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

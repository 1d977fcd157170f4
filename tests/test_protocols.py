"""Evaluation protocols of Tables 1 and 2: Protocol #3's camera split, and the
MPI-INF-3DHP path (loader -> H36M skeleton -> root alignment -> PCK@150 / AUC, per scene)
on the two-frame fixture with hand-computed values."""
import numpy as np
import pytest

from geo import metrics, regress
from geo.data import load
from geo.data.mpi_inf_3dhp import SCENES, as_h36m, fit_pinhole, load_3dhp_mmpose


# ----------------------------------------------------------------------- Protocol #3
def test_protocol3_cameras_on_the_embedded_default():
    ds = load("embedded")
    train, test = regress.protocol3_cameras(ds)
    assert train == ("E-cam1", "E-cam2", "E-cam3") and test == "E-cam4"
    sp = regress.make_split(ds, ds.test_subjects, "sh", cameras=[test])
    full = regress.make_split(ds, ds.test_subjects, "sh")
    assert set(sp.cameras) == {test} and len(sp) == sum(c == test for c in full.cameras)
    # existing behaviour unchanged without cameras; an empty choice names the cameras
    with pytest.raises(ValueError, match="cameras \\['nope'\\]"):
        regress.make_split(ds, ds.test_subjects, "sh", cameras=["nope"])


def test_protocol3_cameras_on_the_real_pack(h36m_pack):
    train, test = regress.protocol3_cameras(h36m_pack)
    assert train == ("54138969", "55011271", "58860488") and test == "60457274"
    sp = regress.make_split(h36m_pack.subset(["S11"]), ["S11"], "sh", cameras=[test])
    assert set(sp.cameras) == {"60457274"} and set(sp.subjects) == {"S11"}


def test_protocol3_needs_four_shared_cameras():
    ds = load("embedded")
    del ds.cameras["E2"]["E-cam4"]
    with pytest.raises(ValueError, match="E2 has cameras"):
        regress.protocol3_cameras(ds)


# ----------------------------------------------------------------------- MPI-INF-3DHP
@pytest.fixture(scope="module")
def hd_fixture(shared_data):
    p = shared_data / "fixtures" / "mpi_inf_3dhp" / "test_3dhp_test.npz"
    if not p.is_file():
        pytest.skip(f"{p} is absent")
    return load_3dhp_mmpose(p), np.load(p)


def test_fit_pinhole_recovers_the_test_cameras(hd_fixture):
    # mmpose's cameras_test.pkl: TS1 f (1500.07, 1500.66) c (1017.38, 1043.06);
    # TS2 f (1503.78, 1501.27) c (1015.23, 1038.68)
    t, _ = hd_fixture
    for name, f_want, c_want in (("TS1", (1500.07, 1500.66), (1017.38, 1043.06)),
                                 ("TS2", (1503.78, 1501.27), (1015.23, 1038.68))):
        s = t.sequences[name]
        f, c = fit_pinhole(s.poses_3d, s.poses_2d)
        assert np.allclose(f, f_want, atol=5) and np.allclose(c, c_want, atol=5), (name, f, c)


def test_as_h36m_maps_skeleton_root_and_camera_by_hand(hd_fixture):
    t, z = hd_fixture
    S, part = z["S"][..., :3] * 1000.0, z["part"][..., :2]
    # with the test set's own camera as the reference, the 2D is unchanged (up to the fit)
    f, c = fit_pinhole(t.sequences["TS1"].poses_3d, t.sequences["TS1"].poses_2d)
    rows = as_h36m(t, f, c)
    assert rows["x2d"].shape == (2, 16, 2) and rows["y"].shape == (2, 16, 3)
    assert list(rows["sequences"]) == ["TS1", "TS2"] and rows["universal"] is False
    # SH16 order: RFoot RKnee RHip LHip LKnee LFoot Hip Spine(thorax) Thorax(neck) Head(top) RWrist ...
    # 3DHP: right_ankle 10, right_knee 9, right_hip 8, pelvis 14, neck 1, head_top 0, right_wrist 4
    for sh, hp in ((0, 10), (1, 9), (2, 8), (6, 14), (8, 1), (9, 0), (10, 4)):
        assert np.allclose(rows["x2d"][0, sh], part[0, hp], atol=1e-3), (sh, hp)
    # y: the 16 non-root H36M17 joints minus the pelvis, mm: RHip (H36M 1) = 3DHP right_hip 8,
    # Thorax (H36M 8) = 3DHP neck 1, Head (H36M 10) = 3DHP head_top 0, RWrist (16) = right_wrist 4
    for h36m, hp in ((1, 8), (8, 1), (10, 0), (16, 4), (7, 15)):
        assert np.allclose(rows["y"][:, h36m - 1], S[:, hp] - S[:, 14], atol=1e-2), (h36m, hp)
    # another reference camera: normalised coordinates preserved
    rows2 = as_h36m(t, (1145.0, 1145.0), (500.0, 500.0))
    assert np.allclose((rows2["x2d"][0, 2] - 500.0) / 1145.0, (part[0, 8] - c) / f, atol=1e-4)


def test_pck_and_auc_by_hand():
    # 2 frames x 17 joints: errors of 0 mm on 20 joints, 100 mm on 10, 200 mm on 4
    gt = np.zeros((2, 17, 3))
    pred = gt.copy()
    err = np.array([0.0] * 20 + [100.0] * 10 + [200.0] * 4).reshape(2, 17)
    pred[..., 0] = err
    assert metrics.pck(pred, gt) == pytest.approx(100 * 30 / 34)
    # AUC: mean over the 31 thresholds 0, 5, ..., 150 of PCK(t): 20/34 below 100 mm, 30/34 from
    # 100 mm on (11 thresholds: 100, 105, ..., 150)
    assert metrics.auc(pred, gt) == pytest.approx(100 * (20 * 31 + 10 * 11) / (34 * 31))
    groups = ["TS1", "TS5"]
    by = metrics.pck_auc_by_group(pred, gt, groups, SCENES)
    assert set(by) == {"overall", "studio_gs", "outdoor"}            # no TS3/TS4 row: no such scene
    assert by["studio_gs"]["pck"] == pytest.approx(100.0)             # frame 0: 17 joints at 0 mm
    assert by["outdoor"]["pck"] == pytest.approx(100 * 13 / 17)        # frame 1: 3 x 0, 10 x 100, 4 x 200
    assert by["outdoor"]["auc"] == pytest.approx(100 * (3 * 31 + 10 * 11) / (17 * 31))
    assert by["overall"]["frames"] == 2 and by["studio_gs"]["frames"] == 1
    with pytest.raises(ValueError, match="groups has 1 entries for 2 poses"):
        metrics.pck_auc_by_group(pred, gt, ["TS1"], SCENES)


def test_scenes_follow_mehta_et_al():
    assert SCENES == {"studio_gs": ("TS1", "TS2"), "studio_no_gs": ("TS3", "TS4"), "outdoor": ("TS5", "TS6")}


def test_fixture_metric_path_end_to_end(hd_fixture):
    # the fixture through the whole Table 2 path: a prediction that is the truth moved by
    # 120 mm on every non-root joint of TS1 and 160 mm on those of TS2
    t, _ = hd_fixture
    rows = as_h36m(t, (1145.0, 1145.0), (500.0, 500.0))
    z = np.zeros((2, 1, 3), np.float32)
    gt = np.concatenate([z, rows["y"]], 1)
    pred = gt.copy()
    pred[0, 1:, 1] += 120.0
    pred[1, 1:, 2] -= 160.0
    by = metrics.pck_auc_by_group(pred, gt, rows["sequences"], SCENES)
    # 17 joints per frame, the root (aligned) exact: frame TS1 all 17 within 150, TS2 only its root
    assert by["overall"]["pck"] == pytest.approx(100 * 18 / 34)
    # AUC: the roots count at all 31 thresholds, TS1's 16 joints from 120 mm on (7 thresholds)
    assert by["overall"]["auc"] == pytest.approx(100 * (2 * 31 + 16 * 7) / (34 * 31))
    assert by["studio_gs"] == by["overall"]

"""MPII JSON loader: the mmpose fixture in ../shared/data (skipped when absent) and
synthetic bad inputs."""
import json

import numpy as np
import pytest

from geo.data import DataError
from geo.data.mpii import MPII16_NAMES, MPII16_PARENTS, MPII16_ROOT, MPII16_TO_SH16, load_mpii_json
from geo.skeleton import SH16_NAMES, SH16_PARENTS, SH16_ROOT

# MPII joint -> the SH16 name standing for it (SH Spine = MPII thorax, SH Thorax = upper neck).
SH_FOR_MPII = {
    "r_ankle": "RFoot", "r_knee": "RKnee", "r_hip": "RHip", "l_hip": "LHip", "l_knee": "LKnee",
    "l_ankle": "LFoot", "pelvis": "Hip", "thorax": "Spine", "upper_neck": "Thorax", "head_top": "Head",
    "r_wrist": "RWrist", "r_elbow": "RElbow", "r_shoulder": "RShoulder", "l_shoulder": "LShoulder",
    "l_elbow": "LElbow", "l_wrist": "LWrist",
}


def test_mpii_order_is_sh16_order():
    assert MPII16_TO_SH16 == tuple(range(16))
    assert [SH_FOR_MPII[MPII16_NAMES[i]] for i in MPII16_TO_SH16] == list(SH16_NAMES)
    assert MPII16_PARENTS == SH16_PARENTS and MPII16_ROOT == SH16_ROOT == 6


def _person(**over):
    e = {"image": "000000001.jpg", "center": [100.0, 200.0], "scale": 2.0,
         "joints": [[10.0 + j, 20.0 + 2 * j] for j in range(16)], "joints_vis": [1] * 16}
    e.update(over)
    return e


def _write(path, entries):
    path.write_text(json.dumps(entries))
    return path


def test_synthetic(tmp_path):
    j = [[10.0 + j, 20.0 + 2 * j] for j in range(16)]
    j[5] = [-1.0, -1.0]
    p = _write(tmp_path / "a.json", [_person(), _person(image="x.jpg", joints=j, joints_vis=[1] * 5 + [0] + [1] * 10)])
    a = load_mpii_json(p)
    assert len(a) == 2 and a.image_names == ("000000001.jpg", "x.jpg")
    assert a.joints.shape == (2, 16, 2) and a.visible.shape == (2, 16) and a.center.shape == (2, 2)
    assert a.joints[0, 15].tolist() == [25.0, 50.0] and a.scale.tolist() == [2.0, 2.0]
    assert a.visible[1].tolist() == [True] * 5 + [False] + [True] * 10
    z = load_mpii_json(p, zero_based=True)
    assert z.joints[0, 15].tolist() == [24.0, 49.0] and z.center[0].tolist() == [99.0, 199.0]
    assert z.joints[1, 5].tolist() == [-1.0, -1.0]  # unannotated joints are left as stored


def test_fixture(shared_data):
    path = shared_data / "fixtures" / "mpii" / "test_mpii.json"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    a = load_mpii_json(path)
    assert len(a) == 5
    assert a.image_names == ("005808361.jpg", "052475643.jpg", "051423444.jpg", "004645041.jpg", "060754485.jpg")
    assert a.joints.shape == (5, 16, 2) and a.joints.dtype == np.float32
    assert a.joints[0, 0].tolist() == [804.0, 711.0]
    np.testing.assert_allclose(a.joints[0, 9], [962.2409, 80.0306], atol=1e-3)
    assert a.center[0].tolist() == [966.0, 340.0] and a.scale[0] == pytest.approx(4.718488)
    # entries 2 and 3 lack both ankles, stored as (-1, -1)
    for i in range(5):
        missing = np.flatnonzero(~a.visible[i]).tolist()
        assert missing == ([0, 5] if i in (2, 3) else [])
        assert (a.joints[i, missing] == -1).all()
    # MPII order: head top above upper neck above thorax above pelvis (image y down)
    v = a.visible
    assert (a.joints[:, 9, 1] < a.joints[:, 8, 1]).all()
    assert (a.joints[:, 8, 1] < a.joints[:, 7, 1]).all() and (a.joints[:, 7, 1] < a.joints[:, 6, 1]).all()
    # pelvis between the hips
    mid = (a.joints[:, 2] + a.joints[:, 3]) / 2
    assert np.abs(a.joints[:, 6] - mid).max() < 30
    assert v[:, 6].all()


def test_trb_fixture_is_rejected(shared_data):
    path = shared_data / "fixtures" / "mpii" / "test_mpii_trb.json"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    with pytest.raises(DataError, match=r"test_mpii_trb.json: top level is a dict"):
        load_mpii_json(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.json\b.*not found.*MPII"):
        load_mpii_json(tmp_path / "nope.json")


def test_truncated(tmp_path):
    p = _write(tmp_path / "a.json", [_person(), _person()])
    p.write_text(p.read_text()[:-40])
    with pytest.raises(DataError, match=r"a.json: truncated or corrupt JSON"):
        load_mpii_json(p)


def test_wrong_joint_count(tmp_path):
    p = _write(tmp_path / "a.json", [_person(), _person(joints=[[1.0, 2.0]] * 15)])
    with pytest.raises(DataError, match=r"a.json\[1\]\['joints'\]: 15 joints; expected 16"):
        load_mpii_json(p)


def test_nan_values(tmp_path):
    j = [[10.0, 20.0]] * 16
    j[3] = [float("nan"), 5.0]
    p = _write(tmp_path / "a.json", [_person(joints=j)])
    with pytest.raises(DataError, match=r"a.json\[0\]\['joints'\]: 1 NaN/inf"):
        load_mpii_json(p)


def test_missing_key(tmp_path):
    e = _person()
    del e["joints_vis"]
    p = _write(tmp_path / "a.json", [e])
    with pytest.raises(DataError, match=r"a.json\[0\]: missing keys \['joints_vis'\]"):
        load_mpii_json(p)

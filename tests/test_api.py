"""The Python API: geo.Lifter.from_pretrained(...).lift(keypoints, layout) for the three
layouts users bring (geo.layouts), batched equals one by one."""
import numpy as np
import pytest

import geo
from geo import layouts
from geo.skeleton import SH16_NAMES


def sh16_pose():
    """A standing SH16 figure in pixels (y down)."""
    p = {"RFoot": (470, 900), "RKnee": (475, 750), "RHip": (480, 600), "LHip": (540, 600), "LKnee": (545, 750),
         "LFoot": (550, 900), "Hip": (510, 600), "Spine": (510, 420), "Thorax": (510, 380), "Head": (510, 300),
         "RWrist": (430, 620), "RElbow": (440, 520), "RShoulder": (465, 420), "LShoulder": (555, 420),
         "LElbow": (580, 520), "LWrist": (590, 620)}
    return np.array([p[n] for n in SH16_NAMES], np.float32)


def coco_of(sh):
    """COCO-17 keypoints consistent with an SH16 pose (face points around the head)."""
    n = {k: sh[i] for i, k in enumerate(SH16_NAMES)}
    c = np.zeros((17, 2), np.float32)
    c[[16, 14, 12, 11, 13, 15, 10, 8, 6, 5, 7, 9]] = [n["RFoot"], n["RKnee"], n["RHip"], n["LHip"], n["LKnee"],
                                                      n["LFoot"], n["RWrist"], n["RElbow"], n["RShoulder"],
                                                      n["LShoulder"], n["LElbow"], n["LWrist"]]
    c[0], c[1], c[2], c[3], c[4] = (510, 345), (520, 335), (500, 335), (530, 340), (490, 340)
    return c


def test_coco_mapping_weights_and_joints():
    W = layouts.matrix("coco17")
    assert W.shape == (16, 17) and np.allclose(W.sum(1), 1)
    sh = sh16_pose()
    got = layouts.to_sh16(coco_of(sh), "coco17")[0]
    for name in ("RFoot", "LWrist", "RShoulder", "LHip"):
        j = SH16_NAMES.index(name)
        assert np.allclose(got[j], sh[j]), name
    assert np.allclose(got[SH16_NAMES.index("Hip")], (sh[2] + sh[3]) / 2)
    assert got[SH16_NAMES.index("Head")][1] < got[SH16_NAMES.index("Thorax")][1] < got[SH16_NAMES.index("Spine")][1]
    assert np.allclose(layouts.to_sh16(sh, "sh16")[0], sh)
    with pytest.raises(ValueError, match=r"layout 'coco17': expected keypoints of shape \(N, 17, 2\)"):
        layouts.to_sh16(sh, "coco17")
    with pytest.raises(ValueError, match="layout 'openpose25'"):
        layouts.to_sh16(sh, "openpose25")
    bad = coco_of(sh)
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        layouts.to_sh16(bad, "coco17")


def test_lifter_from_pretrained_lifts_every_layout_batched():
    lf = geo.Lifter.from_pretrained("DG+AUG", device="cpu")
    sh = sh16_pose()
    batch = np.stack([sh, sh + 40, sh * 1.1])
    y = lf.lift(batch)
    assert y.shape == (3, 17, 3) and y.dtype == np.float32 and np.isfinite(y).all()
    assert np.allclose(y[:, 0], 0)                                       # root-relative
    one = np.concatenate([lf.lift(p) for p in batch])
    assert np.allclose(one, y, atol=1e-3)                                # batched equals one by one
    assert lf.lift(coco_of(sh), "coco17").shape == (1, 17, 3)
    from geo.wild import mapping_matrix

    mp = np.linalg.pinv(mapping_matrix()) @ sh                           # 33 landmarks that map back to sh
    assert np.allclose(lf.lift(mp, "mediapipe33"), lf.lift(sh), atol=1e-2)
    span = np.ptp(y[0], axis=0)
    assert 1000 < span[1] < 2200, span                                   # a standing adult is 1-2 m tall (mm)

"""MPI-INF-3DHP test-set loaders: synthetic official .mat files (v5 and v7.3/HDF5) and
the mmpose fixture in ../shared/data (skipped when absent)."""
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from geo.data import DataError
from geo.data.mpi_inf_3dhp import (
    THREEDHP17_NAMES, THREEDHP17_PARENTS, THREEDHP17_ROOT, THREEDHP17_TO_H36M17, THREEDHP28_TO_17,
    load_3dhp_mmpose, load_3dhp_official, threedhp17_to_h36m17,
)
from geo.skeleton import H36M17_NAMES, H36M17_PARENTS

F, C = 1500.0, (960.0, 540.0)  # inside both 2048x2048 and 1920x1080 frames
VALID = np.array([1, 0, 1, 1, 0, 1], np.float64)


def _synthetic(T=len(VALID), J=17, seed=0):
    """Distinct per-frame, per-joint values: (T, J, 3) mm and their (T, J, 2) projection."""
    rng = np.random.default_rng(seed)
    a3 = rng.normal(0, 150, (T, J, 3)) + np.array([0.0, 0.0, 4000.0])
    a3 += np.arange(T)[:, None, None] * 10.0
    a2 = F * a3[..., :2] / a3[..., 2:] + np.array(C)
    a2[2, 4] = (-30.0, 500.0)  # one joint outside the image in a valid frame
    return a2, a3


def _matlab(a):
    """(T, J, D) -> MATLAB dimension order (D, J, 1, T) as stored in annot_data.mat."""
    return np.ascontiguousarray(a.transpose(2, 1, 0)[:, :, None, :])


def _write_v5(path, a2, a3, valid=VALID, univ=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    d = {"annot2": _matlab(a2), "annot3": _matlab(a3), "valid_frame": valid[None, :],
         "univ_annot3": _matlab(a3 * 0.9 if univ is None else univ)}
    scipy.io.savemat(path, d, format="5")


def _write_v73(path, a2, a3, valid=VALID):
    """Like MATLAB -v7.3: HDF5 behind a 512-byte header, dimensions reversed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        f["annot2"] = _matlab(a2).T
        f["annot3"] = _matlab(a3).T
        f["univ_annot3"] = _matlab(a3 * 0.9).T
        f["valid_frame"] = valid[None, :].T
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: synthetic HDF5 schema 1.00 .")
    with h5py.File(path, "r") as f:
        assert f["annot2"].shape == (len(valid), 1, a2.shape[1], 2)


def _check_seq(seq, a2, a3, name):
    idx = np.flatnonzero(VALID)
    assert seq.name == name
    assert seq.poses_3d.shape == (4, 17, 3) and seq.poses_2d.shape == (4, 17, 2)
    assert seq.valid.tolist() == [0, 2, 3, 5]
    np.testing.assert_allclose(seq.poses_3d, a3[idx], rtol=1e-6)
    np.testing.assert_allclose(seq.poses_2d, a2[idx], rtol=1e-6)
    np.testing.assert_allclose(seq.poses_3d_univ, 0.9 * a3[idx], rtol=1e-6)
    assert seq.image_names[1] == f"{name}/imageSequence/img_000003.jpg"
    assert seq.visible.shape == (4, 17)
    assert not seq.visible[1, 4] and seq.visible.sum() == 4 * 17 - 1


# ---------------------------------------------------------------- joint tables


def test_joint_tables():
    assert THREEDHP17_NAMES[THREEDHP17_ROOT] == "pelvis"
    assert THREEDHP17_NAMES[:3] == ("head_top", "neck", "right_shoulder") and THREEDHP17_NAMES[16] == "head"
    assert sorted(THREEDHP17_TO_H36M17) == list(range(17))
    assert len(THREEDHP28_TO_17) == 17 and len(set(THREEDHP28_TO_17)) == 17
    # the mapping carries the H36M tree onto the 3DHP tree
    for j, p in enumerate(H36M17_PARENTS):
        want = -1 if p < 0 else THREEDHP17_TO_H36M17[p]
        assert THREEDHP17_PARENTS[THREEDHP17_TO_H36M17[j]] == want, H36M17_NAMES[j]
    # same sides and limbs
    for h, t in zip(H36M17_NAMES, (THREEDHP17_NAMES[i] for i in THREEDHP17_TO_H36M17)):
        if h[0] in "LR" and h != "Hip":
            assert t.startswith({"L": "left", "R": "right"}[h[0]]), (h, t)
    x = np.arange(17 * 3).reshape(1, 17, 3)
    assert threedhp17_to_h36m17(x)[0, 0].tolist() == x[0, 14].tolist()


# ---------------------------------------------------------------- official layout


def test_official_v5(tmp_path):
    a2, a3 = _synthetic()
    _write_v5(tmp_path / "TS5" / "annot_data.mat", a2, a3)
    ds = load_3dhp_official(tmp_path)
    assert list(ds.sequences) == ["TS5"] and len(ds) == 4 and ds.layout == "official"
    seq = ds.sequences["TS5"]
    _check_seq(seq, a2, a3, "TS5")
    assert seq.image_size == (1920, 1080)


def test_official_v73_hdf5(tmp_path):
    a2, a3 = _synthetic()
    b2, b3 = _synthetic(seed=1)
    root = tmp_path / "mpi_inf_3dhp_test_set"
    _write_v73(root / "TS1" / "annot_data.mat", a2, a3)
    _write_v73(root / "TS2" / "annot_data.mat", b2, b3)
    ds = load_3dhp_official(tmp_path)  # finds mpi_inf_3dhp_test_set/ below
    assert list(ds.sequences) == ["TS1", "TS2"] and Path(ds.source) == root
    _check_seq(ds.sequences["TS1"], a2, a3, "TS1")
    _check_seq(ds.sequences["TS2"], b2, b3, "TS2")
    assert ds.stacked("poses_3d").shape == (8, 17, 3)
    only = load_3dhp_official(root, sequences=["TS2"])
    assert list(only.sequences) == ["TS2"]
    np.testing.assert_array_equal(only.sequences["TS2"].poses_3d, ds.sequences["TS2"].poses_3d)


def test_official_v5_and_v73_agree(tmp_path):
    a2, a3 = _synthetic(seed=3)
    _write_v5(tmp_path / "v5" / "TS3" / "annot_data.mat", a2, a3)
    _write_v73(tmp_path / "v73" / "TS3" / "annot_data.mat", a2, a3)
    s5 = load_3dhp_official(tmp_path / "v5").sequences["TS3"]
    s73 = load_3dhp_official(tmp_path / "v73").sequences["TS3"]
    for k in ("poses_3d", "poses_2d", "valid", "visible", "poses_3d_univ"):
        np.testing.assert_array_equal(getattr(s5, k), getattr(s73, k))


def test_official_nan_in_invalid_frame_is_ignored(tmp_path):
    a2, a3 = _synthetic()
    a3[1, 0, 0] = np.nan  # frame 1 is not valid
    _write_v5(tmp_path / "TS1" / "annot_data.mat", a2, a3)
    assert np.isfinite(load_3dhp_official(tmp_path).sequences["TS1"].poses_3d).all()


# ---------------------------------------------------------------- bad inputs


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"folder not found.*TS1/annot_data.mat"):
        load_3dhp_official(tmp_path / "nope")


def test_folder_without_sequences(tmp_path):
    with pytest.raises(DataError, match=r"no TS\*/annot_data.mat found"):
        load_3dhp_official(tmp_path)


def test_missing_requested_sequence(tmp_path):
    a2, a3 = _synthetic()
    _write_v5(tmp_path / "TS1" / "annot_data.mat", a2, a3)
    with pytest.raises(DataError, match=r"TS4/annot_data.mat: file not found"):
        load_3dhp_official(tmp_path, sequences=["TS1", "TS4"])


@pytest.mark.parametrize("writer", [_write_v5, _write_v73])
def test_truncated_file(tmp_path, writer):
    a2, a3 = _synthetic()
    p = tmp_path / "TS1" / "annot_data.mat"
    writer(p, a2, a3)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"annot_data.mat: truncated or corrupt MATLAB file"):
        load_3dhp_official(tmp_path)


def test_missing_variable(tmp_path):
    p = tmp_path / "TS1" / "annot_data.mat"
    p.parent.mkdir()
    scipy.io.savemat(p, {"annot2": np.zeros((2, 17, 1, 3))})
    with pytest.raises(DataError, match=r"no 'annot3' variable"):
        load_3dhp_official(tmp_path)


@pytest.mark.parametrize("writer", [_write_v5, _write_v73])
def test_wrong_joint_count(tmp_path, writer):
    a2, a3 = _synthetic(J=16)
    writer(tmp_path / "TS1" / "annot_data.mat", a2, a3)
    with pytest.raises(DataError, match=r"'annot2' has 16 joints; expected 17"):
        load_3dhp_official(tmp_path)


def test_nan_values(tmp_path):
    a2, a3 = _synthetic()
    a3[2, 7, 1] = np.nan  # frame 2 is valid
    _write_v73(tmp_path / "TS1" / "annot_data.mat", a2, a3)
    with pytest.raises(DataError, match=r"annot_data.mat\[annot3\].*1 NaN/inf"):
        load_3dhp_official(tmp_path)


def test_frame_count_mismatch(tmp_path):
    a2, a3 = _synthetic()
    _write_v5(tmp_path / "TS1" / "annot_data.mat", a2, a3, valid=VALID[:-1])
    with pytest.raises(DataError, match=r"frame counts differ"):
        load_3dhp_official(tmp_path)


# ---------------------------------------------------------------- mmpose npz


def _npz(path, n=3, J=17, **over):
    rng = np.random.default_rng(0)
    S = np.concatenate([rng.normal(0, 0.3, (n, J, 3)) + [0, 0, 3.5], np.ones((n, J, 1))], -1)
    d = dict(imgname=np.array([f"TS{1 + i % 2}_{i + 10:06d}.jpg" for i in range(n)]),
             center=rng.normal(1000, 10, (n, 2)), scale=np.full(n, 4.0),
             part=np.concatenate([rng.normal(1000, 100, (n, J, 2)), np.ones((n, J, 1))], -1), S=S)
    d.update(over)
    np.savez(path, **d)
    return d


def test_mmpose_synthetic(tmp_path):
    d = _npz(tmp_path / "a.npz", n=3)
    ds = load_3dhp_mmpose(tmp_path / "a.npz")
    assert list(ds.sequences) == ["TS1", "TS2"] and ds.layout == "mmpose"
    ts1 = ds.sequences["TS1"]
    assert ts1.valid.tolist() == [9, 11]  # TS1_000010, TS1_000012 -> 0-based 9, 11
    np.testing.assert_allclose(ts1.poses_3d, d["S"][[0, 2], :, :3] * 1000, rtol=1e-6)
    np.testing.assert_allclose(ds.sequences["TS2"].poses_2d[0], d["part"][1, :, :2], rtol=1e-6)


def test_mmpose_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.npz\b.*not found.*MPI-INF-3DHP"):
        load_3dhp_mmpose(tmp_path / "nope.npz")


def test_mmpose_truncated(tmp_path):
    _npz(tmp_path / "a.npz")
    data = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "a.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"a.npz: truncated or corrupt npz"):
        load_3dhp_mmpose(tmp_path / "a.npz")


def test_mmpose_wrong_joint_count(tmp_path):
    _npz(tmp_path / "a.npz", J=16)
    with pytest.raises(DataError, match=r"a.npz\[part\]: 16 joints; expected 17"):
        load_3dhp_mmpose(tmp_path / "a.npz")


def test_mmpose_nan(tmp_path):
    d = _npz(tmp_path / "a.npz")
    S = d["S"].copy()
    S[1, 3, 2] = np.nan
    _npz(tmp_path / "a.npz", S=S)
    with pytest.raises(DataError, match=r"a.npz\[S\].*NaN"):
        load_3dhp_mmpose(tmp_path / "a.npz")


def test_mmpose_bad_imgname(tmp_path):
    _npz(tmp_path / "a.npz", imgname=np.array(["a.jpg", "b.jpg", "c.jpg"]))
    with pytest.raises(DataError, match=r"\[imgname\]\[0\]"):
        load_3dhp_mmpose(tmp_path / "a.npz")


def test_mmpose_fixture(shared_data):
    path = shared_data / "fixtures" / "mpi_inf_3dhp" / "test_3dhp_test.npz"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    ds = load_3dhp_mmpose(path)
    assert list(ds.sequences) == ["TS1", "TS2"] and len(ds) == 2
    ts1, ts2 = ds.sequences["TS1"], ds.sequences["TS2"]
    assert ts1.image_names == ("TS1_002001.jpg",) and ts1.valid.tolist() == [2000]
    assert ts2.valid.tolist() == [1849]
    assert ts1.poses_3d.shape == (1, 17, 3) and ts1.poses_2d.shape == (1, 17, 2)
    np.testing.assert_allclose(ts1.poses_3d[0, 0], [104.749, -991.479, 2756.24], atol=1e-3)  # mm
    np.testing.assert_allclose(ts1.poses_2d[0, 0], [1074.40, 503.148], atol=1e-3)
    np.testing.assert_allclose(ts1.center[0], [1044.7825, 915.444], atol=1e-3)
    assert ts1.scale[0] == pytest.approx(4.947552, abs=1e-5)
    # TS2 frame 1850: right and left wrists fall outside the image
    assert ts1.visible.all() and np.flatnonzero(~ts2.visible[0]).tolist() == [4, 7]
    for seq in (ts1, ts2):
        p3, p2 = seq.poses_3d[0].astype(np.float64), seq.poses_2d[0].astype(np.float64)
        assert 2000 < p3[14, 2] < 5000  # pelvis depth in mm
        # pelvis = midpoint of the hips (joint order check)
        np.testing.assert_allclose(p3[14], (p3[8] + p3[11]) / 2, atol=0.01)
        # head_top above head above neck above pelvis (y down in the camera frame)
        assert p3[0, 1] < p3[16, 1] < p3[1, 1] < p3[14, 1]
        # pinhole projection of poses_3d onto poses_2d, f fitted per axis
        for ax in (0, 1):
            A = np.stack([p3[:, ax] / p3[:, 2], np.ones(17)], 1)
            (f, c), *_ = np.linalg.lstsq(A, p2[:, ax], rcond=None)
            assert 1400 < f < 1600
            assert np.abs(A @ (f, c) - p2[:, ax]).max() < 3.0

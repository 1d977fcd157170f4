"""Loaders: the shared Human3.6M pack and original files (skipped when absent), the
embedded default, and bad inputs (synthetic files only, written to tmp_path)."""
import json

import numpy as np
import pytest

import geo.data
from geo.cameras import H36M_CAMERA_IDS
from geo.data import DataError
from geo.data.h36m import load_cameras, load_h36m, load_original, load_pack, read_pose_h5, read_sh_h5
from geo.skeleton import H36M17_NAMES, bone_lengths


# --------------------------------------------------------------------------- the shared pack
@pytest.fixture(scope="module")
def pack_s9(h36m_dir):
    return load_pack(h36m_dir, subjects=["S9"])


def test_pack_shapes_and_counts(pack_s9, h36m_dir):
    meta = json.loads((h36m_dir / "meta.json").read_text())
    ds = pack_s9
    assert ds.subjects == ["S9"] and list(ds.cameras) == ["S9"]
    assert sorted(ds.cameras["S9"]) == sorted(H36M_CAMERA_IDS)
    expected = {k.split("/", 1)[1]: v for k, v in meta["sequences"].items() if k.startswith("S9/")}
    assert sorted(ds.sequences["S9"]) == sorted(expected)
    n3 = n2 = 0
    for act, seq in ds.sequences["S9"].items():
        m = expected[act]
        if m["has_3d"]:
            assert seq.poses_3d.shape == (m["frames_3d_10hz"], 17, 3) and seq.poses_3d.dtype == np.float32
            n3 += len(seq.poses_3d)
        else:
            assert seq.poses_3d is None
        assert sorted(seq.poses_2d) == sorted(m["sh_cameras"])
        for cid, a in seq.poses_2d.items():
            assert a.shape == (m["frames_sh_10hz"][cid], 16, 2) and a.dtype == np.float32
            n2 += len(a)
    # totals in the pack's README
    assert n3 == 14724 and n2 == 63596
    assert "Discussion 1" in ds.sequences["S9"] and ds.sequences["S9"]["Discussion 1"].poses_3d is None


def test_load_by_path_detects_the_pack(h36m_dir):
    ds = geo.data.load(str(h36m_dir), subjects=["S11"])
    assert ds.subjects == ["S11"] and ds.fps == 10.0
    assert "54138969" not in ds.sequences["S11"]["Directions"].poses_2d  # damaged video, no SH


def test_original_layout_equals_pack(pack_s9, shared_data):
    root = shared_data / "h36m" / "original"
    ds = load_original(root, cameras_path=shared_data / "h36m" / "cameras.h5")
    assert ds.subjects == ["S9"] and list(ds.sequences["S9"]) == ["Walking 1"]
    got, ref = ds.sequences["S9"]["Walking 1"], pack_s9.sequences["S9"]["Walking 1"]
    np.testing.assert_array_equal(got.poses_3d, ref.poses_3d)
    assert sorted(got.poses_2d) == sorted(H36M_CAMERA_IDS)
    for cid in H36M_CAMERA_IDS:
        np.testing.assert_array_equal(got.poses_2d[cid], ref.poses_2d[cid])
    for cid, cam in ds.cameras["S9"].items():
        np.testing.assert_array_equal(cam.R, pack_s9.cameras["S9"][cid].R)
    assert ds.cameras["S9"]["55011271"].size == (1000, 1002)


# --------------------------------------------------------------------------- embedded default
@pytest.fixture(scope="module")
def embedded():
    return geo.data.load("embedded")


def test_embedded_default(embedded):
    ds = embedded
    assert ds.subjects == ["E1", "E2"] and ds.train_subjects == ("E1",) and ds.test_subjects == ("E2",)
    clips = {a: seq for s in ds.subjects for a, seq in ds.sequences[s].items()}
    assert len(clips) == 15
    assert sum(len(seq) for seq in clips.values()) == 1620
    thigh = H36M17_NAMES.index("RKnee") - 1  # bone_lengths drops the root: bone j-1 ends at joint j
    for name, seq in clips.items():
        assert seq.poses_3d.shape[1:] == (17, 3) and np.isfinite(seq.poses_3d).all(), name
        bl = bone_lengths(seq.poses_3d)
        assert np.all((bl[:, thigh] > 300) & (bl[:, thigh] < 600)), name
        assert np.all(bl > 20), name  # no collapsed bones
        assert len(seq.poses_2d) == 4
        for a in seq.poses_2d.values():
            assert a.shape == (len(seq), 16, 2) and np.isfinite(a).all()
            assert np.all((a > -200) & (a < 1200))  # on (or near) the 1000 x 1000 image
    walk = clips["walk"].poses_3d
    lower_foot = walk[:, [H36M17_NAMES.index("RFoot"), H36M17_NAMES.index("LFoot")], 2].min(1)
    assert np.all((lower_foot > -20) & (lower_foot < 150))  # one ankle near the floor in every frame
    head = walk[:, H36M17_NAMES.index("Head"), 2]
    assert np.all((head > 1400) & (head < 2100))  # standing upright


def test_embedded_detections_are_noisy_projections(embedded):
    seq = embedded.sequences["E2"]["walk"]
    from geo.skeleton import h36m17_to_sh16

    for cid, a in seq.poses_2d.items():
        x = h36m17_to_sh16(embedded.camera("E2", cid).project(seq.poses_3d.astype(np.float64), distort=False))
        err = np.linalg.norm(a - x, axis=-1)
        assert 2 < np.median(err) < 12  # noise_px = 5


# --------------------------------------------------------------------------- bad inputs
CAMS = dict(zip(("camera1", "camera2", "camera3", "camera4"), H36M_CAMERA_IDS))


def _write_cameras(path, subjects=(1,)):
    """A tiny synthetic cameras.h5 in the original layout."""
    import h5py

    with h5py.File(path, "w") as f:
        for s in subjects:
            for i, (grp, cid) in enumerate(CAMS.items()):
                g = f.create_group(f"subject{s}/{grp}")
                g["R"] = np.eye(3)
                g["T"] = np.array([[1000.0 * i], [-5000.0], [1500.0]])
                g["f"] = np.array([[1145.0], [1144.0]])
                g["c"] = np.array([[512.0], [515.0]])
                g["k"] = np.zeros((3, 1))
                g["p"] = np.zeros((2, 1))
                g["Name"] = np.array([[float(ord(ch))] for ch in cid])
    return path


def _write_pack(root, p3=None, p2=None):
    """A synthetic compact pack: cameras.h5, poses_3d.npz, detections_sh.npz."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    _write_cameras(root / "cameras.h5")
    if p3 is None:
        p3 = {"S1/Walking": rng.normal(0, 300, (7, 17, 3)).astype(np.float32)}
    if p2 is None:
        p2 = {f"S1/Walking/{cid}": rng.uniform(0, 1000, (7, 16, 2)).astype(np.float32) for cid in H36M_CAMERA_IDS}
    np.savez(root / "poses_3d.npz", **p3)
    np.savez(root / "detections_sh.npz", **p2)
    return root


def test_synthetic_pack_loads(tmp_path):
    ds = load_h36m(_write_pack(tmp_path / "pack"))
    assert ds.subjects == ["S1"] and sorted(ds.cameras["S1"]) == sorted(H36M_CAMERA_IDS)
    assert ds.sequences["S1"]["Walking"].poses_3d.shape == (7, 17, 3)


def test_missing_folder(tmp_path):
    missing = tmp_path / "no_such_h36m"
    with pytest.raises(DataError) as e:
        geo.data.load(str(missing))
    msg = str(e.value)
    assert str(missing) in msg
    assert "layout" in msg and "cameras.h5" in msg and "poses_3d.npz" in msg


def test_empty_folder_names_layout(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    _write_cameras(root / "cameras.h5")
    with pytest.raises(DataError) as e:
        load_original(root)
    assert str(root) in str(e.value) and "StackedHourglass" in str(e.value)


@pytest.mark.parametrize("name, damage, says", [
    ("poses_3d.npz", lambda b: b[: len(b) // 2], "npz"),                         # truncated
    ("cameras.h5", lambda b: b"this is not HDF5 at all\x00\x01\x02" * 50, ""),   # not HDF5
])
def test_a_damaged_pack_file_is_named(tmp_path, name, damage, says):
    root = _write_pack(tmp_path / "pack")
    f = root / name
    f.write_bytes(damage(f.read_bytes()))
    with pytest.raises(DataError) as e:
        load_pack(root)
    assert str(f) in str(e.value) and says in str(e.value)


@pytest.mark.parametrize("reader", [read_pose_h5, read_sh_h5])
def test_corrupt_original_h5(tmp_path, reader):
    f = tmp_path / "Walking 1.h5"
    f.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DataError) as e:
        reader(f)
    assert str(f) in str(e.value)


def test_wrong_joint_count(tmp_path):
    bad = {"S1/Walking": np.zeros((7, 15, 3), np.float32)}
    root = _write_pack(tmp_path / "pack", p3=bad)
    with pytest.raises(DataError) as e:
        load_pack(root)
    msg = str(e.value)
    assert str(root / "poses_3d.npz") in msg and "S1/Walking" in msg and "17" in msg and "(7, 15, 3)" in msg


def test_nan_values(tmp_path):
    p2 = {f"S1/Walking/{cid}": np.full((7, 16, 2), 500.0, np.float32) for cid in H36M_CAMERA_IDS}
    p2[f"S1/Walking/{H36M_CAMERA_IDS[2]}"][3, 4, 1] = np.nan
    root = _write_pack(tmp_path / "pack", p2=p2)
    with pytest.raises(DataError) as e:
        load_pack(root)
    msg = str(e.value)
    assert str(root / "detections_sh.npz") in msg and H36M_CAMERA_IDS[2] in msg and "NaN" in msg


def test_unknown_camera(tmp_path):
    p2 = {"S1/Walking/bogus": np.zeros((7, 16, 2), np.float32)}
    root = _write_pack(tmp_path / "pack", p2=p2)
    with pytest.raises(DataError) as e:
        load_pack(root)
    msg = str(e.value)
    assert str(root / "detections_sh.npz") in msg and "'bogus'" in msg and H36M_CAMERA_IDS[0] in msg


def test_unknown_subject(tmp_path):
    root = _write_pack(tmp_path / "pack")
    ds = load_pack(root)
    with pytest.raises(DataError) as e:
        ds.subset(["S1", "S42"])
    assert "'S42'" in str(e.value) and str(root) in str(e.value)
    with pytest.raises(DataError) as e:
        ds.camera("S42", H36M_CAMERA_IDS[0])
    assert "'S42'" in str(e.value) and str(root) in str(e.value)
    with pytest.raises(DataError) as e:
        ds.camera("S1", "bogus")
    assert "'bogus'" in str(e.value)
    assert ds.subset(["S1"]).subjects == ["S1"]


def test_subject_missing_from_cameras(tmp_path):
    """A pack whose detections name a subject that cameras.h5 lacks."""
    p3 = {"S5/Walking": np.zeros((7, 17, 3), np.float32)}
    root = _write_pack(tmp_path / "pack", p3=p3)
    with pytest.raises(DataError) as e:
        load_pack(root)
    assert "'S5'" in str(e.value) and str(root) in str(e.value)


def test_cameras_h5_missing_field(tmp_path):
    import h5py

    f = _write_cameras(tmp_path / "cameras.h5")
    with h5py.File(f, "a") as h:
        del h["subject1/camera2/k"]
    with pytest.raises(DataError) as e:
        load_cameras(f)
    assert str(f) in str(e.value) and "camera2" in str(e.value)


# --------------------------------------------------------------------------- 2D vs 3D lengths
def _p2(lengths):
    rng = np.random.default_rng(1)
    return {f"S1/Walking/{cid}": rng.uniform(0, 1000, (n, 16, 2)).astype(np.float32)
            for cid, n in zip(H36M_CAMERA_IDS, lengths)}


def test_pack_detections_much_shorter_than_3d(tmp_path):
    """Detections 3 frames short of the 3D (10 Hz) are fine (the shorter is used); 4 or
    more, shorter or longer, is a DataError naming both keys and both lengths."""
    from geo import regress
    from geo.pairs import collect_frames

    p3 = {"S1/Walking": np.random.default_rng(0).normal(0, 300, (20, 17, 3)).astype(np.float32)}
    ds = load_pack(_write_pack(tmp_path / "ok", p3=p3, p2=_p2([17, 20, 23, 18])))
    assert len(regress.make_split(ds, ["S1"], "sh")) == 17 + 20 + 20 + 18
    assert len(collect_frames(ds, ["S1"])[0]) == 17
    for n in (16, 24, 2):
        root = _write_pack(tmp_path / f"bad{n}", p3=p3, p2=_p2([20, 20, n, 20]))
        with pytest.raises(DataError) as e:
            load_pack(root)
        msg = str(e.value)
        assert f"{root / 'detections_sh.npz'}[S1/Walking/{H36M_CAMERA_IDS[2]}]" in msg, msg
        assert f"{root / 'poses_3d.npz'}[S1/Walking]" in msg and f"{n} frames" in msg and "20" in msg


def test_split_and_pairs_refuse_misaligned_sequences(tmp_path):
    """A Dataset built in memory (no loader check) is checked where 2D meets 3D."""
    from geo import regress
    from geo.data import Sequence
    from geo.pairs import collect_frames

    ds = load_pack(_write_pack(tmp_path / "pack"))            # 7 frames everywhere
    seq = ds.sequences["S1"]["Walking"]
    cid = H36M_CAMERA_IDS[1]
    ds.sequences["S1"]["Walking"] = Sequence(np.concatenate([seq.poses_3d] * 3), dict(seq.poses_2d))
    for f in (lambda: regress.make_split(ds, ["S1"], "sh"), lambda: collect_frames(ds, ["S1"])):
        with pytest.raises(DataError) as e:
            f()
        msg = str(e.value)
        assert "S1/Walking" in msg and "21" in msg and "7 frames" in msg and str(tmp_path) in msg, msg
    assert len(regress.make_split(ds, ["S1"], "gt")) == 4 * 21   # ground-truth 2D: no detections involved
    assert cid in ds.sequences["S1"]["Walking"].poses_2d


def test_original_layout_detections_much_shorter_than_3d(tmp_path):
    """The original layout (50 Hz files, stride 5): the check names both files."""
    import h5py

    root = tmp_path / "orig"
    (root / "S1" / "MyPoses" / "3D_positions").mkdir(parents=True)
    (root / "S1" / "StackedHourglass").mkdir(parents=True)
    _write_cameras(root / "cameras.h5")
    rng = np.random.default_rng(0)
    f3 = root / "S1" / "MyPoses" / "3D_positions" / "Walking 1.h5"
    with h5py.File(f3, "w") as h:
        h["3D_positions"] = rng.normal(0, 300, (96, 100))           # 100 frames at 50 Hz -> 20
    for cid in H36M_CAMERA_IDS:
        with h5py.File(root / "S1" / "StackedHourglass" / f"Walking_1.{cid}.h5", "w") as h:
            h["poses"] = rng.uniform(0, 1000, (88, 16, 2))            # -> 18: fine
    ds = load_original(root)
    assert len(ds.sequences["S1"]["Walking 1"].poses_3d) == 20
    bad = root / "S1" / "StackedHourglass" / f"Walking_1.{H36M_CAMERA_IDS[3]}.h5"
    with h5py.File(bad, "w") as h:
        h["poses"] = rng.uniform(0, 1000, (50, 16, 2))                # -> 10
    with pytest.raises(DataError) as e:
        load_original(root)
    msg = str(e.value)
    assert str(bad) in msg and str(f3) in msg and "10 frames" in msg and "20" in msg, msg


# --------------------------------------------------------------------------- finite as float32, cameras
def test_values_beyond_float32_are_refused(tmp_path):
    """1e39 in a float64 npz is finite, but inf as the float32 it loads as: refused."""
    p3 = {"S1/Walking": np.random.default_rng(0).normal(0, 300, (7, 17, 3))}   # float64
    p3["S1/Walking"][2, 3, 1] = 1e39
    root = _write_pack(tmp_path / "pack", p3=p3)
    with pytest.raises(DataError) as e:
        load_pack(root)
    msg = str(e.value)
    assert f"{root / 'poses_3d.npz'}[S1/Walking]" in msg and "float32" in msg, msg
    with pytest.raises(DataError, match="float32"):
        geo.data.check_array(np.full((2, 16, 2), -1e300), (16, 2), "x.npz[k]", "2D")
    ok = geo.data.check_array(np.full((2, 16, 2), 3e38), (16, 2), "x.npz[k]", "2D")
    assert ok.dtype == np.float32 and np.isfinite(ok).all()


@pytest.mark.parametrize("field,value,words", [
    ("f", np.array([[1145.0], [np.nan]]), ("f", "NaN")),
    ("T", np.array([[np.inf], [0.0], [0.0]]), ("T", "NaN/inf")),
    ("k", np.array([[0.0], [np.nan], [0.0]]), ("k", "NaN")),
    ("f", np.array([[1145.0], [0.0]]), ("f", "> 0")),
    ("f", np.array([[-1145.0], [1144.0]]), ("f", "> 0")),
    ("R", np.diag([1.0, 1.0, -1.0]), ("R", "det")),                 # a reflection
    ("R", np.eye(3) * 1.01, ("R", "rotation")),                       # not orthonormal
    ("R", np.array([[1.0, 0.01, 0], [0, 1, 0], [0, 0, 1]]), ("R", "rotation")),
])
def test_bad_cameras_refused_at_load(tmp_path, field, value, words):
    import h5py

    f = _write_cameras(tmp_path / "cameras.h5")
    with h5py.File(f, "a") as h:
        del h[f"subject1/camera3/{field}"]
        h[f"subject1/camera3/{field}"] = value
    with pytest.raises(DataError) as e:
        load_cameras(f)
    msg = str(e.value)
    assert str(f) in msg and "camera3" in msg and H36M_CAMERA_IDS[2] in msg, msg
    assert all(w in msg for w in words), msg


def test_nearly_orthonormal_camera_accepted(tmp_path):
    """Rounding in a stored rotation (well within 1e-3) is accepted."""
    import h5py

    f = _write_cameras(tmp_path / "cameras.h5")
    c, s = np.cos(0.3), np.sin(0.3)
    with h5py.File(f, "a") as h:
        del h["subject1/camera1/R"]
        h["subject1/camera1/R"] = np.round(np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]), 5)
    assert load_cameras(f)["S1"][H36M_CAMERA_IDS[0]].R.shape == (3, 3)


@pytest.mark.parametrize("which,key", [("p3", "S1Walking"), ("p3", "S1/"), ("p2", "S1/Walking"),
                                       ("p2", "S1/Walking/x/y")])
def test_pack_key_without_its_parts(tmp_path, which, key):
    """A pack key that is not '<subject>/<action>[/<camera>]' is a DataError naming the file
    and the key (it was a raw 'not enough values to unpack')."""
    rng = np.random.default_rng(0)
    kw = {"p3": {key: rng.normal(0, 300, (7, 17, 3)).astype(np.float32)}} if which == "p3" else \
         {"p2": {key: rng.uniform(0, 1000, (7, 16, 2)).astype(np.float32)}}
    root = _write_pack(tmp_path / "pack", **kw)
    with pytest.raises(DataError) as e:
        load_pack(root)
    name = "poses_3d.npz" if which == "p3" else "detections_sh.npz"
    assert str(root / name) in str(e.value) and repr(key) in str(e.value)

"""Arguments and loaded values are checked before any work: a bad command-line value is
refused with exit 2 naming it, and a loaded file with values out of range, of the wrong
kind or shape, or that cannot be read safely is a DataError / WeightsError naming it."""
import json
import os
import struct
import zlib

import numpy as np
import pytest

import geo.__main__ as cli
from geo.cameras import H36M_CAMERA_IDS
from geo.data import DataError
from geo.data.h36m import load_cameras, load_original, load_pack
from test_data import _write_cameras as write_cameras, _write_pack as write_pack


pytestmark = pytest.mark.usefixtures("no_heavy_work")   # tests/conftest.py


def _fails(capsys, argv, *words):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("geo: error:") and all(w in err for w in words), err


# ------------------------------------------------------------------------ command line
@pytest.mark.parametrize("flag,value", [("--lr", "inf"), ("--lr", "nan"), ("--lr", "-inf"),
                                        ("--seed", "12345678901234567890"), ("--seed", "-1")])
def test_train_values_are_checked_before_the_data_loads(capsys, tmp_path, flag, value):
    _fails(capsys, ["train", "--variant", "SG", "--out", str(tmp_path / "o"), f"{flag}={value}"], flag)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("cmd", [["train", "--variant", "SG"], ["full-gpu", "--data", "embedded"], ["lift", "x.png"]])
def test_out_that_cannot_be_a_folder(capsys, tmp_path, cmd):
    (tmp_path / "afile").write_text("x")
    _fails(capsys, cmd + ["--out", str(tmp_path / "afile")], "--out", "file")
    _fails(capsys, cmd + ["--out", str(tmp_path / "afile" / "sub")], "--out", "file")
    if cmd[0] != "lift":
        _fails(capsys, cmd + ["--out", ""], "--out", "empty")


def test_full_gpu_budget_nan_and_inf(capsys, tmp_path):
    for v in ("nan", "inf"):
        _fails(capsys, ["full-gpu", "--data", "embedded", "--out", str(tmp_path / "o"), "--budget-s", v], "--budget-s")


@pytest.mark.parametrize("cmd", [["reproduce"], ["full-gpu", "--out", "OUT"], ["train", "--variant", "SG", "--out", "OUT"]])
def test_data_folder_without_human36m_is_refused_at_once(capsys, tmp_path, cmd):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("not Human3.6M")
    cmd = [str(tmp_path / "o") if c == "OUT" else c for c in cmd]
    _fails(capsys, cmd + ["--data", str(tmp_path / "d")], str(tmp_path / "d"), "cameras.h5")


# ------------------------------------------------------------------------ loaded values
def test_pack_with_only_empty_sequences(tmp_path):
    p3 = {"S1/Walking": np.zeros((0, 17, 3), np.float32)}
    p2 = {f"S1/Walking/{c}": np.zeros((0, 16, 2), np.float32) for c in H36M_CAMERA_IDS}
    root = write_pack(tmp_path / "pack", p3=p3, p2=p2)
    with pytest.raises(DataError, match="zero frames") as e:
        load_pack(root)
    assert str(root) in str(e.value)


def test_absurd_finite_pixels_are_refused(tmp_path):
    p2 = {f"S1/Walking/{c}": np.full((7, 16, 2), 1e30, np.float32) for c in H36M_CAMERA_IDS}
    root = write_pack(tmp_path / "pack", p2=p2)
    with pytest.raises(DataError, match="values up to 1e") as e:
        load_pack(root)
    assert "detections_sh.npz" in str(e.value)


@pytest.mark.parametrize("field,value,words", [
    ("Name", np.array([[1e12]] * 8), ("Name", "character codes")),
    ("Name", np.array([[np.nan]] * 8), ("Name", "character codes")),
    ("k", np.zeros((5, 1)), ("malformed", "k")),
    ("c", np.zeros((3, 1)), ("malformed", "c")),
    ("p", np.zeros((1, 1)), ("malformed", "p")),
    ("R", "GROUP", ("R", "Group")),
])
def test_malformed_camera_fields(tmp_path, field, value, words):
    import h5py

    f = write_cameras(tmp_path / "cameras.h5")
    with h5py.File(f, "a") as h:
        del h[f"subject1/camera2/{field}"]
        if isinstance(value, str):
            h.create_group(f"subject1/camera2/{field}")
        else:
            h[f"subject1/camera2/{field}"] = value
    with pytest.raises(DataError) as e:
        load_cameras(f)
    msg = str(e.value)
    assert str(f) in msg and "camera2" in msg and all(w in msg for w in words), msg


def _original(root, names):
    import h5py

    rng = np.random.default_rng(0)
    (root / "S1" / "MyPoses" / "3D_positions").mkdir(parents=True)
    (root / "S1" / "StackedHourglass").mkdir(parents=True)
    write_cameras(root / "cameras.h5")
    with h5py.File(root / "S1" / "MyPoses" / "3D_positions" / "Walking 1.h5", "w") as h:
        h["3D_positions"] = rng.normal(0, 300, (96, 50))
    for name in names:
        for cid in H36M_CAMERA_IDS:
            with h5py.File(root / "S1" / "StackedHourglass" / f"{name}.{cid}.h5", "w") as h:
                h["poses"] = rng.uniform(0, 1000, (50, 16, 2))
    return root


def test_original_layout_skips_dot_files_and_refuses_fifos_and_clashes(tmp_path):
    root = _original(tmp_path / "a", ["Walking_1"])
    (root / "S1" / "MyPoses" / "3D_positions" / "._Walking 1.h5").write_bytes(b"\0\5\26\7macOS resource fork")
    assert list(load_original(root).sequences["S1"]) == ["Walking 1"]
    fifo = root / "S1" / "StackedHourglass" / "Sitting.54138969.h5"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        load_original(root)       # named, instead of blocking on open() forever
    fifo.unlink()
    root = _original(tmp_path / "b", ["Walking_1", "Walking 1"])
    with pytest.raises(DataError, match="Walking 1.*Walking_1|Walking_1.*Walking 1"):
        load_original(root)


def test_pack_files_that_are_fifos_are_named(tmp_path):
    root = write_pack(tmp_path / "pack")
    (root / "poses_3d.npz").unlink()
    os.mkfifo(root / "poses_3d.npz")
    with pytest.raises(DataError, match="poses_3d.npz: not a regular file"):
        load_pack(root)
    (root / "cameras.h5").unlink()
    os.mkfifo(root / "cameras.h5")
    with pytest.raises(DataError, match="cameras.h5: not a regular file"):
        load_cameras(root / "cameras.h5")


def test_3dhp_npz_already_in_mm_is_refused(tmp_path):
    from geo.data.mpi_inf_3dhp import load_3dhp_mmpose

    n, J = 3, 17
    rng = np.random.default_rng(0)
    S = np.concatenate([rng.normal(0, 300, (n, J, 3)) + [0, 0, 3500], np.ones((n, J, 1))], -1)   # mm, not m
    np.savez(tmp_path / "a.npz", imgname=np.array([f"TS1_{i + 10:06d}.jpg" for i in range(n)]),
             center=rng.normal(1000, 10, (n, 2)), scale=np.full(n, 4.0),
             part=np.concatenate([rng.normal(1000, 100, (n, J, 2)), np.ones((n, J, 1))], -1), S=S)
    with pytest.raises(DataError, match=r"a\.npz\[S\].*metres"):
        load_3dhp_mmpose(tmp_path / "a.npz")


# ------------------------------------------------------------------------ weight sidecars
@pytest.mark.parametrize("side", [[1, 2], {"variant": "X", "config": {}}, {"variant": "X", "config": {},
                                  "files": {"X.phi.pt": "abc"}}, {"variant": "X", "config": {"generator": {"width": "wide"}},
                                  "files": {"X.phi.pt": {"sha256": "SHA", "bytes": 3, "part": "phi"}}}])
def test_malformed_weight_sidecars(tmp_path, side):
    import hashlib

    from geo.weights import WeightsError, load_parts

    (tmp_path / "X.phi.pt").write_bytes(b"abc")
    text = json.dumps(side).replace("SHA", hashlib.sha256(b"abc").hexdigest())
    (tmp_path / "X.json").write_text(text)
    with pytest.raises(WeightsError, match="X.json"):
        load_parts("X", tmp_path)


def test_garbage_weight_file_with_a_matching_hash(tmp_path):
    import hashlib

    from geo.weights import WeightsError, load_parts

    (tmp_path / "X.phi.pt").write_bytes(b"abc")
    (tmp_path / "X.json").write_text(json.dumps({"variant": "X", "config": {}, "files": {
        "X.phi.pt": {"sha256": hashlib.sha256(b"abc").hexdigest(), "bytes": 3, "part": "phi"}}}))
    with pytest.raises(WeightsError, match="X.phi.pt.*not a torch file"):
        load_parts("X", tmp_path)


def test_weights_of_another_width_and_regressor_fields(tmp_path):
    import io

    import torch

    from geo import lift
    from geo.train import build, config_for
    from geo.weights import WeightsError, load_parts, save

    wide = config_for("SG", "quick", generator=dict(width=8, points=8))
    save(build(wide, "cpu"), wide, dir=tmp_path, steps=1)
    side = json.loads((tmp_path / "SG.json").read_text())
    side["config"]["generator"]["width"] = 4          # the files are of width 8
    (tmp_path / "SG.json").write_text(json.dumps(side))
    with pytest.raises(WeightsError, match="SG.phi.pt.*state dict"):
        load_parts("SG", tmp_path)
    buf = io.BytesIO()
    torch.save({"regressor": {"bogus": 1}, "state": {}, "fit": {}, "x_stats": {}, "y_stats": []}, buf)
    with pytest.raises(WeightsError, match="R.pt.*not a geo.lift regressor"):
        lift._unblob(buf.getvalue(), tmp_path / "R.pt")


# ------------------------------------------------------------------------ geo lift
def test_same_stem_in_two_folders_gets_two_outputs():
    from geo.lift import output_stems

    assert output_stems(["a/x.jpg", "b/x.png", "c/x-2.jpg", "y.jpg"]) == ["x", "x-2", "x-2-2", "y"]


def _png_header(w, h) -> bytes:
    """A PNG whose header says ``w`` x ``h`` (the pixel data is never reached)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_an_image_that_decodes_to_gigapixels_is_refused_unread(tmp_path):
    from geo import wild

    (tmp_path / "bomb.png").write_bytes(_png_header(20000, 20000))
    with pytest.raises(wild.WildError, match="bomb.png.*megapixels"):
        wild.read_image(tmp_path / "bomb.png")
    (tmp_path / "big.png").write_bytes(_png_header(9000, 9000))   # under Pillow's limit, over ours
    with pytest.raises(wild.WildError, match="big.png: 9000 x 9000 pixels"):
        wild.read_image(tmp_path / "big.png")


# ------------------------------------------------------------------------ files drawn or resumed
def test_reproduce_checks_precomputed_json_before_any_notebook(capsys, tmp_path):
    (tmp_path / "fig5.json").write_text(json.dumps({"fig5": {}, "meta": {"data": "/x/h36m", "profile": "full"}}))
    _fails(capsys, ["reproduce", "--precomputed", str(tmp_path)], "--precomputed", "fig5.json", "tracked figures")
    (tmp_path / "fig5.json").write_text(json.dumps({"fig5": {}, "meta": {"data": "embedded", "profile": "../x"}}))
    _fails(capsys, ["reproduce", "--precomputed", str(tmp_path)], "fig5.json", "meta.profile")
    (tmp_path / "fig5.json").write_text(json.dumps([1]))
    _fails(capsys, ["reproduce", "--precomputed", str(tmp_path)], "fig5.json", "no 'fig5' entry")


def test_checkpoint_of_plain_data_but_another_shape(tmp_path):
    import torch

    from geo.train import CheckpointError, load_checkpoint

    torch.save({"config": {"variant": 3, "generator": []}, "models": {}}, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="last.pt"):
        load_checkpoint(tmp_path)


def test_weight_sidecar_with_steps_of_the_wrong_type(tmp_path):
    from geo.train import config_for
    from geo.weights import WeightsError, find

    cfg = config_for("SG", "quick")
    (tmp_path / "SG.json").write_text(json.dumps({"variant": "SG", "config": {}, "steps": "many", "files": {
        "SG.phi.pt": {"sha256": "0" * 64, "bytes": 3, "part": "phi"}}}))
    with pytest.raises(WeightsError, match="SG.json.*steps"):
        find(cfg, "embedded", tmp_path)

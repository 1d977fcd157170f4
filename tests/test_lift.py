"""geo.lift and `python -m geo lift`: regressor files, the committed lifter, the command on
the image fixtures (with and without the optional 2D estimator)."""
import hashlib
import json
import sys

import numpy as np
import pytest

import geo.__main__ as cli
from geo import lift as L
from geo import regress, wild
from geo.weights import WeightsError, weights_dir

MPII = ("004645041.jpg", "005808361.jpg", "051423444.jpg", "052475643.jpg", "060754485.jpg")


def _tiny_fitted(din=192, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(64, din // 3, 3)).astype(np.float32)
    y = rng.normal(size=(64, 16, 3)).astype(np.float32) * 100
    d = {"x2d": np.zeros((64, 16, 2), np.float32), "g": g, "y": y}
    out = regress.fit_many([regress.FitConfig("fc", False, True, steps=5, hidden=16, profile="quick")], d, d,
                           [np.arange(64)]).fitted
    return out[0], g


def test_fitted_predicts_what_fit_many_predicted():
    rng = np.random.default_rng(1)
    tr = {"x2d": rng.normal(300, 50, (96, 16, 2)).astype(np.float32), "g": rng.normal(5, 2, (96, 8, 3)).astype(np.float32),
          "y": rng.normal(0, 300, (96, 16, 3)).astype(np.float32)}
    te = {k: v[:20] + 1 for k, v in tr.items()}
    for use_2d, use_g in ((False, True), (True, True)):
        fits = regress.fit_many([regress.FitConfig("fc", use_2d, use_g, steps=30, hidden=32, profile="quick")], tr, te,
                                [np.arange(96)])
        pred, out = fits[0], fits.fitted
        again = out[0].predict(x2d=te["x2d"] if use_2d else None, g=te["g"])
        assert np.allclose(again, pred, atol=1e-3), np.abs(again - pred).max()   # same normalisation both ways
    with pytest.raises(ValueError, match="x2d"):
        out[0].predict(g=te["g"])


def test_fill_missing_puts_unannotated_joints_on_their_parent():
    x = np.arange(32, dtype=np.float32).reshape(16, 2)
    vis = np.ones(16, bool)
    vis[[0, 5]] = False                    # both ankles unannotated (MPII fixture 004645041)
    f = L.fill_missing(x, vis)
    assert np.allclose(f[0], x[1]) and np.allclose(f[5], x[4]) and np.allclose(f[vis], x[vis])
    vis[[0, 1]] = False                    # ankle and knee: the ankle goes to the hip
    assert np.allclose(L.fill_missing(x, vis)[0], x[2])


def test_regressor_file_round_trip_and_tamper(tmp_path):
    fitted, g = _tiny_fitted()
    paths = L.save(fitted, tmp_path / "X.regressor.pt", note="t")
    assert [p.name for p in paths] == ["X.regressor.pt", "X.regressor.json"]
    back, meta = L.load(tmp_path / "X.regressor.pt")
    assert meta["note"] == "t" and meta["dtype"] == "bfloat16"
    a, b = fitted.predict(g=g), back.predict(g=g)
    assert np.abs(a - b).max() < 0.02 * np.abs(a).max()       # bf16 weights, same network
    blob = bytearray((tmp_path / "X.regressor.pt").read_bytes())
    blob[-10] ^= 1
    (tmp_path / "X.regressor.pt").write_bytes(bytes(blob))
    with pytest.raises(WeightsError, match=r"X\.regressor\.pt: sha256"):
        L.load(tmp_path / "X.regressor.pt")


def test_committed_lifter_refuses_another_encoder(tmp_path):
    src = weights_dir()
    for f in ("DG_AUG.json", "DG_AUG.phi.pt", "DG_AUG.psi.pt", "DG_AUG.mu.pt", "DG_AUG.nu.pt"):
        (tmp_path / f).symlink_to(src / f)
    fitted, _ = _tiny_fitted()
    with pytest.raises(WeightsError, match="no committed regressor"):
        L.load_committed("DG+AUG", tmp_path)
    L.save(fitted, L.regressor_path("DG+AUG", tmp_path), encoder_sha256="0" * 64)
    with pytest.raises(WeightsError, match="trained on the encoder"):
        L.load_committed("DG+AUG", tmp_path)
    L.save(fitted, L.regressor_path("DG+AUG", tmp_path), encoder_sha256=L.encoder_sha("DG+AUG", tmp_path))
    lf = L.load_committed("DG+AUG", tmp_path)
    x = np.random.default_rng(0).uniform(0, 200, (2, 16, 2)).astype(np.float32)
    p = lf(x)
    assert p.shape == (2, 17, 3) and np.allclose(p[:, 0], 0) and np.isfinite(p).all()


@pytest.fixture(scope="module")
def committed():
    if not L.regressor_path("DG+AUG").exists():
        pytest.skip(f"{L.regressor_path('DG+AUG')} absent: build it with geo.lift.persist")
    return L.load_committed("DG+AUG")


@pytest.fixture(scope="module")
def mpii(shared_data):
    from geo.data.mpii import load_mpii_json

    return shared_data / "fixtures" / "mpii", load_mpii_json(shared_data / "fixtures/mpii/test_mpii.json",
                                                             zero_based=True)


def test_committed_lifter_gives_human_sized_poses(committed, mpii):
    from geo.skeleton import bone_lengths

    _, ann = mpii
    x = np.stack([L.fill_missing(j, v) for j, v in zip(ann.joints, ann.visible)])
    p = committed(x)
    assert np.allclose(p[:, 0], 0)
    thigh = bone_lengths(p)[:, [1, 4]]    # RHip-RKnee, LHip-LKnee (mm): metres or unnormalised fail
    assert (thigh > 250).all() and (thigh < 650).all(), thigh
    assert committed.meta["train_subjects"] == ["S1", "S5", "S6", "S7", "S8"]


def test_cli_lifts_annotated_fixtures_and_reports_bad_files(committed, mpii, tmp_path, capsys):
    d, _ = mpii
    bad = tmp_path / "broken.jpg"
    bad.write_text("not an image")
    out = tmp_path / "out"
    rc = cli.main(["lift", *[str(d / m) for m in MPII], str(bad), str(tmp_path / "missing.png"),
                   "--annotations", str(d / "test_mpii.json"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "broken.jpg: not a decodable image" in err and "missing.png: no such file" in err, err
    for m in MPII:                        # the good images all finished
        stem = m[:-4]
        assert (out / f"{stem}.png").stat().st_size > 1000
        r = json.loads((out / f"{stem}.json").read_text())
        xyz = np.array(r["joints_3d_mm"]["xyz"])
        assert xyz.shape == (17, 3) and np.allclose(xyz[0], 0)
        assert r["meta"]["encoder_sha256"] == L.encoder_sha("DG+AUG")
        assert r["meta"]["regressor_sha256"] == committed.meta["sha256"]
    assert not (out / "broken.png").exists()


def test_cli_without_the_extra_says_how_to_install(monkeypatch, tmp_path, capsys, shared_data):
    monkeypatch.setitem(sys.modules, "mediapipe", None)          # as in CI: extra not installed
    img = shared_data / "fixtures/mpii" / MPII[0]
    rc = cli.main(["lift", str(img), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "pip install -e .[wild]" in err, err
    assert not (tmp_path / "o").exists()


def test_cli_with_the_estimator(committed, shared_data, tmp_path, capsys):
    if not wild.available():
        pytest.skip("mediapipe is not installed (optional extra: pip install -e .[wild]); CI runs without it")
    import cv2

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 255, np.uint8))
    imgs = sorted((shared_data / "fixtures" / "h36m").glob("**/*.jpg"))[:2] + [blank]
    rc = cli.main(["lift", *map(str, imgs), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 1 and "blank.png: no person found" in err, err
    for p in imgs[:2]:
        r = json.loads((tmp_path / "o" / f"{p.stem}.json").read_text())
        assert r["source_2d"].startswith("MediaPipe") and np.array(r["joints_3d_mm"]["xyz"]).shape == (17, 3)


def test_a_write_error_costs_one_image_and_same_names_get_their_own_outputs(committed, mpii, tmp_path, capsys,
                                                                            monkeypatch):
    """A failed write is reported for its image and the batch goes on; two inputs of one
    file name in different folders write to different outputs."""
    d, _ = mpii
    other = tmp_path / "other"
    other.mkdir()
    (other / MPII[0]).write_bytes((d / MPII[0]).read_bytes())
    real, calls = L.commit, []

    def full_disk_once(parts, side, make):
        calls.append(side)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real(parts, side, make)

    monkeypatch.setattr(L, "commit", full_disk_once)
    failed = L.lift_images([d / MPII[1], d / MPII[0], other / MPII[0]], tmp_path / "out",
                           annotations=d / "test_mpii.json", progress=False)
    err = capsys.readouterr().err
    assert failed == 1 and f"{MPII[1]}: cannot write" in err and "No space left" in err, err
    stem = MPII[0][:-4]
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {f"{stem}.json", f"{stem}.png", f"{stem}-2.json", f"{stem}-2.png"} <= names, names
    assert not [n for n in names if n.startswith(MPII[1][:-4])]
    assert json.loads((tmp_path / "out" / f"{stem}-2.json").read_text())["image"] == str(other / MPII[0])


def test_cli_takes_folders_patterns_a_variant_and_no_png(committed, mpii, tmp_path, capsys):
    d, _ = mpii
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for m in MPII:
        (imgs / m).write_bytes((d / m).read_bytes())
    (imgs / "notes.txt").write_text("not an image, and not looked at")
    out = tmp_path / "out"
    rc = cli.main(["lift", str(imgs), "--annotations", str(d / "test_mpii.json"), "--out", str(out),
                   "--variant", "SG+AUG", "--no-png"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.json")) == sorted(m[:-4] + ".json" for m in MPII)
    assert not list(out.glob("*.png"))
    r = json.loads((out / f"{MPII[0][:-4]}.json").read_text())
    assert r["meta"]["variant"] == "SG+AUG" and r["meta"]["encoder_sha256"] == L.encoder_sha("SG+AUG")
    assert [p.name for p in L.expand_inputs([str(imgs / "*.jpg")])] == sorted(m for m in MPII if m.endswith(".jpg"))
    rc = cli.main(["lift", str(tmp_path / "nothing-*.jpg"), "--annotations", str(d / "test_mpii.json"),
                   "--out", str(out)])
    assert rc == 2 and "nothing-*.jpg: no image files there" in capsys.readouterr().err


def _person(shift=0.0):
    """SH16 joints of a standing figure that fits a 64 x 64 frame (px, y down)."""
    from geo.skeleton import SH16_NAMES

    p = {"RFoot": (470, 900), "RKnee": (475, 750), "RHip": (480, 600), "LHip": (540, 600), "LKnee": (545, 750),
         "LFoot": (550, 900), "Hip": (510, 600), "Spine": (510, 420), "Thorax": (510, 380), "Head": (510, 300),
         "RWrist": (430, 620), "RElbow": (440, 520), "RShoulder": (465, 420), "LShoulder": (555, 420),
         "LElbow": (580, 520), "LWrist": (590, 620)}
    return ((np.array([p[n] for n in SH16_NAMES], np.float32) - [400, 280]) * 0.09 + shift).astype(np.float32)


class FakeEstimator:
    """Stands in for MediaPipe: a person in bright frames (joints shifted by the frame's
    brightness, visibility per landmark), NoPerson in dark ones; records what it gave."""
    made, given = [], []

    def __init__(self, *a, **kw):
        FakeEstimator.made.append(kw)
        self.closed = False

    def __call__(self, image, where="image"):
        m = float(image.mean())
        if m < 60:
            raise wild.NoPerson(f"{where}: no person found")
        d = wild.Detection(_person(m / 100), np.zeros((33, 2), np.float32),
                           np.linspace(0.2, 0.9, 33).astype(np.float32))
        FakeEstimator.given.append(d.joints)
        return d

    def close(self):
        self.closed = True


@pytest.fixture
def fake_estimator(monkeypatch):
    FakeEstimator.made, FakeEstimator.given = [], []
    monkeypatch.setattr(wild, "require", lambda: None)
    monkeypatch.setattr(wild, "Estimator", FakeEstimator)
    return FakeEstimator


def test_cli_lifts_a_video_frame_by_frame_into_one_npz_an_overlay_and_a_summary(write_video, committed, fake_estimator, tmp_path,
                                                                                capsys):
    import cv2

    values = [200, 20, 200, 150, 20, 200]                 # frames 1 and 4 show nobody
    clip = write_video(tmp_path / "clip.mp4", values)
    out = tmp_path / "out"
    rc = cli.main(["lift", str(clip), "--out", str(out), "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    assert fake_estimator.made == [{"video": True}]       # one tracking estimator for the video
    z = np.load(out / "clip.npz")
    found = np.array([v > 60 for v in values])
    assert z["found"].tolist() == found.tolist() and z["frame"].tolist() == list(range(6))
    assert float(z["fps"]) == 10.0 and np.allclose(z["time_s"], np.arange(6) / 10)
    assert z["pose3d"].shape == (6, 17, 3) and z["keypoints2d"].shape == (6, 16, 2) and z["confidence"].shape == (6, 16)
    assert np.isnan(z["pose3d"][~found]).all() and np.isnan(z["keypoints2d"][~found]).all()
    assert np.allclose(z["keypoints2d"][found], np.stack(fake_estimator.given))
    assert np.allclose(z["confidence"][found], wild.sh16_confidence(np.linspace(0.2, 0.9, 33)))
    assert np.allclose(z["pose3d"][found], committed(z["keypoints2d"][found]), atol=1e-2)   # the image path
    assert np.allclose(z["pose3d"][found][:, 0], 0) and list(z["joints_3d"])[0] == "Hip"
    s = json.loads((out / "clip.json").read_text())
    assert (s["frames"], s["frames_found"], s["frames_without_person"]) == (6, 4, [1, 4])
    assert s["meta"]["encoder_sha256"] == L.encoder_sha("DG+AUG") and s["meta"]["lifter_device"] == "cpu"
    for f in ("clip.npz", "clip_overlay.mp4"):             # the summary holds what was written
        assert s["files"][f]["sha256"] == hashlib.sha256((out / f).read_bytes()).hexdigest(), f
    cap = cv2.VideoCapture(str(out / "clip_overlay.mp4"))
    frames = []
    while True:
        ok, fr = cap.read()
        if not ok:
            break
        frames.append(fr.astype(int))
    assert len(frames) == 6 and frames[0].shape == (64, 64, 3)
    drawn = [np.abs(fr - v).max() > 60 for fr, v in zip(frames, values)]   # a skeleton over the grey
    assert drawn == found.tolist(), drawn
    assert not [p for p in out.iterdir() if p.name.startswith(".")]        # no temp file or folder left


def test_video_arrays_lift_only_the_frames_with_a_person_in_one_batch():
    """A tracked video's frames with a person go to the lifter together (one encoder
    pass); the others stay NaN; times come from the declared rate, NaN without one."""
    calls = []

    def lifter(x):
        calls.append(x.shape)
        return np.ones((len(x), 17, 3), np.float32)

    nobody = np.full((16, 2), np.nan, np.float32)
    track = ([0, 2, 4], [nobody, _person(), _person(1)], [np.full(16, np.nan, np.float32)] * 3, [False, True, True])
    a = L._video_arrays(*track, lifter, 10.0)
    assert calls == [(2, 16, 2)]
    assert np.isnan(a["pose3d"][0]).all() and (a["pose3d"][1:] == 1).all()
    assert a["frame"].tolist() == [0, 2, 4] and np.allclose(a["time_s"], [0, 0.2, 0.4])
    a = L._video_arrays(*track, lifter, None)
    assert np.isnan(a["fps"]) and np.isnan(a["time_s"]).all()

def test_video_stride_max_frames_no_png_and_bad_videos(write_video, committed, fake_estimator, tmp_path, capsys):
    clips = tmp_path / "clips"
    clips.mkdir()
    write_video(clips / "a.mp4", [200] * 7)
    (clips / "broken.mov").write_text("not a video")
    (clips / "notes.txt").write_text("neither")
    assert [p.name for p in L.expand_inputs([clips])] == ["a.mp4", "broken.mov"]
    out = tmp_path / "out"
    rc = cli.main(["lift", str(clips), "--out", str(out), "--stride", "3", "--max-frames", "2", "--no-png"])
    err = capsys.readouterr().err
    assert rc == 1 and "broken.mov: OpenCV cannot open it as a video" in err and "expected a video" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.npz"]    # no overlay with --no-png
    z = np.load(out / "a.npz")
    assert z["frame"].tolist() == [0, 3] and z["found"].all()
    s = json.loads((out / "a.json").read_text())
    assert s["stride"] == 3 and s["max_frames"] == 2 and "a_overlay.mp4" not in s["files"]
    for argv, word in ((["--stride", "0"], "--stride 0"), (["--max-frames", "-1"], "--max-frames -1")):
        assert cli.main(["lift", str(clips / "a.mp4"), "--out", str(tmp_path / "o2"), *argv]) == 2
        assert word in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


def test_a_video_with_annotations_is_refused_by_name(write_video, committed, mpii, tmp_path, capsys):
    d, _ = mpii
    clip = write_video(tmp_path / "walk.mp4", [200] * 2)
    rc = cli.main(["lift", str(clip), str(d / MPII[0]), "--annotations", str(d / "test_mpii.json"),
                   "--out", str(tmp_path / "o"), "--no-png"])
    err = capsys.readouterr().err
    assert rc == 1 and "walk.mp4: a video, but --annotations" in err, err
    r = json.loads((tmp_path / "o" / f"{MPII[0][:-4]}.json").read_text())
    assert r["joints_2d_px"]["confidence"] is None        # annotations carry no confidence


def test_image_json_carries_the_estimator_confidence(committed, fake_estimator, tmp_path, capsys):
    import cv2

    img = tmp_path / "me.png"
    cv2.imwrite(str(img), np.full((64, 64, 3), 200, np.uint8))
    rc = cli.main(["lift", str(img), "--out", str(tmp_path / "o"), "--no-png"])
    assert rc == 0, capsys.readouterr().err
    assert fake_estimator.made == [{}]                   # images: the single-image estimator
    r = json.loads((tmp_path / "o" / "me.json").read_text())
    conf = r["joints_2d_px"]["confidence"]
    assert len(conf) == 16 and np.allclose(conf, wild.sh16_confidence(np.linspace(0.2, 0.9, 33)), atol=1e-3)


def test_device_is_checked_before_anything_loads(monkeypatch, tmp_path, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert L.resolve_device("auto") == torch.device("cpu") and L.resolve_device("CPU") == torch.device("cpu")
    with pytest.raises(ValueError, match="device cuda: CUDA is not available"):
        L.Lifter.from_pretrained("DG+AUG", device="cuda", dir=tmp_path)   # refused before the (absent) weights
    with pytest.raises(ValueError, match=r"'tpu'.*'auto'.*'cpu'.*'cuda'.*'cuda:N'"):
        L.resolve_device("tpu")
    rc = cli.main(["lift", str(tmp_path / "x.jpg"), "--out", str(tmp_path / "o"), "--device", "cuda"])
    assert rc == 2 and "--device cuda: CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert L.resolve_device("auto") == torch.device("cuda") and L.resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match="there are 1 GPUs; expected cuda:0 to cuda:0"):
        L.resolve_device("cuda:1")


def test_from_pretrained_on_the_cpu_keeps_both_parts_there(committed):
    import torch

    lf = L.Lifter.from_pretrained("DG+AUG", device="cpu")
    assert lf.device == torch.device("cpu")
    assert next(lf.encoder.parameters()).device.type == "cpu"
    assert next(lf.fitted.regressor.parameters()).device.type == "cpu"
    x = _person()[None]
    assert np.allclose(lf(x), committed(x), atol=1e-3)

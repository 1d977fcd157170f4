"""geo.wild: the 33 -> 16 landmark mapping, image reading, the optional estimator."""
import sys

import numpy as np
import pytest

from geo import wild
from geo.skeleton import SH16_NAMES


def _landmarks():
    """33 distinct landmarks of an upright person facing the camera (image y down)."""
    lm = np.zeros((33, 2))
    pos = {"nose": (0, -170), "left_eye": (8, -178), "right_eye": (-8, -178), "mouth_left": (5, -160),
           "mouth_right": (-5, -160), "left_shoulder": (20, -140), "right_shoulder": (-20, -140),
           "left_elbow": (30, -100), "right_elbow": (-30, -100), "left_wrist": (35, -60), "right_wrist": (-35, -60),
           "left_hip": (12, -40), "right_hip": (-12, -40), "left_knee": (13, 0), "right_knee": (-13, 0),
           "left_ankle": (14, 40), "right_ankle": (-14, 40)}
    for k, name in enumerate(wild.MP33_NAMES):
        lm[k] = pos.get(name, (100 + k, 100 + k))    # unused landmarks far away
    return lm, pos


def test_mapping_joint_by_joint():
    lm, pos = _landmarks()
    sh = wild.mp33_to_sh16(lm)
    j = {n: sh[i] for i, n in enumerate(SH16_NAMES)}
    direct = {"RFoot": "right_ankle", "RKnee": "right_knee", "RHip": "right_hip", "LHip": "left_hip",
              "LKnee": "left_knee", "LFoot": "left_ankle", "RWrist": "right_wrist", "RElbow": "right_elbow",
              "RShoulder": "right_shoulder", "LShoulder": "left_shoulder", "LElbow": "left_elbow",
              "LWrist": "left_wrist"}
    for n, m in direct.items():   # a left/right swap or an off-by-one index fails here
        assert np.allclose(j[n], pos[m]), (n, m, j[n])
    assert np.allclose(j["Hip"], (0, -40)) and np.allclose(j["Spine"], (0, -140))
    assert np.allclose(j["Thorax"], (0, -150))          # half way from shoulders (-140) to mouth (-160)
    assert np.allclose(j["Head"], (0, -178 - 1.5 * 18))  # eyes + 1.5 (eyes - mouth): above the eyes
    # unused landmarks (hands, feet, ears) carry no weight
    assert np.allclose(wild.mapping_matrix()[:, [7, 8, 17, 18, 29, 30, 31, 32]], 0)
    assert np.allclose(wild.mapping_matrix().sum(1), 1)


def test_mapping_follows_a_tilted_head_and_batches():
    lm, _ = _landmarks()
    R = np.array([[0.0, -1.0], [1.0, 0.0]])              # the whole person turned 90 degrees
    sh = wild.mp33_to_sh16(np.stack([lm, lm @ R.T]))
    assert sh.shape == (2, 16, 2)
    assert np.allclose(sh[1], sh[0] @ R.T)               # the head top turns with the face
    with pytest.raises(ValueError, match="33"):
        wild.mp33_to_sh16(np.zeros((17, 2)))


def test_read_image_names_the_file(tmp_path):
    with pytest.raises(wild.WildError, match="no such file"):
        wild.read_image(tmp_path / "missing.jpg")
    txt = tmp_path / "notes.jpg"
    txt.write_text("not an image")
    with pytest.raises(wild.WildError, match=r"notes\.jpg.*not a decodable image"):
        wild.read_image(txt)
    with pytest.raises(wild.WildError, match="not a file"):
        wild.read_image(tmp_path)
    import cv2

    ok = tmp_path / "ok.png"
    cv2.imwrite(str(ok), np.full((8, 9, 3), 7, np.uint8))
    assert wild.read_image(ok).shape == (8, 9, 3)


def test_missing_extra_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)      # as if not installed
    with pytest.raises(wild.MissingExtra, match=r"pip install -e \.\[wild\]"):
        wild.require()
    assert not wild.available()


@pytest.fixture(scope="module")
def estimator():
    if not wild.available():
        pytest.skip("mediapipe is not installed (optional extra: pip install -e .[wild]); CI runs without it")
    with wild.Estimator() as e:
        yield e


def test_estimator_on_mpii_fixture(estimator, shared_data):
    from geo.data.mpii import load_mpii_json
    from geo.qualitative import pck_error

    ann = load_mpii_json(shared_data / "fixtures/mpii/test_mpii.json", zero_based=True)
    i = ann.image_names.index("060754485.jpg")
    d = estimator(wild.read_image(shared_data / "fixtures/mpii/060754485.jpg"))
    assert d.joints.shape == (16, 2) and d.landmarks.shape == (33, 2)
    e = pck_error(d.joints, ann.joints[i], ann.visible[i])
    assert e["pckh_0.5"] >= 0.75, e                       # a swapped mapping falls far below


def test_estimator_finds_no_person_in_a_blank_image(estimator):
    with pytest.raises(wild.NoPerson, match="blank.png: no person found"):
        estimator(np.full((256, 256, 3), 255, np.uint8), "blank.png")


def test_sh16_confidence_is_the_least_visible_landmark_of_each_joint():
    vis = np.linspace(0.01, 0.99, 33)                     # distinct: each joint's minimum tells which it took
    c = wild.sh16_confidence(vis)
    j = {n: c[i] for i, n in enumerate(SH16_NAMES)}
    assert np.isclose(j["RFoot"], vis[28]) and np.isclose(j["LWrist"], vis[15])
    assert np.isclose(j["Hip"], vis[23]) and np.isclose(j["Spine"], vis[11])
    assert np.isclose(j["Thorax"], vis[9]) and np.isclose(j["Head"], vis[2])   # mouth and eyes enter these
    assert wild.sh16_confidence(np.stack([vis, vis[::-1]])).shape == (2, 16)
    assert wild.Detection(np.zeros((16, 2)), np.zeros((33, 2)), None).confidence is None
    with pytest.raises(ValueError, match="33"):
        wild.sh16_confidence(np.ones(16))


def test_video_reader_strides_stops_and_names_bad_files(write_video, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", [10, 60, 110, 160, 210], size=(64, 48))
    with wild.Video(clip) as v:
        assert v.size == (64, 48) and v.fps == 10.0 and v.frames == 5 and v.planned() == 5
        got = list(v)
    assert [i for i, _ in got] == [0, 1, 2, 3, 4] and got[0][1].shape == (48, 64, 3)
    assert [int(f.mean() / 50 + 0.5) for _, f in got] == [0, 1, 2, 3, 4]     # the frames, in order
    with wild.Video(clip, stride=2) as v:
        assert [i for i, _ in v] == [0, 2, 4] and v.planned() == 3
    with wild.Video(clip, stride=2, max_frames=2) as v:
        assert [i for i, _ in v] == [0, 2] and v.planned() == 2
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video")
    with pytest.raises(wild.WildError, match=r"junk\.mp4: OpenCV cannot open it as a video.*expected a video"):
        wild.Video(junk)
    with pytest.raises(wild.WildError, match=r"gone\.avi: no such file; expected a video"):
        wild.Video(tmp_path / "gone.avi")
    assert wild.is_video("A/B.MP4") and wild.is_video("x.webm") and not wild.is_video("x.jpg")


def test_cv2_owners_names_the_installed_opencv():
    owners = wild.cv2_owners()
    assert owners and all(o.lower().startswith("opencv") for o in owners), owners   # cv2 is a core dependency


def test_missing_extra_names_every_cv2_owner_and_the_annotations_way(monkeypatch):
    from importlib import metadata

    monkeypatch.setitem(sys.modules, "mediapipe", None)
    both = {"cv2": ["opencv-python-headless", "opencv-contrib-python", "opencv-python-headless"], "numpy": ["numpy"]}
    monkeypatch.setattr(metadata, "packages_distributions", lambda: both)
    assert wild.cv2_owners() == ["opencv-contrib-python", "opencv-python-headless"]
    with pytest.raises(wild.MissingExtra) as e:
        wild.require()
    msg = str(e.value)
    assert "--annotations" in msg and "works without it" in msg, msg
    assert "cv2 is installed by 2 distributions (opencv-contrib-python, opencv-python-headless)" in msg, msg
    assert "pip uninstall -y opencv-contrib-python opencv-python-headless && pip install opencv-python-headless" in msg
    monkeypatch.setattr(metadata, "packages_distributions", lambda: {"cv2": ["opencv-python-headless"]})
    with pytest.raises(wild.MissingExtra) as e:
        wild.require()
    assert "cv2 is installed by" not in str(e.value) and wild.cv2_conflict() is None


def test_mediapipe_logs_are_turned_down_before_import_unless_the_user_chose(monkeypatch):
    import os
    import types

    levels = []
    absl = types.ModuleType("absl")
    absl.logging = types.ModuleType("absl.logging")
    absl.logging.ERROR, absl.logging.set_verbosity = 1, levels.append
    monkeypatch.setitem(sys.modules, "absl", absl)
    monkeypatch.setitem(sys.modules, "absl.logging", absl.logging)
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    monkeypatch.delenv("GLOG_minloglevel", raising=False)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    with pytest.raises(wild.MissingExtra):
        wild.require()                                    # set even when the import then fails
    assert os.environ["GLOG_minloglevel"] == "2" and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert levels == [1]                                  # absl's Python logging: errors only
    monkeypatch.setenv("GLOG_minloglevel", "0")           # the user wants mediapipe's logs
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    assert wild.quiet_logs() == {}
    assert os.environ["GLOG_minloglevel"] == "0" and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1" and levels == [1]


def test_native_stderr_drops_native_lines_under_the_levels_set(monkeypatch, capfd):
    import os

    lines = (b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
             b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
             b"W0000 00:00:1796175705.457959   26343 inference_feedback_manager.cc:114] Feedback manager\n"
             b"I0000 00:00:1796175705.457959   26343 gl_context.cc:357] GL version\n"
             b"E0000 00:00:1796175705.457959   26343 calculator_graph.cc:887] graph failed\n"
             b"something else\n")
    monkeypatch.setenv("GLOG_minloglevel", "2")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    with wild.native_stderr():
        os.write(2, lines)                                # as mediapipe's C++ threads write
    err = capfd.readouterr().err
    assert err == "E0000 00:00:1796175705.457959   26343 calculator_graph.cc:887] graph failed\nsomething else\n", err
    monkeypatch.setenv("GLOG_minloglevel", "0")           # the user asked for everything
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    with wild.native_stderr():
        os.write(2, lines)
    assert capfd.readouterr().err == lines.decode()
    with pytest.raises(KeyError):                         # an error in the block still restores stderr
        with wild.native_stderr():
            raise KeyError("x")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"

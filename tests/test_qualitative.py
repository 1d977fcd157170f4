"""geo.qualitative: the self-occlusion criterion, interpolation, view synthesis, plotly figure."""
import numpy as np
import torch

from geo import qualitative as Q
from geo import regress
from geo.skeleton import SH16_NAMES


def _star():
    """An upright SH16 pose, arms out sideways: no two unconnected limbs touch."""
    p = {"Head": (0, -90), "Thorax": (0, -70), "Spine": (0, -60), "Hip": (0, 0), "RShoulder": (-15, -60),
         "RElbow": (-40, -60), "RWrist": (-65, -60), "LShoulder": (15, -60), "LElbow": (40, -60), "LWrist": (65, -60),
         "RHip": (-10, 0), "RKnee": (-15, 45), "RFoot": (-20, 90), "LHip": (10, 0), "LKnee": (15, 45), "LFoot": (20, 90)}
    return np.array([p[n] for n in SH16_NAMES], np.float32)


def test_occlusion_grows_when_limbs_cross():
    star = _star()
    crossed = star.copy()
    j = {n: i for i, n in enumerate(SH16_NAMES)}
    crossed[j["LElbow"]] = (0, -30)       # left forearm swung across the torso and the right arm
    crossed[j["LWrist"]] = (-40, -45)
    occ = Q.occlusion(np.stack([star, crossed]))
    assert occ[0] == 0.0 and occ[1] > 0.02, occ


def test_pick_occluded_takes_the_most_occluded_once_per_sequence():
    star = _star()
    j = {n: i for i, n in enumerate(SH16_NAMES)}
    crossed = star.copy()
    crossed[j["LElbow"]], crossed[j["LWrist"]] = (0, -30), (-40, -45)
    x = np.stack([star, crossed, crossed, star])
    v = Q.Views(x, x, np.zeros((4, 17, 3), np.float32), np.tile(np.eye(3, dtype=np.float32), (4, 1, 1)),
                [("S9", "A", 0, "c1", "c2"), ("S9", "A", 5, "c1", "c2"), ("S9", "B", 0, "c1", "c2"),
                 ("S11", "C", 0, "c1", "c2")])
    assert Q.pick_occluded(v, 2) == [1, 2]     # row 2 is as occluded as row 1 but another sequence


def test_interpolate_and_yaw():
    g1, g2 = np.zeros((4, 3)), np.ones((4, 3))
    g = Q.interpolate(g1, g2, 5)
    assert g.shape == (5, 4, 3) and np.allclose(g[0], g1) and np.allclose(g[-1], g2) and np.allclose(g[2], 0.5)
    R = Q.yaw(90)
    assert np.allclose(R @ [1, 0, 0], [0, 0, -1], atol=1e-6) and np.allclose(R @ R.T, np.eye(3), atol=1e-6)


def test_synthesis_uses_the_rotation():
    from geo.weights import load_generators

    gen = load_generators("DG+AUG", parts=("phi", "psi"))[0]["phi_psi"]    # the committed generator
    x = _star()[None] + 100
    a = Q.synthesise_poses(gen, x, np.eye(3, dtype=np.float32)[None])
    b = Q.synthesise_poses(gen, x, Q.yaw(90)[None])
    assert a.shape == (1, 15, 64, 64) and np.abs(a - b).max() > 0.1
    g = regress.encode(gen.encoder, x)   # G in the precision synthesise computes it (geo.precision)
    assert np.allclose(Q.decode(gen, g, Q.yaw(90)), b, atol=1e-5)


def test_plotly_sliders_move_the_data_and_the_view():
    ts = np.linspace(0, 1, 3)
    clouds = {"SG+AUG": np.random.default_rng(0).normal(size=(3, 8, 3)),
              "DG+AUG": np.random.default_rng(1).normal(size=(3, 8, 3))}
    poses = {v: np.random.default_rng(2).normal(size=(3, 17, 3)) for v in clouds}
    fig = Q.figure4_plotly(clouds, poses, ts, angles=[0, 90])
    t_slider, r_slider = fig.layout.sliders
    assert len(t_slider.steps) == 3 and len(r_slider.steps) == 2
    x_last = t_slider.steps[2].args[0]["x"]
    assert np.allclose(x_last[2], clouds["DG+AUG"][2][:, 0])      # trace 2 is DG's cloud at step 2
    assert not np.allclose(x_last[0], t_slider.steps[0].args[0]["x"][0])
    eye = r_slider.steps[1].args[0]
    assert len(eye) == 4 and all(k.endswith(".camera.eye") for k in eye)


def test_crop_to_keeps_the_joints_in_place():
    img = np.arange(100 * 200 * 3, dtype=np.uint8).reshape(100, 200, 3)
    j = np.array([[50.0, 40.0], [70.0, 60.0]])
    c, off = Q.crop_to(img, j, margin=0.5)
    assert np.allclose(off, (40, 30)) and c.shape[:2] == (40, 40)
    assert (c[int(j[0, 1] - off[1]), int(j[0, 0] - off[0])] == img[40, 50]).all()   # the same pixel under joint 0


def test_pick_pair_same_sequence_and_camera_near_the_target_distance():
    rng = np.random.default_rng(0)
    y = np.zeros((6, 17, 3), np.float32)
    y[:, 1:, 0] = np.array([0, 100, 310, 900, 305, 50])[:, None] * 17 / 16   # MPJPE to row 0: 0 100 310 900 ...
    keys = [("S9", "A", f, "c1", "c2") for f in range(4)] + [("S9", "A", 4, "c2", "c3"), ("S11", "B", 0, "c1", "c2")]
    v = Q.Views(rng.normal(size=(6, 16, 2)).astype(np.float32), rng.normal(size=(6, 16, 2)).astype(np.float32), y,
                np.tile(np.eye(3, dtype=np.float32), (6, 1, 1)), keys)
    (i, j), d = Q.pick_pair(v, candidates=6, target_mm=300)
    assert {i, j} == {0, 2} and abs(d - 310) < 1e-3      # row 4 is nearer 300 but seen by another camera


def test_training_subject_finds_h36m_frames_of_the_given_subjects():
    from geo.qualitative import training_subject

    train = ["S1", "S5", "S6", "S7", "S8"]
    assert training_subject("fixtures/h36m/S7/S7_Greeting.55011271/S7_Greeting.55011271_000396.jpg", train) == "S7"
    assert training_subject("S8_WalkDog_1.55011271_000026.jpg", train) == "S8"
    assert training_subject("fixtures/h36m/S9/S9_Walking.54138969_000001.jpg", train) is None
    assert training_subject("fixtures/mpii/060754485.jpg", train) is None
    assert training_subject("fixtures/mpi_inf_3dhp/TS1_002001.jpg", train) is None
    assert training_subject("photos/S10_beach.jpg", train) is None     # S10 is not a training subject

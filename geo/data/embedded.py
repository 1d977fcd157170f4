"""The embedded default: real motion capture shipped inside a PyPI package.

No dataset is needed for ``make reproduce``: the ``pybullet`` wheel ships the DeepMimic
humanoid motion-capture clips (``pybullet_data/data/motions/humanoid3d_*.txt``, 15 clips
of recorded human motion, 30 Hz) and the humanoid's URDF
(``pybullet_data/humanoid/humanoid.urdf``). We run forward kinematics on them to get
17-joint H36M-style 3D poses (mm, world, z up) and view them with four static cameras
placed like Human3.6M's (four corners around the subject, see :class:`geo.cameras.Torus`).
The 2D "detections" are the undistorted projections of the 3D joints (SH16 order) plus
Gaussian pixel noise (``noise_px``, fixed seed) standing in for a 2D detector's error.

Numbers computed on this default are NOT comparable with the paper's: it is another
subject set (one character, 15 clips, 1,620 frames), other cameras and simulated
detections. It exists so that every notebook runs end to end on a fresh machine.

Split: pseudo-subject ``E1`` (11 clips) trains, ``E2`` (4 clips) tests.
"""
from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from geo.cameras import Camera, Torus, look_at
from geo.data.core import Dataset, DataError, Sequence
from geo.skeleton import H36M17_NAMES, h36m17_to_sh16

TEST_CLIPS = ("walk", "kick", "dance_b", "getup_faceup")
CAMERA_IDS = ("E-cam1", "E-cam2", "E-cam3", "E-cam4")
SCALE = 0.25  # the URDF is authored at 4x human size; pybullet loads it with globalScaling=0.25


def pybullet_data_dir() -> Path:
    try:
        import pybullet_data
    except ImportError as e:  # pragma: no cover - pybullet is a dependency
        raise DataError("the embedded default needs the 'pybullet' package (it ships the motion clips): "
                        "pip install pybullet") from e
    return Path(pybullet_data.getDataPath())


def _urdf_offsets(urdf: Path) -> dict[str, np.ndarray]:
    text = urdf.read_bytes().decode("latin-1")
    out = {}
    for m in re.finditer(r'<joint name="([^"]+)".*?</joint>', text, re.S):
        o = re.search(r'<origin[^>]*xyz\s*=\s*"([^"]+)"', m.group(0))
        out[m.group(1)] = np.array([float(v) for v in o.group(1).split()]) * SCALE
    need = {"chest", "neck", "right_hip", "right_knee", "right_ankle", "right_shoulder", "right_elbow",
            "right_wrist", "left_hip", "left_knee", "left_ankle", "left_shoulder", "left_elbow", "left_wrist"}
    if not need <= set(out):
        raise DataError(f"{urdf}: missing joints {sorted(need - set(out))}; expected the DeepMimic humanoid URDF")
    return out


def _quat_to_matrix(q):
    """(..., 4) quaternions (w, x, y, z) -> (..., 3, 3)."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)], -2)


def _rot_z(a):
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, o], -1), np.stack([s, c, o], -1), np.stack([o, o, i], -1)], -2)


def forward_kinematics(frames: np.ndarray, off: dict[str, np.ndarray]) -> np.ndarray:
    """DeepMimic frames (T, 44) -> H36M17 joints (T, 17, 3) in metres, y up.

    Frame layout: dt, root xyz, root quat, chest quat, neck quat, right hip quat, right
    knee angle, right ankle quat, right shoulder quat, right elbow angle, then the same
    for the left side (quaternions w, x, y, z)."""
    f = np.asarray(frames, np.float64)
    if f.ndim != 2 or f.shape[1] != 44:
        raise DataError(f"expected DeepMimic frames of 44 values, got shape {f.shape}")
    q = lambda i: _quat_to_matrix(f[:, i:i + 4])  # noqa: E731
    root_p, R_root = f[:, 1:4], q(4)
    R_chest = R_root @ q(8)
    R_neck = R_chest @ q(12)
    at = lambda p, R, v: p + np.einsum("tij,j->ti", R, v)  # noqa: E731

    chest = at(root_p, R_root, off["chest"])
    neck = at(chest, R_chest, off["neck"])
    joints = {"Hip": root_p, "Spine": chest, "Thorax": neck,
              "Neck/Nose": at(neck, R_neck, np.array([0.0, 0.45, 0.0]) * SCALE),
              "Head": at(neck, R_neck, np.array([0.0, 1.0, 0.0]) * SCALE)}
    for side, base in (("right", 16), ("left", 30)):
        S = "R" if side == "right" else "L"
        R_hip = R_root @ q(base)
        hip = at(root_p, R_root, off[f"{side}_hip"])
        R_knee = R_hip @ _rot_z(f[:, base + 4])
        knee = at(hip, R_hip, off[f"{side}_knee"])
        ankle = at(knee, R_knee, off[f"{side}_ankle"])
        R_sh = R_chest @ q(base + 9)
        shoulder = at(chest, R_chest, off[f"{side}_shoulder"])
        elbow = at(shoulder, R_sh, off[f"{side}_elbow"])
        R_el = R_sh @ _rot_z(f[:, base + 13])
        wrist = at(elbow, R_el, off[f"{side}_wrist"])
        joints.update({f"{S}Hip": hip, f"{S}Knee": knee, f"{S}Foot": ankle,
                       f"{S}Shoulder": shoulder, f"{S}Elbow": elbow, f"{S}Wrist": wrist})
    return np.stack([joints[n] for n in H36M17_NAMES], 1)


def embedded_cameras(torus: Torus | None = None) -> dict[str, Camera]:
    """Four static cameras like Human3.6M's: azimuths 45/135/225/315 degrees, the torus's
    mid elevation and distance, looking at 0.9 m above the origin, no distortion."""
    t = torus or Torus()
    e, d = (t.elev_min + t.elev_max) / 2, (t.dist_min + t.dist_max) / 2
    cams = {}
    for i, cid in enumerate(CAMERA_IDS):
        a = math.radians(45 + 90 * i)
        target = np.array([0.0, 0.0, 900.0 + t.target_height])  # 0.9 m: a standing pelvis
        centre = target + d * np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
        cams[cid] = Camera(id=cid, R=look_at(centre, target), T=centre, f=np.array(t.f), c=np.array(t.c))
    return cams


@lru_cache(maxsize=4)
def load_clips() -> dict[str, np.ndarray]:
    """{clip name: (T, 17, 3) mm, world z up, root trajectory centred on the origin in x, y}."""
    root = pybullet_data_dir()
    off = _urdf_offsets(root / "humanoid" / "humanoid.urdf")
    files = sorted((root / "data" / "motions").glob("humanoid3d_*.txt"))
    if not files:
        raise DataError(f"{root / 'data' / 'motions'}: no humanoid3d_*.txt motion clips; expected pybullet_data's DeepMimic clips")
    out = {}
    for p in files:
        try:
            frames = np.asarray(json.loads(p.read_text())["Frames"], np.float64)
        except (ValueError, KeyError) as e:
            raise DataError(f"{p}: cannot parse; expected a DeepMimic motion JSON with 'Frames'") from e
        j = forward_kinematics(frames, off)                       # metres, y up, x forward, z right
        j = np.stack([j[..., 0], -j[..., 2], j[..., 1]], -1) * 1000.0  # -> mm, z up (right-handed)
        j[..., :2] -= j[:, 0, :2].mean(0)
        out[p.stem.replace("humanoid3d_", "")] = j.astype(np.float32)
    return out


def load_embedded(noise_px: float = 5.0, seed: int = 0, subjects=None) -> Dataset:
    """The embedded default as a :class:`~geo.data.Dataset` (module docstring)."""
    clips = load_clips()
    cams = embedded_cameras()
    rng = np.random.default_rng(seed)
    seqs: dict[str, dict[str, Sequence]] = {"E1": {}, "E2": {}}
    for name, p3 in clips.items():
        s = "E2" if name in TEST_CLIPS else "E1"
        p2 = {}
        for cid, cam in cams.items():
            x = h36m17_to_sh16(cam.project(p3.astype(np.float64), distort=False))
            p2[cid] = (x + rng.normal(0, noise_px, x.shape)).astype(np.float32)
        seqs[s][name] = Sequence(p3, p2)
    ds = Dataset("embedded", "pybullet_data DeepMimic humanoid3d clips", seqs, {s: dict(cams) for s in seqs},
                 fps=30.0, notes=__doc__.split("\n\n")[1].replace("\n", " "),
                 train_subjects=("E1",), test_subjects=("E2",))
    return ds.subset(subjects) if subjects else ds

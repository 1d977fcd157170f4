"""MPI-INF-3DHP test set (Mehta et al., 3DV 2017), two on-disk layouts.

1. The official test set (``mpi_inf_3dhp_test_set.zip``)::

       <root>/TS1/annot_data.mat ... <root>/TS6/annot_data.mat
       <root>/TS1/imageSequence/img_000001.jpg ...      (frame i -> img_{i+1:06d}.jpg)

   ``<root>`` may also be the folder above ``mpi_inf_3dhp_test_set/`` or above
   ``test/`` (mmpose's ``data_root``). Each ``annot_data.mat`` is MATLAB v7.3 (HDF5,
   read with h5py) in the official release; older MATLAB v5 files (scipy.io.loadmat)
   are read too. Fields, with MATLAB dimensions (h5py shows them reversed: ``annot2``
   reads as (T, 1, 17, 2) there):

   ============== ================ ====================================================
   ``annot2``     (2, 17, 1, T)    2D joints, pixels (x, y) in the full frame
   ``annot3``     (3, 17, 1, T)    3D joints, mm, camera frame (x right, y down, z forward)
   ``univ_annot3`` (3, 17, 1, T)   same poses on the "universal" skeleton (fixed bone
                                   lengths), mm; what the official PCK/AUC scripts use
   ``valid_frame`` (1, T)          1 for frames with a valid annotation, else 0
   ``bb_crop``, ``activity_annotation``  (not read)
   ============== ================ ====================================================

   Sequences (as in mmpose's converter): frames TS1 6151, TS2 6080, TS3 5838,
   TS4 6007, TS5 320, TS6 492; TS1-TS4 studio 2048x2048, TS5-TS6 outdoor 1920x1080.
   The usual protocol keeps only valid frames (2,929 in all, the number quoted by most
   papers). Only valid frames are returned, with their 0-based indices in ``valid``.
   Invalid frames are not checked for NaN.

2. The mmpose-converted npz (``mpi_inf_3dhp_test_valid.npz``; the test fixture is
   ``test_3dhp_test.npz``), one row per valid frame:

   ============ ============ =======================================================
   ``imgname``  (N,) str     ``TS{n}_{i+1:06d}.jpg`` (i the 0-based frame index)
   ``center``   (N, 2)       box centre, px: middle of the 2D joints' bounding box
   ``scale``    (N,)         1.2 * longest side of that box / 200
   ``part``     (N, 17, 3)   2D joints, px, plus a flag "inside the image"
   ``S``        (N, 17, 4)   ``annot3`` in **metres** (camera frame), same flag
   ============ ============ =======================================================

   mmpose computes the flag against 2048x2048 for every sequence, also TS5/TS6
   (1920x1080); :func:`load_3dhp_official` computes it with each sequence's size.
   In the fixture, ``S`` projects onto ``part`` with a pinhole (f ~ 1500 px for
   TS1/TS2) to < 2 px, and the pelvis is the exact midpoint of the two hips.

Joints (``THREEDHP17_NAMES``, the official 17-joint test order; L/R are the subject's
own sides). The training set's 28-joint ``annot.mat`` maps onto it with
``THREEDHP28_TO_17``. ``THREEDHP17_TO_H36M17`` gives, for each joint of
:data:`geo.skeleton.H36M17_NAMES`, the 3DHP joint that stands for it (nominal
correspondence: 3DHP neck ~ H36M Thorax, 3DHP head ~ H36M Neck/Nose, 3DHP head_top ~
H36M Head).
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geo.data.core import MAX_ABS, DataError, check_array, require_dir
from geo.skeleton import h36m17_to_sh16

THREEDHP17_NAMES = (
    "head_top", "neck", "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
    "right_ankle", "left_hip", "left_knee", "left_ankle", "pelvis", "spine", "head",
)
THREEDHP17_PARENTS = (16, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, -1, 14, 1)
THREEDHP17_ROOT = 14  # pelvis

# For each H36M17 joint (Hip, RHip, RKnee, RFoot, LHip, LKnee, LFoot, Spine, Thorax,
# Neck/Nose, Head, LShoulder, LElbow, LWrist, RShoulder, RElbow, RWrist) the 3DHP index:
# pelvis, right_hip, right_knee, right_ankle, left_hip, left_knee, left_ankle, spine,
# neck, head, head_top, left_shoulder, left_elbow, left_wrist, right_shoulder,
# right_elbow, right_wrist.
THREEDHP17_TO_H36M17 = (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)

# Training set: the 17 test joints among the 28 joints of ``annot.mat`` (0-based).
THREEDHP28_TO_17 = (7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6)

SEQUENCES = ("TS1", "TS2", "TS3", "TS4", "TS5", "TS6")
IMAGE_SIZE = {"TS1": (2048, 2048), "TS2": (2048, 2048), "TS3": (2048, 2048),
              "TS4": (2048, 2048), "TS5": (1920, 1080), "TS6": (1920, 1080)}  # (w, h)
LAYOUT = ("the official MPI-INF-3DHP test set: <root>/TS1/annot_data.mat ... "
          "<root>/TS6/annot_data.mat (root = mpi_inf_3dhp_test_set/)")

assert len(THREEDHP17_NAMES) == len(THREEDHP17_PARENTS) == len(THREEDHP17_TO_H36M17) == 17


@dataclass
class ThreeDHPSequence:
    """One test sequence, valid frames only.

    ``poses_3d`` (T, 17, 3) mm camera frame; ``poses_2d`` (T, 17, 2) px; ``valid`` (T,)
    0-based frame indices in the full sequence; ``visible`` (T, 17) bool, joint inside
    the image (not an occlusion label); ``image_names`` one per frame;
    ``poses_3d_univ`` the universal-skeleton poses (official layout only, else None);
    ``center``/``scale`` the mmpose box (mmpose npz only, else None).
    """
    name: str
    poses_3d: np.ndarray
    poses_2d: np.ndarray
    valid: np.ndarray
    visible: np.ndarray
    image_names: tuple[str, ...]
    poses_3d_univ: np.ndarray | None = None
    center: np.ndarray | None = None
    scale: np.ndarray | None = None
    image_size: tuple[int, int] | None = None  # (w, h)

    def __len__(self):
        return len(self.poses_3d)


@dataclass
class ThreeDHPTest:
    """The MPI-INF-3DHP test set: ``sequences[name] = ThreeDHPSequence``, 3DHP17 order."""
    source: str
    sequences: dict[str, ThreeDHPSequence]
    layout: str
    joint_names: tuple[str, ...] = field(default=THREEDHP17_NAMES)
    joint_parents: tuple[int, ...] = field(default=THREEDHP17_PARENTS)

    def __len__(self):
        return sum(len(s) for s in self.sequences.values())

    def stacked(self, attr: str = "poses_3d") -> np.ndarray:
        """One attribute of every sequence, concatenated in sequence order."""
        return np.concatenate([getattr(s, attr) for s in self.sequences.values()])


def threedhp17_to_h36m17(x: np.ndarray) -> np.ndarray:
    """Reorder a (..., 17, D) 3DHP array into H36M17 order."""
    if x.shape[-2] != 17:
        raise ValueError(f"expected (..., 17, D) 3DHP joints, got shape {x.shape}")
    return x[..., list(THREEDHP17_TO_H36M17), :]


# ---------------------------------------------------------------- official .mat


def _read_mat(path: Path) -> dict[str, np.ndarray]:
    """annot2/annot3/univ_annot3/valid_frame in MATLAB dimension order."""
    import h5py
    want = ("annot2", "annot3", "univ_annot3", "valid_frame")
    out: dict[str, np.ndarray] = {}
    try:
        if h5py.is_hdf5(path):  # MATLAB v7.3; h5py reverses the dimensions
            with h5py.File(path, "r") as f:
                for k in want:
                    if k in f:
                        out[k] = np.asarray(f[k][()]).T
        else:
            import scipy.io
            m = scipy.io.loadmat(path, variable_names=list(want))
            out = {k: np.asarray(m[k]) for k in want if k in m}
    except DataError:
        raise
    except Exception as e:  # h5py OSError, scipy MatReadError/ValueError/NotImplementedError...
        raise DataError(f"{path}: truncated or corrupt MATLAB file ({type(e).__name__}: {e}); "
                        f"expected an MPI-INF-3DHP annot_data.mat (v7.3/HDF5 or v5)") from e
    for k in ("annot2", "annot3", "valid_frame"):
        if k not in out:
            raise DataError(f"{path}: no {k!r} variable (found {sorted(out)}); "
                            f"expected an MPI-INF-3DHP annot_data.mat with annot2, annot3, valid_frame")
    return out


def _frames(a: np.ndarray, dim: int, path: Path, key: str) -> np.ndarray:
    """MATLAB (dim, J, 1, T) or (dim, J, T) -> (T, J, dim)."""
    if a.ndim == 4 and a.shape[2] == 1:
        a = a[:, :, 0, :]
    if a.ndim != 3 or a.shape[0] != dim:
        raise DataError(f"{path}: {key!r} has MATLAB shape {a.shape}; expected ({dim}, 17, 1, T)")
    if a.shape[1] != 17:
        raise DataError(f"{path}: {key!r} has {a.shape[1]} joints; expected 17 (MPI-INF-3DHP test joints)")
    return a.transpose(2, 1, 0)


def _in_image(p2: np.ndarray, size) -> np.ndarray:
    w, h = size
    return (p2[..., 0] >= 0) & (p2[..., 0] < w) & (p2[..., 1] >= 0) & (p2[..., 1] < h)


def read_annot_data(path, name: str = "") -> ThreeDHPSequence:
    """One ``annot_data.mat`` -> :class:`ThreeDHPSequence` (valid frames only)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; expected {LAYOUT}")
    m = _read_mat(path)
    a2 = _frames(m["annot2"], 2, path, "annot2")
    a3 = _frames(m["annot3"], 3, path, "annot3")
    valid = np.asarray(m["valid_frame"]).ravel()
    if not (len(a2) == len(a3) == len(valid)):
        raise DataError(f"{path}: frame counts differ: annot2 {len(a2)}, annot3 {len(a3)}, "
                        f"valid_frame {len(valid)}; expected one count T")
    idx = np.flatnonzero(valid)
    p3 = check_array(a3[idx], (17, 3), f"{path}[annot3]", "3D joints (17, mm)", bound=MAX_ABS)
    p2 = check_array(a2[idx], (17, 2), f"{path}[annot2]", "2D joints (17, px)", bound=MAX_ABS)
    univ = None
    if "univ_annot3" in m:
        univ = check_array(_frames(m["univ_annot3"], 3, path, "univ_annot3")[idx], (17, 3),
                           f"{path}[univ_annot3]", "universal 3D joints (17, mm)", bound=MAX_ABS)
    name = name or path.parent.name
    size = IMAGE_SIZE.get(name)
    vis = _in_image(p2, size) if size else np.ones(p2.shape[:2], bool)
    return ThreeDHPSequence(name, p3, p2, idx.astype(np.int64), vis,
                            tuple(f"{name}/imageSequence/img_{i + 1:06d}.jpg" for i in idx),
                            poses_3d_univ=univ, image_size=size)


def load_3dhp_official(root, sequences=None) -> ThreeDHPTest:
    """The official test-set layout (module docstring). ``sequences`` picks some of
    TS1..TS6 (each must exist); by default every ``TS*/annot_data.mat`` present."""
    root = require_dir(root, LAYOUT)
    for sub in ("mpi_inf_3dhp_test_set", "test"):
        if not (root / "TS1").is_dir() and (root / sub).is_dir() and any((root / sub).glob("TS*")):
            root = root / sub
            break
    if sequences is None:
        names = [s for s in SEQUENCES if (root / s / "annot_data.mat").is_file()]
        names += sorted(p.parent.name for p in root.glob("TS*/annot_data.mat") if p.parent.name not in names)
        if not names:
            raise DataError(f"{root}: no TS*/annot_data.mat found; expected {LAYOUT}")
    else:
        names = [sequences] if isinstance(sequences, str) else list(sequences)
        for s in names:
            if not (root / s / "annot_data.mat").is_file():
                raise DataError(f"{root / s / 'annot_data.mat'}: file not found; expected {LAYOUT}")
    seqs = {s: read_annot_data(root / s / "annot_data.mat", s) for s in names}
    return ThreeDHPTest(str(root), seqs, "official")


# ---------------------------------------------------------------- mmpose npz

_IMG = re.compile(r"^(?P<seq>.+)_(?P<frame>\d+)\.\w+$")


MAX_METRES = 100.0   # a camera-frame joint 100 m away is no MPI-INF-3DHP frame, but a file in mm


def load_3dhp_mmpose(npz_path) -> ThreeDHPTest:
    """The mmpose-converted npz (module docstring); ``S`` metres -> mm. Rows are grouped
    by the sequence in their image name (``TS1_002001.jpg`` -> TS1, frame index 2000)."""
    path = Path(npz_path).expanduser()
    expect = "an mmpose MPI-INF-3DHP npz (imgname, center, scale, part (N,17,3), S (N,17,4) metres)"
    if not path.is_file():
        raise DataError(f"{path}: file not found; expected {expect}")
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: truncated or corrupt npz ({e}); expected {expect}") from e
    missing = [k for k in ("imgname", "part", "S") if k not in d]
    if missing:
        raise DataError(f"{path}: missing keys {missing} (found {sorted(d)}); expected {expect}")
    names = np.asarray(d["imgname"]).astype(str)
    part, S = np.asarray(d["part"]), np.asarray(d["S"])
    for key, a, dims in (("part", part, (2, 3)), ("S", S, (3, 4))):
        if a.ndim != 3 or a.shape[2] not in dims:
            raise DataError(f"{path}[{key}]: shape {a.shape}; expected (N, 17, {' or '.join(map(str, dims))})")
        if a.shape[1] != 17:
            raise DataError(f"{path}[{key}]: {a.shape[1]} joints; expected 17 (MPI-INF-3DHP test joints)")
        if len(a) != len(names):
            raise DataError(f"{path}[{key}]: {len(a)} rows but {len(names)} imgname entries; expected one per image")
    p2 = check_array(part[..., :2], (17, 2), f"{path}[part]", "2D joints (17, px)", bound=MAX_ABS)
    # metres by mmpose's convention: a file already in mm (values in the thousands) is
    # refused here rather than scaled by 1000 a second time
    p3 = check_array(S[..., :3], (17, 3), f"{path}[S]", "3D joints (17, metres; is it already in mm?)",
                     bound=MAX_METRES) * np.float32(1000.0)
    if part.shape[2] == 3:
        vis = part[..., 2] > 0
    elif S.shape[2] == 4:
        vis = S[..., 3] > 0
    else:
        vis = np.ones(p2.shape[:2], bool)
    center = np.asarray(d["center"], np.float32) if "center" in d else None
    scale = np.asarray(d["scale"], np.float32).reshape(-1) if "scale" in d else None
    if center is not None and center.shape != (len(names), 2):
        raise DataError(f"{path}[center]: shape {center.shape}; expected ({len(names)}, 2)")
    if scale is not None and scale.shape != (len(names),):
        raise DataError(f"{path}[scale]: shape {scale.shape}; expected ({len(names)},)")
    groups: dict[str, list[int]] = {}
    frames = np.empty(len(names), np.int64)
    for i, n in enumerate(names):
        mt = _IMG.match(Path(n).name)
        if mt is None:
            raise DataError(f"{path}[imgname][{i}]: {n!r}; expected <sequence>_<frame:06d>.jpg, e.g. TS1_000001.jpg")
        groups.setdefault(mt["seq"], []).append(i)
        frames[i] = int(mt["frame"]) - 1
    seqs = {}
    for s, rows in groups.items():
        r = np.asarray(rows)
        seqs[s] = ThreeDHPSequence(
            s, p3[r], p2[r], frames[r], vis[r], tuple(names[r]),
            center=None if center is None else center[r],
            scale=None if scale is None else scale[r], image_size=IMAGE_SIZE.get(s))
    return ThreeDHPTest(str(path), seqs, "mmpose")


# ---------------------------------------------------------------- cross-dataset rows

# Scene types of the test sequences (Mehta et al. 2017): TS1-TS2 studio with a green
# screen, TS3-TS4 studio without, TS5-TS6 outdoor. Table 2's per-scene columns.
SCENES = {"studio_gs": ("TS1", "TS2"), "studio_no_gs": ("TS3", "TS4"), "outdoor": ("TS5", "TS6")}


def fit_pinhole(p3: np.ndarray, p2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Focal lengths f (2,) and principal point c (2,) in px of the pinhole camera that
    projects camera-frame joints ``p3`` (..., 3) mm onto ``p2`` (..., 2) px, by least
    squares on u = f_x X/Z + c_x, v = f_y Y/Z + c_y (distortion ignored). The test set's
    own annotations give its intrinsics, so no camera file is needed."""
    p3 = np.asarray(p3, np.float64).reshape(-1, 3)
    p2 = np.asarray(p2, np.float64).reshape(-1, 2)
    if len(p3) != len(p2) or len(p3) < 2:
        raise ValueError(f"fit_pinhole: {len(p3)} 3D and {len(p2)} 2D points; expected as many, at least 2")
    f, c = np.zeros(2), np.zeros(2)
    for a in range(2):
        A = np.stack([p3[:, a] / p3[:, 2], np.ones(len(p3))], 1)
        (f[a], c[a]), *_ = np.linalg.lstsq(A, p2[:, a], rcond=None)
    return f, c


def as_h36m(test: ThreeDHPTest, f_ref, c_ref) -> dict:
    """The test set as rows of the Human3.6M regressors (:mod:`geo.regress`): ``x2d`` (N, 16,
    2) SH16 joints in px *of a reference camera* (intrinsics ``f_ref``, ``c_ref``, e.g. the
    mean Human3.6M camera: each sequence's 2D is taken to normalised image coordinates with
    its own pinhole, :func:`fit_pinhole`, then to the reference camera's pixels, so the
    regressors see the same pixel scale as in training); ``y`` (N, 16, 3) mm, the 16
    non-root joints relative to the pelvis (root alignment), camera frame, H36M17 order
    (:func:`threedhp17_to_h36m17`); ``sequences`` (N,) the sequence of each row;
    ``universal``: whether ``y`` comes from ``univ_annot3`` (the official layout, what the
    official PCK/AUC uses) or ``annot3`` (mmpose's npz has only that)."""
    f_ref, c_ref = np.asarray(f_ref, np.float64), np.asarray(c_ref, np.float64)
    xs, ys, names = [], [], []
    univ = all(s.poses_3d_univ is not None for s in test.sequences.values())
    for name, s in test.sequences.items():
        f, c = fit_pinhole(s.poses_3d, s.poses_2d)
        x2d = (np.asarray(s.poses_2d, np.float64) - c) / f * f_ref + c_ref
        xs.append(h36m17_to_sh16(threedhp17_to_h36m17(x2d)).astype(np.float32))
        p3 = threedhp17_to_h36m17(np.asarray(s.poses_3d_univ if univ else s.poses_3d, np.float64))
        ys.append((p3[:, 1:] - p3[:, :1]).astype(np.float32))
        names += [name] * len(s)
    return {"x2d": np.concatenate(xs), "y": np.concatenate(ys), "sequences": np.asarray(names), "universal": univ}

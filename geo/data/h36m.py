"""Human3.6M loaders, two on-disk layouts into one :class:`~geo.data.Dataset`.

1. The original 3d-pose-baseline layout (Martinez et al. 2017, ``h36m.zip``)::

       <root>/cameras.h5
       <root>/S9/MyPoses/3D_positions/Walking 1.h5           '3D_positions' (96, T) mm, 50 Hz
       <root>/S9/StackedHourglass/Walking_1.54138969.h5      'poses' (T, 16, 2) px, 50 Hz

   3D keeps the 17 joints ``H36M32_TO_17``; both are subsampled with ``stride``
   (default 5: 50 Hz -> 10 Hz, frames 0, 5, 10, ...).
2. The compact pack (``poses_3d.npz``, ``detections_sh.npz``, ``cameras.h5``), already
   17 joints at 10 Hz (see the pack's README).

Detections and 3D poses are aligned by index from frame 0. Lengths may differ by up to
:data:`geo.data.MAX_LAG_S` (3 frames at 10 Hz; the shorter is used); more is a
DataError naming both files (or npz keys) and both lengths.

Cameras: ``cameras.h5`` groups ``subject{N}/camera{1..4}/{R,T,f,c,k,p,Name}``; the
world->camera rotation is ``R_h5.T`` (see :mod:`geo.cameras`).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from geo.cameras import H36M_CAMERA_IDS, Camera
from geo.data.core import (MAX_ABS, Dataset, DataError, Sequence, check_alignment, check_array, data_files,
                           require_dir, require_frames)

H36M32_TO_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
LAYOUTS = ("Human3.6M in the 3d-pose-baseline layout (cameras.h5 and S*/MyPoses/3D_positions/*.h5, "
           "S*/StackedHourglass/*.h5) or the compact pack (cameras.h5, poses_3d.npz, detections_sh.npz)")


def _h5py():
    import h5py
    return h5py


def load_cameras(path) -> dict[str, dict[str, Camera]]:
    """``cameras.h5`` -> {subject: {camera_id: Camera}}."""
    path = Path(path)
    if path.exists() and not path.is_file():   # a FIFO or device would block or mislead h5py
        raise DataError(f"{path}: not a regular file; expected the Human3.6M cameras.h5")
    if not path.is_file():
        raise DataError(f"{path}: file not found; expected the Human3.6M cameras.h5")
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: cannot read as HDF5 ({e}); expected the Human3.6M cameras.h5") from e
    out: dict[str, dict[str, Camera]] = {}
    with f:
        for s in SUBJECTS:
            g = f.get(f"subject{s[1:]}")
            if g is None:
                continue
            out[s] = {}
            for i in range(1, 5):
                where = f"{path}: subject{s[1:]}/camera{i}"
                try:
                    c = g[f"camera{i}"]
                    v = {k: _dataset(c, k, where) for k in ("R", "T", "f", "c", "k", "p", "Name")}
                except KeyError as e:
                    raise DataError(f"{where} lacks {e}; expected R, T, f, c, k, p, Name") from e
                name = _camera_name(v["Name"], where)
                cam = Camera(id=name or H36M_CAMERA_IDS[i - 1], R=v["R"].T, T=v["T"].ravel(), f=v["f"].ravel(),
                             c=v["c"].ravel(), k=v["k"].ravel(), p=v["p"].ravel(),
                             size=(1000, 1002) if name == "55011271" else (1000, 1000))
                shapes = {"R": (3, 3), "T": (3,), "f": (2,), "c": (2,), "k": (3,), "p": (2,)}
                bad = {k: getattr(cam, k).shape for k, want in shapes.items() if getattr(cam, k).shape != want}
                if bad:
                    raise DataError(f"{where} has malformed {', '.join(bad)} (shapes {bad}); expected "
                                    f"{', '.join(f'{k} {v}' for k, v in shapes.items())}")
                check_camera(cam, f"{where} ({cam.id})")
                out[s][cam.id] = cam
    if not out:
        raise DataError(f"{path}: no subject{{1,5,6,7,8,9,11}} groups; expected the Human3.6M cameras.h5")
    return out


def _dataset(group, key: str, where: str) -> np.ndarray:
    """The numeric array ``group[key]``; DataError naming ``where`` when it is a group or
    holds no numbers (KeyError when it is absent)."""
    h5py = _h5py()
    d = group[key]
    if not isinstance(d, h5py.Dataset):
        raise DataError(f"{where}/{key} is an HDF5 {type(d).__name__}; expected a numeric dataset")
    a = np.asarray(d[()])
    if not np.issubdtype(a.dtype, np.number):
        raise DataError(f"{where}/{key} has dtype {a.dtype}; expected numbers")
    return a.astype(np.float64)


def _camera_name(codes: np.ndarray, where: str) -> str:
    """A camera id stored as character codes (``Name``): printable ASCII, else DataError."""
    codes = codes.ravel()
    if not (np.all(np.isfinite(codes)) and np.all(codes == np.round(codes)) and np.all((codes >= 32) & (codes < 127))):
        raise DataError(f"{where}/Name holds {codes[:12].tolist()}; expected character codes of a camera id "
                        "(printable ASCII, e.g. '54138969')")
    return "".join(chr(int(v)) for v in codes)


def check_camera(cam: Camera, where: str, tol: float = 1e-3) -> Camera:
    """A camera that can project: finite R, T, f, c, k, p; focal lengths f > 0; R a
    rotation (orthonormal, det +1, within ``tol``). Else DataError naming ``where``."""
    for name in ("R", "T", "f", "c", "k", "p"):
        v = np.asarray(getattr(cam, name), np.float64)
        if not np.all(np.isfinite(v)):
            raise DataError(f"{where}: {name} has NaN/inf values ({v.ravel().tolist()})")
    if not np.all(cam.f > 0):
        raise DataError(f"{where}: focal lengths f must be > 0, got {cam.f.tolist()}")
    R = np.asarray(cam.R, np.float64)
    err = float(np.abs(R @ R.T - np.eye(3)).max())
    det = float(np.linalg.det(R))
    if err > tol or abs(det - 1) > tol:
        raise DataError(f"{where}: R is not a rotation (|R R^T - I| = {err:.3g}, det R = {det:.6g}; "
                        f"expected orthonormal with det +1 within {tol:g})")
    return cam


def _load_npz(path):
    path = Path(path)
    if path.exists() and not path.is_file():
        raise DataError(f"{path}: not a regular file; expected a numpy .npz archive")
    if not path.is_file():
        raise DataError(f"{path}: file not found; expected {LAYOUTS}")
    try:
        z = np.load(path, allow_pickle=False)
        keys = list(z.files)
        return {k: z[k] for k in keys}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: truncated or corrupt npz ({e}); expected a numpy .npz archive") from e


def _keep(subject, subjects):
    return subjects is None or subject in subjects


def _split_key(key: str, parts: int, file, expected: str) -> list[str]:
    """A pack key split on '/' into ``parts`` non-empty parts, else DataError naming the file."""
    bits = str(key).split("/")
    if len(bits) != parts or not all(b.strip() for b in bits):
        raise DataError(f"{file}: key {key!r} is not of the form {expected}")
    return bits


def load_pack(root, subjects=None) -> Dataset:
    """The compact pack: ``poses_3d.npz`` keys ``S/Action`` (T,17,3) mm and
    ``detections_sh.npz`` keys ``S/Action/camera`` (T,16,2) px, both 10 Hz."""
    root = require_dir(root, LAYOUTS)
    cams = load_cameras(root / "cameras.h5")
    p3 = _load_npz(root / "poses_3d.npz")
    p2 = _load_npz(root / "detections_sh.npz")
    seqs: dict[str, dict[str, Sequence]] = {}
    for key, a in p3.items():
        s, act = _split_key(key, 2, root / "poses_3d.npz", "'<subject>/<action>', e.g. 'S1/Directions 1'")
        if _keep(s, subjects):
            seqs.setdefault(s, {})[act] = Sequence(check_array(a, (17, 3), f"{root / 'poses_3d.npz'}[{key}]",
                                                               "3D poses (17 joints, mm)", bound=MAX_ABS))
    for key, a in p2.items():
        s, act, cam = _split_key(key, 3, root / "detections_sh.npz",
                                 "'<subject>/<action>/<camera id>', e.g. 'S1/Directions 1/54138969'")
        if not _keep(s, subjects):
            continue
        a = check_array(a, (16, 2), f"{root / 'detections_sh.npz'}[{key}]", "2D detections (16 SH joints, px)",
                        bound=MAX_ABS)
        if s in cams and cam not in cams[s]:
            raise DataError(f"{root / 'detections_sh.npz'}[{key}]: unknown camera {cam!r}; expected one of {sorted(cams[s])}")
        seq = seqs.setdefault(s, {}).setdefault(act, Sequence(None))
        seq.poses_2d[cam] = a
    _check_subjects(seqs, cams, root)
    require_frames(seqs, root)
    for s, acts in seqs.items():
        for act, seq in acts.items():
            check_alignment(seq, f"{root / 'poses_3d.npz'}[{s}/{act}]",
                            {c: f"{root / 'detections_sh.npz'}[{s}/{act}/{c}]" for c in seq.poses_2d}, 10.0)
    return Dataset("h36m", str(root), seqs, {s: cams[s] for s in seqs if s in cams}, fps=10.0,
                   notes="Human3.6M (compact pack: 17 joints, 10 Hz, stacked-hourglass detections)")


def _read_h5(path, key: str, what: str) -> np.ndarray:
    """The array ``key`` of one HDF5 file; DataError naming the file when absent or corrupt."""
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as f:
            if key not in f:
                raise DataError(f"{path}: no '{key}' dataset; expected {what}")
            if not isinstance(f[key], h5py.Dataset):
                raise DataError(f"{path}: '{key}' is an HDF5 {type(f[key]).__name__}; expected a dataset, {what}")
            return np.asarray(f[key][()])
    except OSError as e:
        raise DataError(f"{path}: truncated or corrupt HDF5 ({e}); expected {what}") from e


def read_pose_h5(path, stride: int = 5) -> np.ndarray:
    """One original ``3D_positions`` file -> (T, 17, 3) mm (frames [0::stride])."""
    a = _read_h5(path, "3D_positions", "a Human3.6M D3_Positions h5 (96, T)")
    if a.ndim != 2 or a.shape[0] != 96:
        raise DataError(f"{path}: '3D_positions' has shape {a.shape}; expected (96, T) = 32 joints x 3")
    a = a.T.reshape(-1, 32, 3)[::stride][:, list(H36M32_TO_17)]
    return check_array(a, (17, 3), str(path), "3D poses", bound=MAX_ABS)


def read_sh_h5(path, stride: int = 5) -> np.ndarray:
    """One original StackedHourglass file -> (T, 16, 2) px (frames [0::stride])."""
    a = _read_h5(path, "poses", "stacked-hourglass detections (T, 16, 2)")
    return check_array(a[::stride] if a.ndim == 3 else a, (16, 2), str(path), "2D detections (16 SH joints, px)",
                       bound=MAX_ABS)


def load_original(root, subjects=None, stride: int = 5, cameras_path=None) -> Dataset:
    """The original 3d-pose-baseline layout (module docstring). ``cameras_path`` defaults
    to ``<root>/cameras.h5``."""
    root = require_dir(root, LAYOUTS)
    cams = load_cameras(cameras_path or root / "cameras.h5")
    seqs: dict[str, dict[str, Sequence]] = {}
    where: dict[tuple, str] = {}   # (subject, action[, camera]) -> the file it came from
    for sdir in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("S")):
        s = sdir.name
        if not _keep(s, subjects):
            continue
        if s not in cams:
            raise DataError(f"{sdir}: unknown subject {s!r}; cameras.h5 has {sorted(cams)}")
        for f in data_files(sdir / "MyPoses" / "3D_positions", "*.h5"):
            _claim(where, (s, "3D", f.stem.replace("_", " ")), f)   # 'Walking 1' and 'Walking_1' are one action
            seqs.setdefault(s, {})[f.stem] = Sequence(read_pose_h5(f, stride))
            where[s, f.stem] = str(f)
        for f in data_files(sdir / "StackedHourglass", "*.h5"):
            stem, _, cam = f.stem.rpartition(".")
            if cam not in cams[s]:
                raise DataError(f"{f}: unknown camera {cam!r}; expected <Action>.<camera>.h5 with camera in {sorted(cams[s])}")
            act = stem.replace("_", " ")
            _claim(where, (s, act, cam), f)
            seqs.setdefault(s, {}).setdefault(act, Sequence(None)).poses_2d[cam] = read_sh_h5(f, stride)
            where[s, act, cam] = str(f)
    if not seqs:
        raise DataError(f"{root}: no S*/MyPoses/3D_positions/*.h5 or S*/StackedHourglass/*.h5 found; expected {LAYOUTS}")
    _check_subjects(seqs, cams, root)
    require_frames(seqs, root)
    for s, acts in seqs.items():
        for act, seq in acts.items():
            check_alignment(seq, where.get((s, act), f"{s}/{act}"),
                            {c: where[s, act, c] for c in seq.poses_2d}, 50.0 / stride)
    return Dataset("h36m", str(root), seqs, {s: cams[s] for s in seqs}, fps=50.0 / stride,
                   notes="Human3.6M (3d-pose-baseline layout, stacked-hourglass detections)")


def _claim(where: dict, key: tuple, f: Path) -> None:
    """DataError when two files map to one sequence (``key``: subject, action or "3D",
    camera or action), naming both: one would silently replace the other."""
    if key in where:
        what = (f"3D poses of {key[0]}/{key[2]}" if key[1] == "3D"
                else f"detections of {key[0]}/{key[1]} camera {key[2]}")
        raise DataError(f"{f} and {where[key]} are both the {what} ('_' reads as ' '); expected one file per sequence")
    where[key] = str(f)


def _check_subjects(seqs, cams, root):
    for s in seqs:
        if s not in cams:
            raise DataError(f"{root}: unknown subject {s!r}; cameras.h5 has {sorted(cams)}")


def check_layout(root) -> Path:
    """``root`` when it holds one of :data:`LAYOUTS` by its file names alone (no file is
    read: a check before any work); else DataError naming the folder and the layouts."""
    root = require_dir(root, LAYOUTS)
    for r in (root, root / "h36m"):
        if (r / "cameras.h5").is_file() and ((r / "poses_3d.npz").is_file() or (r / "detections_sh.npz").is_file()
                                             or any(r.glob("S*/MyPoses/3D_positions/*.h5"))
                                             or any(r.glob("S*/StackedHourglass/*.h5"))):
            return root
    raise DataError(f"{root}: holds no Human3.6M copy (no cameras.h5 with poses_3d.npz or S*/.../*.h5); "
                    f"expected {LAYOUTS}")


def load_h36m(root, subjects=None, **kwargs) -> Dataset:
    """Either layout, detected from the files present."""
    root = require_dir(root, LAYOUTS)
    if (root / "poses_3d.npz").exists() or (root / "detections_sh.npz").exists():
        return load_pack(root, subjects)
    if (root / "h36m").is_dir() and (root / "h36m" / "cameras.h5").exists():
        return load_h36m(root / "h36m", subjects, **kwargs)
    return load_original(root, subjects, **kwargs)

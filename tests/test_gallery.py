"""Figures 7 and 8's per-image work (geo.gallery.items): which 2D paths each image gets,
what is measured between them, and that a bad image is said and skipped."""
from types import SimpleNamespace

import cv2
import numpy as np

from geo import gallery


def _person(rng):
    x = rng.uniform(40, 160, (16, 2)).astype(np.float32)
    x[9] = x[8] + [0, -20]                        # head top 20 px above the upper neck: head segment 20 px
    return x


def _setup(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(tmp_path / name), np.full((200, 200, 3), 128, np.uint8))
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    x = _person(rng)
    ann = SimpleNamespace(image_names=["a.jpg"], joints=[x], visible=[np.ones(16, bool)],
                          center=[np.array([100.0, 100.0])], scale=[0.5], source="test.json")
    return x, ann


class Estimator:
    """Every joint of the annotation moved 3 px right, in full-image pixels after the crop."""
    def __init__(self, x):
        self.x, self.calls = x, []

    def __call__(self, image, where):
        self.calls.append((image.shape, where))
        off = np.array([37, 37], np.float32) if "crop" in where else 0   # crop_box of centre 100, scale 0.5: from (37, 37)
        return SimpleNamespace(joints=self.x + [3, 0] - off, landmarks=np.zeros((33, 2), np.float32))


def lifter(x16):
    """A stand-in lifter: 3D = (x, y, 0) in mm, so a 2D shift is the same 3D shift."""
    x16 = np.asarray(x16, np.float32)
    return np.concatenate([x16[:, :17], np.zeros((len(x16), 16, 1), np.float32)], -1)[:, [*range(16), 0]]


def test_both_paths_measured_and_bad_image_said(tmp_path):
    x, ann = _setup(tmp_path)
    est = Estimator(x)
    out = gallery.items([tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "bad.jpg"], ann, est, lifter)
    assert [it["name"] for it in out.fig7] == ["a.jpg", "b.jpg"]
    assert list(out.fig7[0]["paths"]) == [gallery.EST]              # Figure 7 shows the estimator's path only
    assert [it["name"] for it in out.fig8] == ["a.jpg"]             # Figure 8: images with both paths
    assert list(out.fig8[0]["paths"]) == [gallery.EST, gallery.ANN]
    (e,) = out.errors
    assert e["image"] == "a.jpg" and np.isclose(e["mean_2d_error_px"], 3.0) and np.isclose(e["head_px"], 20.0)
    assert e["pckh_0.5"] == 1.0 and np.isclose(e["3d_difference_mm"], 3.0, atol=1e-4)
    assert "crop" in est.calls[0][1] and "crop" not in est.calls[1][1]   # the annotated person's box is used
    assert len(out.failures) == 1 and "bad.jpg" in out.failures[0]


def test_without_estimator_the_annotation_is_both_figures(tmp_path):
    x, ann = _setup(tmp_path)
    out = gallery.items([tmp_path / "a.jpg", tmp_path / "b.jpg"], ann, None, lifter)
    assert [it["name"] for it in out.fig7] == ["a.jpg"] == [it["name"] for it in out.fig8]
    assert list(out.fig7[0]["paths"]) == [gallery.ANN] and not out.errors
    np.testing.assert_allclose(out.fig7[0]["paths"][gallery.ANN][0], x)

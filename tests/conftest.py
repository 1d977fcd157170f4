"""Shared pytest fixtures."""
from pathlib import Path

import pytest

# Licensed development data lives outside the repository, next to it: ../shared/data.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (licensed; never copied into the repo). Skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent (licensed datasets are not in the repository)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def h36m_dir(shared_data) -> Path:
    """``../shared/data/h36m``: the compact Human3.6M pack (skips when absent)."""
    d = shared_data / "h36m"
    if not (d / "poses_3d.npz").is_file():
        pytest.skip(f"{d} holds no Human3.6M pack")
    return d


@pytest.fixture(scope="session")
def h36m_pack(h36m_dir):
    """The whole shared Human3.6M pack, loaded once per test session (read by path)."""
    from geo.data.h36m import load_pack

    return load_pack(h36m_dir)


@pytest.fixture
def write_video():
    """``write_video(path, values, size=(w, h), fps)``: a small mp4v video of uniform
    frames of grey ``values`` at ``path``, returned (the tests of video input)."""
    def write(path, values, size=(64, 64), fps=10.0):
        import cv2
        import numpy as np

        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        assert w.isOpened(), "this OpenCV cannot write mp4v"
        for v in values:
            w.write(np.full((size[1], size[0], 3), v, np.uint8))
        w.release()
        return path

    return write


@pytest.fixture
def no_heavy_work(monkeypatch):
    """CLI tests of argument checking: were an argument let through, fail at once instead
    of running notebooks, pipeline stages, training or lifting."""
    import geo.__main__ as cli
    import geo.pipeline
    import geo.train

    def refuse(*a, **k):
        raise AssertionError(f"work started with {a} {k}")

    monkeypatch.setattr(cli, "reproduce", refuse)
    monkeypatch.setattr(geo.pipeline, "run", refuse)
    monkeypatch.setattr(geo.train, "command", refuse)
    monkeypatch.setattr("geo.lift.lift_images", refuse)

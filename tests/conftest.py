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

"""Ctrl-C during `python -m geo train` saves a checkpoint and stops with one line; the same
command with --resume continues from it."""
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_ctrl_c_on_geo_train_saves_and_resumes(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "geo", "train", "--variant", "SG", "--out", str(out), "--profile", "quick",
           "--steps", "100000", "--batch", "4"]
    p = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    try:
        deadline = time.time() + 120
        while not (out / "last.pt").exists() and time.time() < deadline:   # the first checkpoint (step 30)
            time.sleep(0.5)
        assert (out / "last.pt").exists(), "no checkpoint within 120 s"
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert "Traceback" not in err and "stopped by SIGINT at step" in err and "--resume" in err, err
    from geo.train import read_checkpoint

    step = read_checkpoint(out / "last.pt")["step"]
    assert f"at step {step}/100000" in err                                 # the checkpoint is where it stopped
    r = subprocess.run(cmd[:-4] + ["--steps", str(step + 3), "--batch", "4", "--resume"], cwd=REPO,
                       capture_output=True, text=True, timeout=120,
                       env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    assert f"step {step + 3}/{step + 3}" in r.stdout, r.stdout


def test_resume_without_a_checkpoint_says_so(tmp_path):
    r = subprocess.run([sys.executable, "-m", "geo", "train", "--variant", "AE", "--out", str(tmp_path / "new"),
                        "--steps", "1", "--batch", "2", "--resume"], cwd=REPO, capture_output=True, text=True,
                       timeout=120, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    assert "holds no checkpoint (last.pt); starting from step 0" in r.stdout

"""What a GPU run carries (scripts/device_data.py): the pack and committed weights in
their smallest lossless form, back bit for bit, with the same data identity; and the
prepared run accepts it."""
import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from geo import experiments as E

REPO = Path(__file__).resolve().parents[1]
SHARED_H36M = REPO.parent / "shared" / "data" / "h36m"


def _module():
    spec = importlib.util.spec_from_file_location("device_data", REPO / "scripts" / "device_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


D = _module()


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    np.savez_compressed(src / "poses.npz", **{"S1/Walk 1": rng.normal(size=(7, 17, 3)).astype(np.float32),
                                              "S9/Sit": rng.normal(size=(3, 16, 2)).astype(np.float32),
                                              "ints": np.arange(5, dtype=np.int64)})
    (src / "cameras.h5").write_bytes(rng.bytes(301))
    (src / "sub" / "w.pt").write_bytes(rng.bytes(1000))     # even length: stored in 2-byte planes
    (src / "sub" / "odd.pt").write_bytes(rng.bytes(999))    # odd: as it is
    (src / ".hidden").write_bytes(b"left out")
    return src


def test_roundtrip_is_lossless_and_keeps_the_identity(folder, tmp_path):
    header = D.pack(folder, tmp_path / "c.xz", preset=0)
    assert {f["name"] for f in header["files"]} == {"poses.npz", "cameras.h5", "sub/w.pt", "sub/odd.pt"}
    assert {f["name"]: f.get("stride") for f in header["files"]}["sub/w.pt"] == 2
    out = D.unpack(tmp_path / "c.xz", tmp_path / "out")
    for name in ("cameras.h5", "sub/w.pt", "sub/odd.pt"):
        assert (out / name).read_bytes() == (folder / name).read_bytes(), name
    a, b = np.load(folder / "poses.npz"), np.load(out / "poses.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
    assert not (out / ".hidden").exists()
    assert E.data_identity(str(out)) == E.data_identity(str(folder)) == header["identity"]


def test_identity_is_the_arrays_not_the_zip(folder, tmp_path):
    """Re-saving the same arrays (another compression) keeps the identity; one changed
    value changes it; so does a changed non-npz file."""
    before = E.data_identity(str(folder))
    with np.load(folder / "poses.npz") as z:
        arrays = {k: z[k] for k in z.files}
    buf = io.BytesIO()
    np.savez(buf, **arrays)                                      # uncompressed this time
    (folder / "poses.npz").write_bytes(buf.getvalue())
    assert E.data_identity(str(folder)) == before
    arrays["ints"] = arrays["ints"].copy()
    arrays["ints"][2] += 1
    np.savez(folder / "poses.npz", **arrays)
    changed = E.data_identity(str(folder))
    assert changed != before
    (folder / "cameras.h5").write_bytes(b"x" + (folder / "cameras.h5").read_bytes()[1:])
    assert E.data_identity(str(folder)) != changed


def test_bad_input_is_named_and_leaves_nothing(folder, tmp_path):
    with pytest.raises(D.PackError, match="not a folder"):
        D.pack(tmp_path / "missing", tmp_path / "x.xz")
    (tmp_path / "junk.xz").write_bytes(b"not xz at all")
    with pytest.raises(D.PackError, match="junk.xz"):
        D.unpack(tmp_path / "junk.xz", tmp_path / "o1")
    D.pack(folder, tmp_path / "c.xz", preset=0)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(D.PackError, match="not empty"):
        D.unpack(tmp_path / "c.xz", tmp_path / "full")
    # a payload cut short: detected (identity or length), no half-made folder left
    import lzma
    raw = lzma.decompress((tmp_path / "c.xz").read_bytes())
    (tmp_path / "cut.xz").write_bytes(lzma.compress(raw[:-50]))
    with pytest.raises(D.PackError, match="cut.xz"):
        D.unpack(tmp_path / "cut.xz", tmp_path / "o2")
    assert not (tmp_path / "o2").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


@pytest.mark.skipif(not SHARED_H36M.is_dir(), reason="needs ../shared/data/h36m (the real Human3.6M pack)")
def test_gpu_run_takes_the_staged_file(tmp_path):
    """The prepared run unpacks a staged file (pack + committed weights), puts the weights
    where geo reads them, and runs on the unpacked copy."""
    wsrc = tmp_path / "wsrc"
    wsrc.mkdir()
    (wsrc / "X_Y.json").write_text('{"files": {"X_Y.phi.pt": {"part": "phi"}}}')
    (wsrc / "X_Y.phi.pt").write_bytes(b"\0\1" * 64)
    (wsrc / "X_Y.regressor.pt").write_bytes(b"not listed in X_Y.json: stays home")
    env = {**os.environ, "GEO_WEIGHTS": str(wsrc)}
    staged = tmp_path / "carried.xz"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "device_data.py"), "stage", str(SHARED_H36M),
                        str(staged), "--weights", "X_Y", "--preset", "0"], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    wdir, out, work = tmp_path / "wdev", tmp_path / "OUT", tmp_path / "work"
    env = {**os.environ, "PYTHON": sys.executable, "GEO_WORK": str(work), "GEO_WEIGHTS": str(wdir),
           "GEO_STAGES": "bench"}
    env.pop("GEO_FIGURES", None)
    r = subprocess.run(["bash", str(REPO / "scripts" / "gpu_run.sh"), str(staged), str(out), "tiny", "300", "abc"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert (wdir / "X_Y.phi.pt").read_bytes() == b"\0\1" * 64
    assert sorted(p.name for p in wdir.iterdir()) == ["X_Y.json", "X_Y.phi.pt"]
    assert f"data {work / 'carried' / 'h36m'}" in r.stdout
    assert E.data_identity(str(work / "carried" / "h36m")) == E.data_identity(str(SHARED_H36M))

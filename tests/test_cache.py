"""Nothing cached is reused for something else (geo.cache, geo.lock): full-gpu's OUT is
keyed by data identity and profile, one process trains in a run folder at a time, the
prepared GPU run re-unpacks a different carried file and never bundles the data, and a
pack is never written into the data it packs."""
import importlib.util
import json
import os
import subprocess
import sys
import time
import tarfile
from pathlib import Path

import pytest

import geo.__main__ as cli
from geo import cache

REPO = Path(__file__).resolve().parents[1]


def _stage_json(out: Path, data="embedded"):
    out.mkdir(parents=True, exist_ok=True)
    (out / "fig5.json").write_text(json.dumps({"fig5": {"rows": []}, "meta": {"data": data, "profile": "quick"}}))


def test_full_gpu_never_skips_a_stage_made_from_other_data(tmp_path, capsys):
    out = tmp_path / "OUT"
    _stage_json(out, "/other/h36m")   # left by another run, of other data
    argv = ["full-gpu", "--data", "embedded", "--out", str(out), "--profile", "tiny", "--stages", "fig5"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "unknown origin" in err and "fig5.json" in err, err
    (out / cache.KEY_FILE).write_text(json.dumps({"data_identity": "f" * 64, "profile": "tiny"}))
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "data_identity" in err and "another run" in err, err


def test_claim_accepts_its_own_folder(tmp_path):
    key = {"data_identity": "embedded", "profile": "tiny"}
    cache.claim(tmp_path / "new", key)
    _stage_json(tmp_path / "new")
    assert cache.claim(tmp_path / "new", key).name == cache.KEY_FILE   # a resumed run of the same data
    with pytest.raises(cache.StaleCache, match="profile: 'tiny' there, 'full' now"):
        cache.claim(tmp_path / "new", {**key, "profile": "full"})


def _hold_elsewhere(folder, seconds: float) -> subprocess.Popen:
    """Another process holding ``folder``'s lock for ``seconds``, returned once it holds it."""
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; sys.path.insert(0, sys.argv[2]); from geo.lock import hold\n"
                               "with hold(sys.argv[1]):\n print('held', flush=True); time.sleep(float(sys.argv[3]))",
                               str(folder), str(REPO), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_trainer_on_one_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = _hold_elsewhere(out, 60)
    try:
        assert cli.main(["train", "--variant", "SG", "--out", str(out), "--steps", "2", "--batch", "4"]) == 2
        err = capsys.readouterr().err
        assert "--out" in err and str(out) in err and f"process {holder.pid}" in err, err
        assert not (out / "last.pt").exists()
    finally:
        holder.kill()
        holder.wait()
    from geo.lock import hold   # the kernel released it with the process: no stale lock

    with hold(out), hold(out):   # and it is re-entrant within a process
        pass


def _stub_python(tmp_path) -> Path:
    """A stand-in for python in scripts/gpu_run.sh: unpack makes a carried folder named
    after the file, full-gpu writes one result; nothing heavy runs."""
    stub = tmp_path / "py"
    stub.write_text("""#!/usr/bin/env bash
case "$1" in
  *device_data.py) mkdir -p "$4/h36m" && cp "$3" "$4/h36m/poses_3d.npz" && echo "unpacked $3" ;;
  -m) for i in $(seq 1 $#); do if [ "${!i}" = --out ]; then j=$((i+1)); echo '{}' > "${!j}/fig5.json"; fi; done ;;
esac
""")
    stub.chmod(0o755)
    return stub


def test_gpu_run_reunpacks_another_carried_file_and_bundles_no_data(tmp_path):
    work, out = tmp_path / "work", tmp_path / "OUT"
    env = {**os.environ, "PYTHON": str(_stub_python(tmp_path)), "GEO_WORK": str(work)}
    a, b = tmp_path / "a.xz", tmp_path / "b.xz"
    a.write_bytes(b"data A")
    b.write_bytes(b"data B")

    def run(src):
        r = subprocess.run(["bash", str(REPO / "scripts" / "gpu_run.sh"), str(src), str(out), "tiny", "60", "abc"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    assert f"unpacked {a}" in run(a)
    assert f"unpacked {a}" not in run(a)                                   # the same file: reused
    assert f"unpacked {b}" in run(b)                                       # another: unpacked again
    assert (work / "carried" / "h36m" / "poses_3d.npz").read_bytes() == b"data B"
    (work / "x.partial-1").mkdir()
    (work / ".fig5.json.1-ab.tmp").write_text("half")
    run(b)
    with tarfile.open(out / "results.tar") as t:
        names = t.getnames()
    assert "./fig5.json" in names
    assert not [n for n in names if "carried" in n or "partial" in n or n.endswith(".tmp")], names


def test_pack_is_never_written_into_its_data(tmp_path):
    spec = importlib.util.spec_from_file_location("device_data", REPO / "scripts" / "device_data.py")
    D = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(D)
    (tmp_path / "h36m").mkdir()
    (tmp_path / "h36m" / "a.txt").write_text("a")
    with pytest.raises(D.PackError, match="inside the data folder"):
        D.pack(tmp_path / "h36m", tmp_path / "h36m" / "sub" / "c.xz", preset=0)
    with pytest.raises(D.PackError, match="inside the data folder"):
        D.stage(tmp_path / "h36m", tmp_path / "h36m" / "c.xz", preset=0)
    assert sorted(p.name for p in (tmp_path / "h36m").iterdir()) == ["a.txt"]


def test_two_copies_of_one_name_never_share_a_figures_folder(tmp_path, monkeypatch):
    from geo.results import Provenance, figures_dir

    monkeypatch.delenv("GEO_FIGURES", raising=False)
    monkeypatch.setenv("GEO_RUNS", str(tmp_path / "runs"))
    for copy, content in (("a", b"A"), ("b", b"B")):
        (tmp_path / copy / "h36m").mkdir(parents=True)
        (tmp_path / copy / "h36m" / "cameras.h5").write_bytes(content)
        (tmp_path / copy / "h36m" / "poses_3d.npz").write_bytes(b"")
    da, db = (figures_dir(prov=Provenance(str(tmp_path / c / "h36m"), "quick")) for c in ("a", "b"))
    assert da != db and da.name == db.name == "h36m-quick"
    (tmp_path / "c" / "h36m").mkdir(parents=True)                      # the same data at another path
    (tmp_path / "c" / "h36m" / "cameras.h5").write_bytes(b"A")
    (tmp_path / "c" / "h36m" / "poses_3d.npz").write_bytes(b"")
    assert figures_dir(prov=Provenance(str(tmp_path / "c" / "h36m"), "quick")) == da


def test_train_waits_for_another_process_on_its_folder(tmp_path, capsys):
    """Library callers (notebook parts sharing a generator) wait for the holder, then
    find its checkpoint; I_SG still says why it cannot train, without a folder."""
    from geo.data import load
    from geo.pairs import PairSource
    from geo.train import NeedsImages, config_for, load_checkpoint, train

    out = tmp_path / "run"
    out.mkdir()
    holder = _hold_elsewhere(out, 3)
    t_held = time.time()
    try:
        ds = load("embedded")
        cfg = config_for("SG", "quick", steps=2, batch=4, generator=dict(width=4, points=8))
        train(cfg, PairSource(ds, ds.train_subjects), out, progress=False)
        # it returned only after the holder's 3 s (a lower bound: load only makes it later);
        # the holder, having released the lock, exits on its own
        assert time.time() - t_held >= 2.0 and f"in use by process {holder.pid}; waiting" in capsys.readouterr().out
        assert holder.wait(timeout=60) == 0 and load_checkpoint(out)[2]["step"] == 2
    finally:
        holder.kill()
        holder.wait()
    with pytest.raises(NeedsImages):
        train(config_for("I_SG", "quick"), None, None)

"""No code or paths taken from files (geo.safety): a pickle that would run code is refused
wherever geo loads a .pt, a file name read from a file stays inside its folder, and a
value read from a file never steers where results are written."""
import importlib.util
import io
import json
import lzma
import os
from pathlib import Path

import pytest
import torch

from geo import safety

REPO = Path(__file__).resolve().parents[1]


class _Evil:
    """Unpickling this runs a command (what a hostile last.pt would hold)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_blob(marker, **more) -> bytes:
    buf = io.BytesIO()
    torch.save({"config": {}, "models": _Evil(marker), **more}, buf)
    return buf.getvalue()


def _device_data():
    spec = importlib.util.spec_from_file_location("device_data", REPO / "scripts" / "device_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ------------------------------------------------------------------ code from files
def test_resume_of_a_malicious_checkpoint_runs_nothing(tmp_path):
    from geo.train import CheckpointError, load_checkpoint, read_checkpoint

    marker = tmp_path / "pwned"
    (tmp_path / "last.pt").write_bytes(_evil_blob(marker))
    with pytest.raises(CheckpointError, match="last.pt"):
        read_checkpoint(tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="last.pt"):
        load_checkpoint(tmp_path)
    assert not marker.exists()


def test_malicious_weights_and_regressor_run_nothing(tmp_path):
    from geo import lift
    from geo.weights import WeightsError, load_parts

    marker = tmp_path / "pwned"
    blob = _evil_blob(marker)
    (tmp_path / "X.phi.pt").write_bytes(blob)
    (tmp_path / "X.json").write_text(json.dumps({
        "variant": "X", "config": {}, "files": {"X.phi.pt": {"sha256": safety_sha(blob), "bytes": len(blob),
                                                              "part": "phi"}}}))
    with pytest.raises(WeightsError, match="X"):
        load_parts("X", tmp_path)
    (tmp_path / "R.regressor.pt").write_bytes(blob)
    (tmp_path / "R.regressor.json").write_text(json.dumps({"sha256": safety_sha(blob)}))
    with pytest.raises(WeightsError, match="R.regressor.pt"):
        lift.load(tmp_path / "R.regressor.pt")
    assert not marker.exists()


def safety_sha(b):
    import hashlib

    return hashlib.sha256(b).hexdigest()


def test_load_tensors_keeps_plain_data():
    buf = io.BytesIO()
    torch.save({"a": torch.ones(2), "b": [1, 2.5, "x"], "c": {"d": None}}, buf)
    got = safety.load_tensors(buf.getvalue())
    assert torch.equal(got["a"], torch.ones(2)) and got["b"] == [1, 2.5, "x"] and got["c"] == {"d": None}


# ------------------------------------------------------------------ paths from files
@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a/../../x", "a//b", "", "a\\..\\b", "x\0y", 3, None])
def test_confined_refuses_names_that_leave_the_folder(tmp_path, name):
    with pytest.raises(safety.UnsafeFile):
        safety.confined(tmp_path, name, "the header")


def test_confined_refuses_a_symlinked_folder_and_keeps_plain_names(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "sub").symlink_to(tmp_path / "out")
    with pytest.raises(safety.UnsafeFile, match="outside"):
        safety.confined(tmp_path / "root", "sub/x.bin")
    assert safety.confined(tmp_path / "root", "a/b.pt") == tmp_path / "root" / "a" / "b.pt"


def test_weight_sidecar_naming_a_file_outside_is_refused_unread(tmp_path, monkeypatch):
    from geo.weights import WeightsError, load_parts

    d = tmp_path / "w"
    d.mkdir()
    (tmp_path / "big.bin").write_bytes(b"\0" * 1000)
    (d / "X.json").write_text(json.dumps({"variant": "X", "config": {}, "files": {
        "../big.bin": {"sha256": "0" * 64, "bytes": 1000, "part": "phi"}}}))
    read = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or real(self))
    with pytest.raises(WeightsError, match=r"\.\./big\.bin"):
        load_parts("X", d)
    assert not [p for p in read if p.name == "big.bin"]


def test_weight_file_over_the_limit_is_not_read(tmp_path):
    from geo.weights import MAX_BYTES, WeightsError, load_parts

    with open(tmp_path / "X.phi.pt", "wb") as f:   # sparse: large without using the disk
        f.truncate(MAX_BYTES + 1)
    (tmp_path / "X.json").write_text(json.dumps({"variant": "X", "config": {}, "files": {
        "X.phi.pt": {"sha256": "0" * 64, "bytes": 10, "part": "phi"}}}))
    with pytest.raises(WeightsError, match="X.phi.pt.*not read"):
        load_parts("X", tmp_path)


def _pack_with(tmp_path, header_files, payload=b"", identity="x"):
    head = json.dumps({"format": "geo-device-data/1", "identity": identity, "files": header_files}).encode()
    p = tmp_path / "evil.xz"
    p.write_bytes(lzma.compress(len(head).to_bytes(8, "little") + head + payload))
    return p


@pytest.mark.parametrize("name", ["../escaped", "ABSOLUTE", "a/../../escaped"])
def test_unpack_refuses_names_outside_before_writing(tmp_path, name):
    D = _device_data()
    name = str(tmp_path / "abs-escaped") if name == "ABSOLUTE" else name
    src = _pack_with(tmp_path, [{"name": name, "kind": "bytes", "size": 3, "stride": 1}], b"abc")
    out = tmp_path / "sub" / "out"
    with pytest.raises(D.PackError, match="evil.xz"):
        D.unpack(src, out)
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "sub" / "escaped").exists()
    assert not (tmp_path / "abs-escaped").exists()
    assert not (tmp_path / "sub").exists()   # refused before anything was made


def test_unpack_never_decompresses_more_than_declared(tmp_path, monkeypatch):
    D = _device_data()
    # a small file that decompresses to 64 MiB, declaring 3 bytes: stopped at 4 bytes
    src = _pack_with(tmp_path, [{"name": "f", "kind": "bytes", "size": 3, "stride": 1}], b"\0" * (64 << 20))
    assert src.stat().st_size < 1 << 20
    seen = []
    real = D._inflate
    monkeypatch.setattr(D, "_inflate", lambda *a: seen.append(len(r := real(*a))) or r)
    with pytest.raises(D.PackError, match="declares 3"):
        D.unpack(src, tmp_path / "out")
    assert max(seen) <= 1 << 20 and not (tmp_path / "out").exists()
    big = _pack_with(tmp_path, [{"name": "f", "kind": "bytes", "size": D.MAX_UNPACKED + 1, "stride": 1}])
    with pytest.raises(D.PackError, match="more than"):
        D.unpack(big, tmp_path / "out")


def test_stage_copies_only_files_beside_the_sidecar(tmp_path, monkeypatch):
    D = _device_data()
    w = tmp_path / "w"
    w.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"not weights")
    (w / "X.json").write_text(json.dumps({"files": {"../secret.bin": {"part": "phi"}}}))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a")
    monkeypatch.setenv("GEO_WEIGHTS", str(w))
    with pytest.raises(D.PackError, match="secret.bin"):
        D.stage(tmp_path / "data", tmp_path / "c.xz", ["X"], preset=0)
    assert not (tmp_path / "c.xz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "secret.bin", "w"]   # its work folder is gone


# ------------------------------------------------------- output paths from file contents
def test_profile_from_a_file_never_names_a_folder(tmp_path, monkeypatch):
    from geo import experiments as E
    from geo.results import Provenance, figures_dir

    monkeypatch.delenv("GEO_FIGURES", raising=False)
    monkeypatch.setenv("GEO_RUNS", str(tmp_path / "runs"))
    bad = "x/../../../ESCAPED"
    with pytest.raises(safety.UnsafeFile, match="profile"):
        figures_dir(prov=Provenance("embedded", bad))
    p = tmp_path / "fig5.json"
    p.write_text(json.dumps({"fig5": {}, "meta": {"data": "embedded", "profile": bad}}))
    with pytest.raises(ValueError, match="meta.profile"):
        E.load_precomputed(p, "fig5", "embedded", "quick")
    assert not list(tmp_path.rglob("ESCAPED"))


def test_a_json_claiming_full_on_h36m_cannot_publish_a_quick_run(tmp_path):
    from geo import experiments as E

    p = tmp_path / "fig5.json"
    p.write_text(json.dumps({"fig5": {"rows": []}, "meta": {"data": "/x/h36m", "profile": "full"}}))
    for data, profile in (("embedded", "quick"), ("/data/h36m", "quick"), ("embedded", "full")):
        with pytest.raises(ValueError, match="tracked figures"):
            E.load_precomputed(p, "fig5", data, profile)
    stored, meta, data, profile = E.load_precomputed(p, "fig5", "/data/h36m", "full")   # a full run draws it
    assert (data, profile) == ("/x/h36m", "full")
    p.write_text(json.dumps({"fig5": {"rows": []}, "meta": {"data": "embedded", "profile": "quick"}}))
    assert E.load_precomputed(p, "fig5", "embedded", "quick")[3] == "quick"


def test_plain_name():
    assert safety.plain_name("full", "profile") == "full"
    for bad in ("", ".", "..", "a/b", ".hidden", None, ["full"], "x" * 101):
        with pytest.raises(safety.UnsafeFile):
            safety.plain_name(bad, "profile")


def test_results_source_says_where_a_notebooks_numbers_come_from(tmp_path):
    from geo import experiments as E

    assert E.results_source("", "fig5", "embedded", "quick") == (None, {}, "embedded", "quick",
                                                                  " (quick profile: not the paper's setting)")
    assert E.results_source("", "fig5", "/data/h36m", "full")[4] == ""
    p = tmp_path / "fig5.json"
    rec = {"width": 16, "pairs": 406_528}
    p.write_text(json.dumps({"fig5": {"rows": [1]}, "meta": {"data": "/x/h36m", "profile": "cpu",
                                                             "generators": {"DG+AUG": rec}}}))
    stored, meta, data, profile, note = E.results_source(p, "fig5", "/data/h36m", "full")
    assert stored == {"rows": [1]} and (data, profile) == ("/x/h36m", "cpu") and meta["generators"]["DG+AUG"] == rec
    assert "width 16" in note and "406,528 training pairs" in note


def test_an_oversized_regressor_is_not_read(tmp_path, monkeypatch):
    """A lifter regressor goes through the same bounded, sha-checked read as generator
    weights: over the size limit it is refused before a byte is read."""
    from geo import lift, weights

    blob = b"\0" * 4096
    (tmp_path / "R.regressor.pt").write_bytes(blob)
    (tmp_path / "R.regressor.json").write_text(json.dumps({"sha256": safety_sha(blob)}))
    monkeypatch.setattr(weights, "MAX_BYTES", 1024)
    monkeypatch.setattr(type(tmp_path / "x"), "read_bytes", lambda p: pytest.fail(f"read {p}"))
    with pytest.raises(weights.WeightsError, match=r"R\.regressor\.pt: 4096 bytes.*not read"):
        lift.load(tmp_path / "R.regressor.pt")

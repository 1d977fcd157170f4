"""The prepared GPU run, rehearsed on CPU: scripts/gpu_run.sh runs every stage of
`python -m geo full-gpu` end to end on the embedded default in the tiny profile and
bundles what a GPU run would bring back within the transfer limits."""
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("OUT")
    work = tmp_path_factory.mktemp("work")
    env = {**os.environ, "PYTHON": sys.executable, "GEO_WORK": str(work)}
    env.pop("GEO_FIGURES", None)
    # The budget only guards (the tiny profile trains about 8 s): generous, so that a loaded
    # 2-core machine does not cut the rehearsal (about 70 s when the machine is quiet).
    r = subprocess.run(["bash", str(REPO / "scripts" / "gpu_run.sh"), "embedded", str(out), "tiny", "1200", "abc123"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out, work, r.stdout


@pytest.mark.slow
def test_bundle_fits_the_device_limits(bundle):
    out, _, _ = bundle
    files = [p for p in out.rglob("*") if p.is_file()]
    assert 0 < len(files) <= 8, [p.name for p in files]
    assert all(p.stat().st_size <= 16 * 2**20 for p in files)
    assert sum(p.stat().st_size for p in files) <= 64 * 2**20
    assert all(p.parent == out for p in files)  # no folders: nothing too deep to come back


@pytest.mark.slow
def test_every_stage_wrote_its_result(bundle):
    out, _, log = bundle
    with tarfile.open(out / "results.tar") as t:
        names = {Path(n).name for n in t.getnames()}
        blobs = {Path(m.name).name: json.load(t.extractfile(m)) for m in t.getmembers()
                 if m.isfile() and m.name.endswith(".json")}
    for name in ("generators.json", "fig5.json", "fig6.json", "bench_regressors.json", "schedule.json", "tables.json"):
        assert name in names, (name, sorted(names), log[-2000:])
    gens = blobs["generators.json"]["generators"]
    assert set(gens) == {"AE", "SG", "SG+AUG", "DG+AUG"}
    for v, g in gens.items():
        assert g["steps"] >= 1 and g["history"]["iou"], v          # held-out IoU logged during training
    assert blobs["fig5.json"]["meta"]["commit"] == "abc123"   # the commit passed in wins over any .git there
    for name in ("generators.json", "fig5.json", "fig6.json"):      # wall time = the stage's work, not the save
        meta = blobs[name]["meta"]
        assert meta["wall_time_s"] >= 0.9 * meta["stage_wall_s"] - 0.2, (name, meta["wall_time_s"], meta["stage_wall_s"])
    assert blobs["fig5.json"]["fig5"]["rows"] and blobs["fig6.json"]["fig6"]["Regression#1"]
    t1 = blobs["tables.json"]["tables"]["table1"]   # the tables stage: every protocol, both inputs, G and no G
    assert {(x["protocol"], x["input"]) for x in t1 if x["input"] != "image"} == {
        (p, i) for p in ("#1", "#2", "#3") for i in ("sh", "gt")}
    assert all(x["Avg."] is not None for x in t1 if x["input"] != "image")
    assert all(x["status"] == "needs video frames" for x in t1 if x["input"] == "image")


@pytest.mark.slow
def test_weights_come_back_and_load_with_their_hash(bundle, tmp_path):
    from geo import weights

    out, _, _ = bundle
    with tarfile.open(out / "results.tar") as t:
        t.extractall(tmp_path, filter="data")
    wdir = tmp_path / "weights"
    for p in out.glob("*.pt"):
        (wdir / p.name).write_bytes(p.read_bytes())
    for variant in ("DG+AUG", "SG+AUG"):
        models = weights.load(variant, wdir)
        assert "phi_psi" in models
    models = weights.load("DG+AUG", wdir)
    assert "mu_nu" in models


@pytest.mark.slow
def test_a_second_run_skips_finished_stages(bundle):
    out, work, _ = bundle
    env = {**os.environ, "PYTHON": sys.executable, "GEO_WORK": str(work)}
    env.pop("GEO_FIGURES", None)
    r = subprocess.run(["bash", str(REPO / "scripts" / "gpu_run.sh"), "embedded", str(out), "tiny", "1200", "abc123"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:]
    for stage in ("generators", "fig5", "fig6", "tables"):
        assert f"{stage}: {stage}.json exists, skipped" in r.stdout


@pytest.mark.slow
def test_a_later_lease_continues_from_the_weights(bundle, tmp_path):
    """Weights that came back (and get committed) are where the next GPU run starts: with
    them in the weights folder, a fresh run's schedule adds its new steps to theirs and
    the generators continue their step count."""
    out, _, _ = bundle
    wdir = tmp_path / "weights"
    with tarfile.open(out / "results.tar") as t:
        t.extractall(tmp_path, filter="data")          # weights/*.json
    for p in out.glob("*.pt"):
        (wdir / p.name).write_bytes(p.read_bytes())
    saved = {v: json.loads((wdir / f"{v}.json").read_text())["steps"] for v in ("DG_AUG", "SG_AUG")}
    env = {**os.environ, "PYTHON": sys.executable, "GEO_WORK": str(tmp_path / "work2"), "GEO_WEIGHTS": str(wdir),
           "GEO_STAGES": "generators"}
    env.pop("GEO_FIGURES", None)
    r = subprocess.run(["bash", str(REPO / "scripts" / "gpu_run.sh"), "embedded", str(tmp_path / "OUT2"), "tiny",
                        "1200", "abc123"], cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    sched = json.loads((tmp_path / "work2" / "schedule.json").read_text())
    assert sched["continued_from_steps"] == {"AE": 0, "SG": 0, "SG+AUG": saved["SG_AUG"], "DG+AUG": saved["DG_AUG"]}
    gens = json.loads((tmp_path / "work2" / "generators.json").read_text())["generators"]
    for v, stem in (("DG+AUG", "DG_AUG"), ("SG+AUG", "SG_AUG")):
        assert gens[v]["steps"] == saved[stem] + sched["new_steps"][v], v
        assert gens[v]["history"]["continued_from"], v
    assert gens["AE"]["steps"] == sched["new_steps"]["AE"] and not gens["AE"]["history"].get("continued_from")


def test_training_adopts_the_compile_mode_the_bench_chose(tmp_path):
    from geo.pipeline import _adopt_bench
    from geo.profiles import RUNS

    P = RUNS["full"]
    bench = tmp_path / "bench_train_generator_cuda.json"
    assert _adopt_bench(P, bench) is P                                   # no bench: as the profile says
    bench.write_text(json.dumps({"chosen": {"batch": 2048, "compile": "reduce-overhead"}}))
    Q = _adopt_bench(P, bench)
    assert Q["train_over"]["compile"] == "reduce-overhead"
    assert "batch" not in Q["train_over"] and "compile" not in P["train_over"]  # identity kept, profile untouched
    bench.write_text(json.dumps({"chosen": {"batch": 512, "compile": False}}))
    assert _adopt_bench(P, bench) is P


@pytest.mark.slow
def test_generators_stage_trains_only_the_variants_asked_for(tmp_path, monkeypatch):
    """``variants``: only those are measured, scheduled and trained, with their time shares
    rescaled to the whole training time in the proportions of the default shares."""
    from geo import pipeline
    from geo.train import DEFAULT_SHARES

    monkeypatch.setenv("GEO_RUNS", str(tmp_path / "runs"))
    out = tmp_path / "out"
    assert pipeline.run("embedded", out, ["generators"], "tiny", 600.0, variants=["SG", "AE"]) == 0
    gens = json.loads((out / "generators.json").read_text())["generators"]
    assert set(gens) == {"SG", "AE"}
    sched = json.loads((out / "schedule.json").read_text())
    assert set(sched["steps"]) == set(sched["pairs_per_s"]) == {"SG", "AE"}
    assert sum(sched["shares"].values()) == pytest.approx(1.0)
    assert sched["shares"]["SG"] / sched["shares"]["AE"] == pytest.approx(DEFAULT_SHARES["SG"] / DEFAULT_SHARES["AE"])
    with pytest.raises(ValueError, match="XG"):
        pipeline.run("embedded", tmp_path / "other", ["generators"], "tiny", 600.0, variants=["XG"])


def test_generators_stage_trains_to_requested_steps(tmp_path, monkeypatch):
    """``steps``: every variant trains to that many steps in all, whatever the budget, and
    the schedule says so; a folder made with it refuses a run without it."""
    from geo import pipeline
    from geo.cache import StaleCache

    monkeypatch.setenv("GEO_RUNS", str(tmp_path / "runs"))
    out = tmp_path / "out"
    assert pipeline.run("embedded", out, ["generators"], "tiny", None, variants=["SG", "AE"], steps=7) == 0
    gens = json.loads((out / "generators.json").read_text())["generators"]
    assert {v: g["steps"] for v, g in gens.items()} == {"SG": 7, "AE": 7}
    sched = json.loads((out / "schedule.json").read_text())
    assert sched["steps"] == {"SG": 7, "AE": 7} and sched["requested_steps"] == 7
    with pytest.raises(StaleCache):
        pipeline.run("embedded", out, ["generators"], "tiny", None, variants=["SG", "AE"])
    with pytest.raises(ValueError, match="steps"):
        pipeline.run("embedded", tmp_path / "other", ["generators"], "tiny", None, steps=0)


@pytest.mark.slow
def test_fig5_stage_stops_its_sweep_at_k_max(tmp_path, monkeypatch):
    """``k_max``: Figure 5's rows stop at that many labelled rows, the rest of the sweep
    left to another run; the folder records it, so a run without it is refused there."""
    from geo import pipeline
    from geo.cache import StaleCache

    monkeypatch.setenv("GEO_RUNS", str(tmp_path / "runs"))
    out = tmp_path / "out"
    assert pipeline.run("embedded", out, ["generators", "fig5"], "tiny", 600.0, variants=["DG+AUG"], k_max=500) == 0
    blob = json.loads((out / "fig5.json").read_text())
    rows = blob["fig5"]["rows"]
    assert rows and max(r["k"] for r in rows) == 500 and min(r["k"] for r in rows) < 500
    rec = blob["meta"]["generators"]["DG+AUG"]             # the figure names the generator it drew on
    assert len(rec["encoder_state_sha256"]) == 64 and rec["variant"] == "DG+AUG"
    _names_its_saved_copy(rec, out)
    with pytest.raises(StaleCache):
        pipeline.run("embedded", out, ["fig5"], "tiny", 600.0, variants=["DG+AUG"])
    # a later call of a run draws the encoder from its run folder, and names its saved copy too,
    # also when that folder holds more steps than the run asked for (the first run's: never trained back)
    again = tmp_path / "again"
    assert pipeline.run("embedded", again, ["generators"], "tiny", None, variants=["DG+AUG"], k_max=500, steps=1) == 0
    assert pipeline.run("embedded", again, ["fig5"], "tiny", None, variants=["DG+AUG"], k_max=500, steps=1) == 0
    rec2 = json.loads((again / "fig5.json").read_text())["meta"]["generators"]["DG+AUG"]
    _names_its_saved_copy(rec2, again)
    assert rec2["steps"] == rec["steps"] > 1 and rec2["encoder_state_sha256"] == rec["encoder_state_sha256"]


def _names_its_saved_copy(rec, out):
    """A record of a generator the run trained: the float32 state used, and the bf16 copy saved."""
    side = json.loads((out / "weights" / "DG_AUG.json").read_text())
    assert rec["saved_as"]["files_sha256"] == {fn: f["sha256"] for fn, f in side["files"].items()}
    assert rec["saved_as"]["dtype"] == side["dtype"] and rec["steps"] == side["steps"] > 0
    assert rec["pairs"] == side["steps"] * side["config"]["batch"] and rec["width"] == side["config"]["generator"]["width"]
    assert rec["committed"] is False                          # drawn from the run, not loaded from the copy


def test_every_stage_has_its_function():
    from geo import pipeline

    assert list(pipeline.STAGE_FUNCTIONS) == list(pipeline.STAGES)


def test_fig5_stage_runs_the_k_and_seeds_asked_for(tmp_path, monkeypatch):
    """``k_min`` / ``label_seeds`` reach Figure 5's sweep as its k range and seeds, the
    sidecar names those seeds, and the folder records them (a run without them is refused)."""
    from geo import experiments, pipeline
    from geo.cache import StaleCache

    got = []

    def fake_fig5(ds, encoder, profile, progress=True, seeds=None, k_range=None):
        got.append((seeds, k_range))
        return {"rows": [], "gain_pct": {}}

    monkeypatch.setattr(experiments, "fig5", fake_fig5)
    monkeypatch.setattr(pipeline.Run, "encoder_of", lambda self, v: None)
    out = tmp_path / "out"
    assert pipeline.run("embedded", out, ["fig5"], "tiny", None, k_min=300, label_seeds=[1]) == 0
    assert got == [([1], (300, 2**62))]
    assert json.loads((out / "fig5.json").read_text())["meta"]["seeds"] == [1]
    with pytest.raises(StaleCache):
        pipeline.run("embedded", out, ["fig5"], "tiny", None)
    with pytest.raises(ValueError, match="at most --k-max 200"):
        pipeline.run("embedded", tmp_path / "o2", ["fig5"], "tiny", None, k_min=300, k_max=200)


def test_fig6_stage_with_variants_computes_only_their_rungs(tmp_path, monkeypatch):
    """``variants``: Figure 6 encodes and fits only those generators' rungs (to be merged
    into a whole ladder), and its sidecar names only those generators."""
    from geo import experiments, pipeline

    got = []

    def fake_fig6(ds, encoders, profile, progress=True, k=None, rungs=None):
        got.append((sorted(v for v, e in encoders.items() if e is not None), rungs, k))
        return {"Regression#1": {}, "Regression#2": {}}

    monkeypatch.setattr(experiments, "fig6", fake_fig6)
    monkeypatch.setattr(pipeline.Run, "encoder_of", lambda self, v: self.encoders.setdefault(v, (v, {"variant": v}))[0])
    out = tmp_path / "out"
    assert pipeline.run("embedded", out, ["fig6"], "tiny", None, variants=["SG"], k_max=200) == 0
    assert got == [(["SG"], ["BL+SG"], 200)]
    assert list(json.loads((out / "fig6.json").read_text())["meta"]["generators"]) == ["SG"]

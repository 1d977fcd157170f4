"""The matched-budget generator study (benchmarks/study_generators.py) rehearsed on the
embedded data: every cell trains on the same pairs, is scored the same way, and a second
run keeps the finished rows instead of training again."""
import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _study():
    spec = importlib.util.spec_from_file_location("study_generators", REPO / "benchmarks" / "study_generators.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cells_train_on_matched_pairs_and_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GEO_RUNS", str(tmp_path / "runs"))
    S = _study()
    cfgs = {c: S.cell_config(c, 6400) for c in S.CELLS}
    assert {c.steps * c.batch for c in cfgs.values()} == {6400}                     # matched budget
    assert cfgs["lrc_ratio"].lrc_norm == "ratio" and cfgs["wide"].generator.line_width == 6.0
    assert cfgs["base"].generator.width == 16 and cfgs["base"].lr_min is None and cfgs["cosine"].lr_min == 1e-5
    # the base is the cpu profile before it adopted the study's findings: the cells keep
    # the identity (and run folders) they were trained with
    from geo.train import identity

    assert not {"lrc_norm", "torus", "virtual_joints"} & set(identity(cfgs["base"]))
    assert "line_width" not in identity(cfgs["base"])["generator"]
    assert set(identity(cfgs["wide"])["generator"]) - set(identity(cfgs["base"])["generator"]) == {"line_width"}
    args = ["--tiny", "--data", "embedded", "--pairs", "32", "--cells", "base,lrc_ratio", "--test-rows", "100",
            "--seeds", "0", "--out", str(tmp_path / "out")]
    S.main(args)
    rows = json.loads((tmp_path / "out" / "study_generators.json").read_text())["rows"]
    assert [r["cell"] for r in rows] == ["base", "lrc_ratio"] and {r["pairs"] for r in rows} == {32}
    for r in rows:
        assert 0 <= r["heldout_iou"] <= 1 and r["other_over_matched"] > 0
        assert {"gain_sh_pct", "gain_gt_pct", "sh_baseline_mm", "gt_regression1_mm", "tuned_gain_sh_pct",
                "tuned_gt_baseline_mm"} <= set(r)
    capsys.readouterr()
    S.main(args)
    assert capsys.readouterr().out.count("done, kept") == 2


def test_tuned_recipes_are_the_s8_winners():
    S = _study()
    t = S.tuned_recipes(500)
    src = {f: json.loads((REPO / "figures" / f).read_text())["fc_winners"]
           for f in ("study_tuning.json", "study_tuning_baseline.json")}
    r1 = [w for w in src["study_tuning.json"] if w["probe"] == "Regression#1" and w["k"] == 500][0]
    bl = [w for w in src["study_tuning_baseline.json"] if w["probe"] == "Baseline#1" and w["k"] == 500][0]
    assert t["r1"]["weight_decay"] == r1["weight_decay"] and t["r1"]["steps"] == r1["steps"]
    assert t["bl"]["weight_decay"] == bl["weight_decay"] and t["bl"]["dropout"] == bl["dropout"]


def test_a_committed_set_is_scored_like_a_cell(tmp_path, monkeypatch, capsys):
    """--score-committed: the committed cpu-profile set (the base setting, trained longer)
    gets the same row as a cell, under its own name, with its files' sha256."""
    from geo import weights

    if weights.read_meta("SG+AUG", weights.profile_dir("cpu")) is None:
        import pytest

        pytest.skip("no committed cpu-profile SG+AUG set")
    monkeypatch.setenv("GEO_RUNS", str(tmp_path / "runs"))
    S = _study()
    S.main(["--tiny", "--data", "embedded", "--score-committed", "SG+AUG@cpu", "--test-rows", "50", "--seeds", "0",
            "--out", str(tmp_path / "out")])
    blob = json.loads((tmp_path / "out" / "study_generators.json").read_text())
    rows = blob["rows"]
    assert blob["meta"]["scored"] == "SG+AUG@cpu" and "cells" not in blob["meta"]   # what this run did
    meta = weights.read_meta("SG+AUG", weights.profile_dir("cpu"))
    (r,) = rows
    assert r["cell"] == f"SG_AUG@cpu:{meta['identity']}" and r["pairs"] == meta["steps"] * meta["config"]["batch"]
    assert r["files_sha256"] == {k: v["sha256"] for k, v in meta["files"].items()} and 0 <= r["heldout_iou"] <= 1
    assert "tuned_gain_sh_pct" in r

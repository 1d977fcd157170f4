"""`python -m geo`: bad arguments are refused (exit 2, the argument named on stderr)
before any notebook, pipeline or training starts; paths resolve against the caller's cwd."""
import os
from pathlib import Path

import pytest

import geo.__main__ as cli

REPRODUCE = cli.reproduce   # the real one, before the no_heavy_work fixture replaces it

pytestmark = pytest.mark.usefixtures("no_heavy_work")   # tests/conftest.py


def _fails(capsys, argv, *words):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("geo: error:") and all(w in err for w in words), err
    return err


def test_unknown_stage(capsys, tmp_path):
    _fails(capsys, ["full-gpu", "--data", "embedded", "--out", str(tmp_path / "o"), "--stages", "bogus"],
           "--stages", "bogus")
    _fails(capsys, ["full-gpu", "--data", "embedded", "--out", str(tmp_path / "o"), "--stages", ","], "--stages")
    assert not (tmp_path / "o").exists()


def test_non_positive_budget(capsys, tmp_path):
    _fails(capsys, ["full-gpu", "--data", "embedded", "--out", str(tmp_path / "o"), "--budget-s", "0"],
           "--budget-s")


def test_missing_precomputed_folder(capsys):
    _fails(capsys, ["reproduce", "--precomputed", "/nonexistent"], "--precomputed", "/nonexistent")


def test_precomputed_folder_without_results(capsys, tmp_path):
    _fails(capsys, ["reproduce", "--precomputed", str(tmp_path)], "--precomputed", "fig5.json")


@pytest.mark.parametrize("cmd", [["reproduce"], ["full-gpu", "--out", "/tmp/geo-cli-test-never-written"]])
def test_missing_data_folder(capsys, cmd):
    _fails(capsys, cmd + ["--data", "/nonexistent"], "/nonexistent", "folder not found")
    assert not Path("/tmp/geo-cli-test-never-written").exists()


def test_unknown_profile_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["reproduce", "--profile", "bogus"])
    assert e.value.code == 2 and "--profile" in capsys.readouterr().err


def test_relative_data_path_resolves_against_cwd(h36m_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rel = os.path.relpath(h36m_dir, tmp_path)
    assert not os.path.isabs(rel)
    got = cli.check_data(rel)
    assert os.path.isabs(got) and Path(got) == h36m_dir.resolve()
    assert cli.check_data("embedded") == "embedded"


def test_reproduce_does_not_start_a_missing_full_stage_on_a_cpu(tmp_path, monkeypatch, capsys):
    """Drawing a GPU run's results (--precomputed, full profile) on a CPU: the notebooks
    whose stage JSON is there draw it, those without a stage run, and a stage the run did
    not compute (e.g. Table 1: 15-20 h on 2 cores) is skipped and named, not started."""
    import papermill

    ran = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda nb, out, parameters, **k: ran.append(
        (Path(nb).stem, parameters.get("precomputed"))))
    monkeypatch.setattr(cli, "has_cuda", lambda: False)
    (tmp_path / "fig5.json").write_text("{}")
    assert REPRODUCE("/data/h36m", "full", str(tmp_path)) == 0
    names = dict(ran)
    assert names["03_fig5_label_efficiency"] == str(tmp_path / "fig5.json")
    assert "01_data" in names and "06_qualitative" in names
    for stem in ("02_generators", "04_fig6_ablations", "05_tables"):
        assert stem not in names, stem
    out = capsys.readouterr().out
    assert "skipped" in out and "tables.json" in out and "GEO_STAGES=tables" in out
    ran.clear()
    monkeypatch.setattr(cli, "has_cuda", lambda: True)                  # on a GPU it computes them
    REPRODUCE("/data/h36m", "full", str(tmp_path))
    assert {"02_generators", "04_fig6_ablations", "05_tables"} <= set(dict(ran))


def test_help_is_plain_text_with_descriptions_and_a_version(capsys):
    from geo.__main__ import main

    for argv in (["--help"], ["train", "--help"], ["full-gpu", "--help"], ["reproduce", "--help"], ["lift", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "``" not in out and ":mod:" not in out and ":func:" not in out, argv
        assert "(default: None)" not in out, argv
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "Ctrl-C saves" in out and "(default: quick)" in out and "I_SG" in out   # said why it is not a choice
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"geo {__import__('geo').__version__}"
    with pytest.raises(SystemExit) as e:
        main(["train", "--variant", "I_SG", "--out", "x"])    # not offered, so not accepted then refused
    assert e.value.code == 2 and "invalid choice: 'I_SG'" in capsys.readouterr().err


def test_reproduce_names_its_results_and_keeps_each_runs_notebooks_apart(tmp_path, monkeypatch, capsys):
    import papermill

    from geo import __main__ as cli

    monkeypatch.setenv("GEO_RUNS", str(tmp_path))
    monkeypatch.delenv("GEO_FIGURES", raising=False)
    outs, bars = [], []

    def execute(nb, out, **k):
        outs.append(Path(out).parent)
        bars.append(os.environ.get("TQDM_MININTERVAL"))   # what the kernels' progress bars get

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    monkeypatch.setenv("TQDM_MININTERVAL", "")   # so that teardown restores the caller's value
    monkeypatch.delenv("TQDM_MININTERVAL")
    for data in ("embedded", str(tmp_path / "a" / "h36m"), str(tmp_path / "b" / "h36m")):
        assert REPRODUCE(data, "quick") == 0
        last = capsys.readouterr().out.strip().splitlines()[-1]
        assert last.startswith(f"results in {tmp_path / 'figures'}") and "-quick, executed notebooks in" in last, last
    folders = sorted(set(outs))
    assert len(folders) == 3 and all(tmp_path / "notebooks" in f.parents for f in folders)
    assert set(bars) == {"15"}                        # a bar updates every 15 s, not hundreds of lines
    monkeypatch.setenv("TQDM_MININTERVAL", "2")
    assert REPRODUCE("embedded", "quick") == 0 and bars[-1] == "2"   # the user's value wins


def test_notebook_parameters_are_portable_paths(tmp_path):
    """Executed notebooks carry paths relative to notebooks/ for what lies beside or in the
    repository (so Run All works on another machine with the same layout), others as given."""
    from geo.__main__ import NOTEBOOKS, portable
    from geo.results import REPO

    assert portable("embedded") == "embedded"
    inside = REPO / "figures"
    assert portable(inside) == "../figures" and (NOTEBOOKS / portable(inside)).resolve() == inside.resolve()
    beside = REPO.parent / "shared"
    if beside.is_dir():
        assert portable(beside) == "../../shared"
    assert portable(tmp_path) == str(tmp_path)              # elsewhere: the user's own path
    assert portable(tmp_path / "absent") == str(tmp_path / "absent")


def test_unknown_variant(capsys, tmp_path):
    _fails(capsys, ["full-gpu", "--data", "embedded", "--out", str(tmp_path / "o"), "--variants", "SG,XG"],
           "--variants", "XG")
    assert not (tmp_path / "o").exists()


def test_non_positive_steps(capsys, tmp_path):
    _fails(capsys, ["full-gpu", "--data", "embedded", "--out", str(tmp_path / "o"), "--steps", "-3"], "--steps")
    assert not (tmp_path / "o").exists()


def test_non_positive_k_max(capsys, tmp_path):
    _fails(capsys, ["full-gpu", "--data", "embedded", "--out", str(tmp_path / "o"), "--k-max", "0"], "--k-max")
    assert not (tmp_path / "o").exists()


def test_full_gpu_passes_its_checked_options_to_the_pipeline(tmp_path, monkeypatch):
    """Options that pass the checks reach the pipeline parsed (lists without blanks) and
    --out resolved against the caller's directory, nothing created before the run."""
    import geo.pipeline

    calls = []
    monkeypatch.setattr(geo.pipeline, "run", lambda *a, **k: calls.append((a, k)) or 0)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["full-gpu", "--data", "embedded", "--out", "o", "--stages", " fig5, ,tables ",
                     "--profile", "tiny", "--variants", "SG, DG+AUG", "--k-max", "40", "--steps", "3"]) == 0
    assert calls == [(("embedded", tmp_path.resolve() / "o", ["fig5", "tables"], "tiny", None, None),
                      {"variants": ["SG", "DG+AUG"], "k_max": 40, "steps": 3})]
    assert not (tmp_path / "o").exists()


def test_k_min_above_k_max(capsys, tmp_path):
    _fails(capsys, ["full-gpu", "--data", "embedded", "--out", str(tmp_path / "o"), "--k-max", "40", "--k-min", "41"],
           "--k-min")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("seeds", ["a", "0,0", "-1"])
def test_bad_label_seeds(capsys, tmp_path, seeds):
    _fails(capsys, ["full-gpu", "--data", "embedded", "--out", str(tmp_path / "o"), "--label-seeds", seeds],
           "--label-seeds")
    assert not (tmp_path / "o").exists()


def test_full_gpu_passes_k_min_and_label_seeds(tmp_path, monkeypatch):
    import geo.pipeline

    calls = []
    monkeypatch.setattr(geo.pipeline, "run", lambda *a, **k: calls.append(k) or 0)
    assert cli.main(["full-gpu", "--data", "embedded", "--out", str(tmp_path / "o"), "--stages", "fig5",
                     "--k-min", "300", "--label-seeds", "0, 2"]) == 0
    assert calls[0]["k_min"] == 300 and calls[0]["label_seeds"] == [0, 2]
